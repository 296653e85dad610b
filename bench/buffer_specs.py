"""Scan generated examples' buffer specs: no placeholder pointer table, no index argument without a range.

    python bench/buffer_specs.py DIR_OR_FILE [...] [--json] [--mode synthesized]

Issue 12's rule for every artifact, above all the ``synthesized`` ones: a buffer that holds device
addresses (a pointer table: ``kv_cache_ptrs``, ``seg_addrs``, ...) must be built from real
allocations, and an integer buffer an index-like argument reads (block tables, slot mappings, ids,
indices, offsets, lengths, start locations) must be filled from a range (not zeros, not randn).

How a buffer's contents are represented, per language:

* Triton: the script's ``CONFIGS`` literal, ``'buffers': {name: (shape, dtype, init)}`` with the
  init kinds of ``vkc.invoke.triton.recipes.base`` (``zeros``, ``randint``, ``block_table``, ...);
  ``empty`` / ``scratch`` are outputs and intermediates, not read before written.
* CUDA: the host program's device-buffer section, one ``// <name>: <ctype> ...`` comment per buffer
  followed by its fill (``cudaMemsetAsync(<name>, 0, ...)`` = zeros, ``fill_randint`` /
  ``fill_affine`` / ``fill_const`` / a host-side fill = a range).

Prints per language and invocation mode the artifacts and buffers scanned and the findings; exit 1
when an artifact of ``--mode`` (default: synthesized) has a finding.
"""
from __future__ import annotations

import argparse
import ast
import json
import re
import sys
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

_MODE = re.compile(r"^(?:#|//) invocation: ([a-z-]+)", re.M)
_POINTER_NAME = re.compile(r"(ptrs|pointers|ptr_table|ptr_array|addrs|addresses)(_ptr)?$")
_INDEX_NAME = re.compile(
    r"(^|_)(idx|idxs|index|indices|ids?|block_tables?|tables?|slots?|slot_mapping|mapping|loc|locs|offsets?|"
    r"indptr|lens|seq_lens|seqlens?|lengths?|starts?|positions?)$")
_INT_TRITON = ("int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64")
_INT_CUDA = ("int", "int8_t", "int16_t", "int32_t", "int64_t", "uint8_t", "uint16_t", "uint32_t", "uint64_t",
             "long", "long long", "unsigned", "size_t")
# Triton init kinds that give an integer buffer a range, and those that only say "not read first"
RANGED = frozenset({"arange", "randint", "values", "runs", "cumsum_lengths", "block_table", "block_rows", "slot_mapping", "topk_ids",
                    "const", "uniform", "topk_rows", "region_rows"})   # the last two: ids below each row's length
OUTPUT_KINDS = frozenset({"empty", "scratch"})
POINTER_KINDS: frozenset[str] = frozenset({"pointer_table", "pointer_targets"})   # tables of real allocations
_CUDA_BUF = re.compile(r"^\s*// (\w+): ([A-Za-z_][\w: ]*?\**) [^\n]*$", re.M)


@dataclass(frozen=True)
class Finding:
    config: str          # Triton: FULL / SMALL / FULL.2 ...; CUDA: "host"
    buffer: str
    dtype: str
    fill: str
    problem: str         # "pointer table" | "index without a range"


def _stem(name: str) -> str:
    n = name.removeprefix("p_")
    return n[:-4] if n.endswith("_ptr") and not _POINTER_NAME.search(n) else n


def _classify(name: str, dtype: str, fill: str, *, integer: bool, ranged: bool, output: bool,
              pointer_ok: bool) -> str | None:
    stem = _stem(name)
    if integer and _POINTER_NAME.search(stem) and not pointer_ok:
        return "pointer table"
    if integer and _INDEX_NAME.search(stem) and not ranged and not output:
        return "index without a range"
    return None


def triton_buffers(code: str) -> list[tuple[str, str, str, str]]:
    """(config, buffer, dtype, init kind) of every buffer of the script's CONFIGS literal."""
    tree = ast.parse(code)
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "CONFIGS" for t in node.targets):
            configs = ast.literal_eval(node.value)
            break
    else:
        raise ValueError("no CONFIGS literal")
    out = []
    for cfg, body in sorted(configs.items()):
        for name, (_shape, dtype, init) in sorted(body["buffers"].items()):
            kind = init[0] if isinstance(init, (list, tuple)) else str(init)
            if kind == "overlay":       # a base fill with constant views of another dtype: the base's kind
                kind = init[1][0]
            out.append((cfg, name, dtype, kind))
    return out


def cuda_buffers(code: str) -> list[tuple[str, str, str, str, str]]:
    """("host", buffer, ctype, fill kind, role) of every device buffer of the host program (role from
    the dump manifest's ``buffer <name> <in|out|inout|ws>`` line)."""
    start = code.find("// ---- device buffers")
    if start < 0:
        raise ValueError("no device-buffer section")
    end = code.find("// ---- launch configuration", start)
    section = code[start:end if end > 0 else len(code)]
    out = []
    for m in _CUDA_BUF.finditer(section):
        name, ctype = m.group(1), m.group(2).strip()
        if f"n_{name} = " not in section:
            continue          # a comment, not a buffer declaration
        after = section[m.end():]
        nxt = _CUDA_BUF.search(after)
        body = after[:nxt.start()] if nxt else after
        if f"cudaMemsetAsync({name}, 0," in body:
            kind = "zero"
        elif (f := re.search(r"vkc_host::fill_(\w+)<<<", body)):
            kind = f.group(1)
        elif f"std::vector<{ctype}> h_{name}" in body:
            kind = "host"
        else:
            kind = "none"
        role = re.search(rf'"buffer {name} (\w+) ', code)
        out.append(("host", name, ctype, kind, role.group(1) if role else "in"))
    return out


def scan_example(lang: str, code: str) -> tuple[int, list[Finding]]:
    """(buffers scanned, findings) of one invocation example; ValueError when it has no buffer specs."""
    found: list[Finding] = []
    if lang == "triton":
        bufs = triton_buffers(code)
        for cfg, name, dtype, kind in bufs:
            why = _classify(name, dtype, kind, integer=dtype in _INT_TRITON, ranged=kind in RANGED,
                            output=kind in OUTPUT_KINDS, pointer_ok=kind in POINTER_KINDS)
            if why:
                found.append(Finding(cfg, name, dtype, kind, why))
    else:
        cbufs = cuda_buffers(code)
        bufs = cbufs    # type: ignore[assignment]
        for cfg, name, ctype, kind, role in cbufs:
            integer = ctype in _INT_CUDA or ctype.endswith("*")
            why = _classify(name, ctype, kind, integer=integer, ranged=kind in ("randint", "affine", "const", "host"),
                            output=role in ("out", "ws"), pointer_ok=kind == "host")
            if why:
                found.append(Finding(cfg, name, ctype, kind, why))
    return len(bufs), found


def mode_of(code: str) -> str:
    m = _MODE.search(code)
    return m.group(1) if m else "unknown"


def scan_artifact(obj: dict[str, Any]) -> dict[str, Any]:
    k = obj["kernel"]
    lang = "triton" if k.get("kernel_type", obj.get("kernel_type")) == "triton" else "cuda"
    code = k["invocation_example"]
    try:
        n, found = scan_example(lang, code)
        error = None
    except (ValueError, SyntaxError, KeyError, TypeError) as e:
        n, found, error = 0, [], f"{type(e).__name__}: {e}"
    return {"name": obj.get("name"), "lang": lang, "mode": mode_of(code), "buffers": n,
            "findings": [asdict(f) for f in found], "error": error}


def _files(paths: list[Path]) -> list[Path]:
    out: list[Path] = []
    for p in paths:
        if p.is_dir():
            out += sorted(f for f in p.rglob("*.json") if not f.name.endswith("_results.json"))
        else:
            out.append(p)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("paths", nargs="+", type=Path)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--mode", default="synthesized", help="exit 1 when an artifact of this mode has a finding")
    a = ap.parse_args(argv)
    rows = []
    for f in _files(a.paths):
        try:
            obj = json.loads(f.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(obj, dict) and "kernel" in obj:
            rows.append(dict(scan_artifact(obj), path=str(f)))
    if a.json:
        print(json.dumps(rows, indent=1, sort_keys=True))
    else:
        groups = Counter((r["lang"], r["mode"]) for r in rows)
        for (lang, mode), n in sorted(groups.items()):
            sel = [r for r in rows if (r["lang"], r["mode"]) == (lang, mode)]
            bad = [r for r in sel if r["findings"]]
            probs = Counter(f["problem"] for r in sel for f in r["findings"])
            unread = sum(1 for r in sel if r["error"])
            print(f"{lang:6s} {mode:14s} {n:4d} artifacts, {sum(r['buffers'] for r in sel):5d} buffers; "
                  f"{len(bad)} with findings ({', '.join(f'{k} {v}' for k, v in sorted(probs.items())) or 'none'})"
                  + (f"; {unread} unreadable" if unread else ""))
        for r in rows:
            if r["mode"] == a.mode and r["findings"]:
                fs = sorted({(f["buffer"], f["fill"], f["problem"]) for f in r["findings"]})
                print(f"  {r['name']}: " + "; ".join(f"{b} ({fill}): {p}" for b, fill, p in fs))
    return 1 if any(r["findings"] for r in rows if r["mode"] == a.mode) else 0


if __name__ == "__main__":
    sys.exit(main())
