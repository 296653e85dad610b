"""How many artifacts carry a PyTorch reference, by source, language and invocation mode; and the SMALL checks.

    python bench/reference_coverage.py [--lookup] [--check] DIR [DIR ...]

For every artifact under DIR: its language, invocation mode, whether its example carries a
reference (the header's ``reference:`` line) and from which source (a ``vkc.reference.table`` row
or harvested from a test, ``vkc.reference.harvest``); for a Triton artifact without one, the reason
(``vkc.reference.find_reference`` on the example's own CONFIGS literal and invocation mode: the
same inputs the renderer used).  ``--lookup``: also count the references the current code finds
for artifacts written before it (``would-ref``: what a re-collect gives).  ``--check``: run each
example that carries a reference at SMALL under the Triton interpreter on CPU (``TRITON_INTERPRET=1``,
one at a time) and count PASS / FAIL / ERROR.  With a ``verify_results.json`` beside the artifacts
(``vkc verify --run DIR``), the reference check of each run: PASS / FAIL / no RESULT line.
The summary counts the model-accurate and test-traced artifacts (every mode but ``synthesized``).
"""
from __future__ import annotations

import ast
import collections
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

from vkc.reference import LaunchFacts, find_reference
from vkc.reference.cuda_find import find_cuda_reference
from vkc.source import resolve_source
from vkc.write.names import RESULT_FILES

_REF = re.compile(r"^(?:#|//) reference: (\S+) (\S+)", re.M)
_OP = re.compile(r"^// WRAPPER: .*registers for (\S+)$", re.M)
_CUDA_KERNEL = re.compile(r"^// KERNEL: \S+ at (\S+):\d+$", re.M)
_CUDA_WRAPPER = re.compile(r"^// WRAPPER: (.*)$", re.M)
_INVOCATION = re.compile(r"^// invocation: (.*)$", re.M)
_MODE = re.compile(r"^(?:#|//) invocation: (\S+)", re.M)
_CONFIGS = re.compile(r"^CONFIGS = (.*?)\n\n", re.M | re.S)
# find_reference's reason text -> its bucket (first match wins; the tally counts the first reason of each artifact)
BUCKETS: tuple[tuple[str, str], ...] = (
    (r"^no CUDA reference mapping for", "cuda: no row in vkc.reference.cuda_table"),
    (r"no reference mapping for \S+ in vkc's table \(vkc\.reference\.table\)$", "kernel not in the index"),
    (r"no vLLM test calls a wrapper that launches it", "no test calls a launching wrapper"),
    (r"is not a direct kernel\[grid\]\(\.\.\.\) in a top-level function", "launch: not in a top-level function"),
    (r"does not launch \S+ (with plain positional arguments|as \S+\[grid\])", "launch: no kernel[grid](...) call"),
    (r"cannot read the wrapper", "launch: wrapper unreadable"),
    (r"compares nothing the kernel writes against a computation", "test: compares nothing the kernel writes"),
    (r"calls \S+ \d+ times at its top level", "test: calls the wrapper 0 or >1 times"),
    (r"the wrapper is called with \*args/\*\*kwargs", "test: wrapper called with *args/**kwargs"),
    (r"which does not reach the kernel as is", "test: passes an expression that does not reach the kernel"),
    (r"is not assigned by plain top-level statements", "slice: a name not bound by plain statements"),
    (r"is made by \w+: data the kernel does not receive", "slice: random data the kernel does not receive"),
    (r"is a tensor the test wrote out for its own inputs", "slice: a literal tensor of the test"),
    (r"reads \S+ after the wrapper produced or wrote it", "slice: reads the wrapper's result"),
    (r"bound otherwise than when the wrapper reads it", "slice: input rebound"),
    (r"reads no tensor the kernel receives", "slice: reads no kernel input"),
    (r"needs the test parameter", "slice: needs a test parameter value"),
    (r"reads attributes of the test parameter", "slice: reads a test parameter's attributes"),
    (r"at its default .*, which reaches the kernel as an expression", "test: leaves a wrapper default that is an expression"),
    (r"(atol|rtol) is not a literal|only one of atol/rtol|tolerances passed as", "tolerance: not a literal"),
    (r"cannot be extracted self-contained", "extract: not self-contained"),
    (r"reaches vLLM objects vkc does not extract", "extract: reaches unextracted vLLM objects"),
    ((r"the mapping holds only for|the launch has no|is not a tensor in this launch|the kernel has no parameter"
      r"|the call has no argument"),
     "launch: mapping does not hold for this launch"),
    (r"^the example is ", "synthesized"),
)


def bucket(reason: str) -> str:
    for pattern, name in BUCKETS:
        if re.search(pattern, reason):
            return name
    return "hand table: refused (vkc.reference.table.REFUSED)" if "not harvested" not in reason else "other"


def _facts(code: str) -> list[LaunchFacts]:
    m = _CONFIGS.search(code)
    if not m:
        return []
    out = []
    for name, cfg in ast.literal_eval(m.group(1)).items():
        values = {p: s[1] for p, s in cfg["args"] if s[0] == "scalar"}
        values.update(cfg["constexprs"])
        tensors = frozenset(p for p, s in cfg["args"] if s[0] == "tensor")
        out.append(LaunchFacts(name, values, tensors, frozenset(p for p, _s in cfg["args"]),
                               frozenset(cfg["constexprs"]), dict(cfg.get("shapes") or {})))
    return out


def _call_values(code: str, op: str) -> dict:
    """The non-tensor arguments the header's ``invocation:`` line shows for the op call (``azp=None``), for a
    row's ``requires``; a tensor argument is absent, and so is every argument of a call the line does not show
    (a test's): a row that requires one refuses, as a re-collect may."""
    line = _INVOCATION.search(code)
    at = line.group(1).find(op + "(") if line else -1
    if at < 0:
        return {}
    out = {}
    for key, text in re.findall(r"(\w+)=([^,()\s]+)", line.group(1)[at:].split(")", 1)[0]):
        try:
            out[key] = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            out[key] = text
    return out


def _cuda_lookup(tree, code: str, mode: str, stem: str):
    """find_cuda_reference from the header: the op of a wrapper-compiled example, else kernel + wrapper (the
    buffer names and traced values are not rechecked here: a re-collect does that)."""
    op = _OP.search(code)
    if op:
        return find_cuda_reference(tree, op.group(1), mode=mode, values=_call_values(code, op.group(1)))
    kfile = _CUDA_KERNEL.search(code)
    name = re.sub(r"^csrc\.[\w.]+\.cu--", "", stem)
    kernel = f"{kfile.group(1)}:{name}" if kfile else name
    wrapper = _CUDA_WRAPPER.search(code)
    return find_cuda_reference(tree, kernel, mode=mode, wrapper=wrapper.group(1) if wrapper else "")


def _qualified(code: str) -> str:
    """KERNEL_NAME when qualified, else ``module:ENTRY`` from the header's kernel line and ENTRY."""
    name = re.search(r"^KERNEL_NAME = '([^']+)'", code, re.M)
    if name and ":" in name.group(1):
        return name.group(1)
    m = re.search(r"^# kernel: .* from (vllm/\S+)\.py:\d+", code, re.M)
    entry = re.search(r"^ENTRY = '([^']+)'", code, re.M)
    return f"{m.group(1).replace('/', '.') if m else ''}:{entry.group(1) if entry else ''}"


def _runs(d: Path) -> dict[str, str]:
    path = d / "verify_results.json"
    if not path.is_file():
        return {}
    data = json.loads(path.read_text())
    rows = data if isinstance(data, list) else data.get("artifacts", data.get("results", []))
    out = {}
    for row in rows:
        name = Path(str(row.get("artifact") or row.get("path") or row.get("name"))).name
        for c in row.get("checks", []):
            if c.get("check") == "run":
                reason = str(c.get("reason", ""))
                m = re.search(r"check=(\S+)", reason)
                out[name] = (m.group(1) if m else "no-check") if reason.startswith("RESULT") else (
                    "error: " + reason[:160])
    return out


def _check(art: dict) -> str:
    """PASS / FAIL / ERROR of the example's SMALL check under the interpreter (one line of why)."""
    k = art["kernel"]
    code = k["invocation_example"]
    kernel_file = re.search(r"^KERNEL_FILE = '([^']+)'$", code, re.M)
    if not kernel_file:
        return "ERROR no KERNEL_FILE"
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / kernel_file.group(1)).write_text(k["source_code"])
        (Path(tmp) / "example.py").write_text(code)
        env = dict(os.environ, SMALL_SANITY="1", TRITON_INTERPRET="1", CUDA_VISIBLE_DEVICES="")
        try:
            proc = subprocess.run([sys.executable, "example.py"], cwd=tmp, env=env, capture_output=True, text=True,
                                  timeout=600)
        except subprocess.TimeoutExpired:
            return "ERROR timeout 600 s"
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")), "")
    m = re.search(r"check=(\S+)(.*)", line)
    if m:
        return f"{m.group(1)}{m.group(2)}"
    tail = (proc.stdout + proc.stderr).strip().splitlines()[-1:] or [""]
    return f"ERROR {tail[0][:200]}"


def main(argv: list[str]) -> None:
    lookup, check = "--lookup" in argv, "--check" in argv
    dirs = [a for a in argv if not a.startswith("--")]
    tree = resolve_source()
    by: collections.Counter = collections.Counter()
    checks: collections.Counter = collections.Counter()
    refusals: collections.Counter = collections.Counter()
    lines = []
    for d in map(Path, dirs):
        runs = _runs(d)
        for p in sorted(d.rglob("*.json")):
            if p.name in RESULT_FILES or p.name.startswith("."):
                continue
            art = json.loads(p.read_text())
            k = art["kernel"]
            lang, code = k["kernel_type"], k["invocation_example"]
            mode = (_MODE.search(code) or [None, "unknown"])[1]
            ref = _REF.search(code)
            kind = ("harvested" if "vkc.reference.harvest" in code else "table") if ref else "none"
            if ref and lang == "cuda":
                kind = "cuda-table"
            if ref:
                why = ref.group(2)
            elif lang == "cuda":
                found = _cuda_lookup(tree, code, mode, p.stem)
                why = found.reason
                if lookup and found.reference is not None:
                    kind = "would-ref"
            else:
                found = find_reference(tree, _qualified(code), mode=mode, configs=_facts(code))
                why = found.reason
                if lookup and found.reference is not None:
                    kind = "would-ref"
            by[(lang, mode, ref.group(1) if ref else "none", kind)] += 1
            if not ref and kind != "would-ref" and mode != "synthesized":
                refusals[(lang, bucket(why))] += 1
            status = runs.get(p.name, "-")
            if check and ref and lang == "triton":
                status = _check(art)
                checks[(mode != "synthesized", status.split()[0])] += 1
            lines.append(f"{lang:6} {mode:12} {kind:9} {status[:60]:10} {p.relative_to(d)}: {why}")
    print("\n".join(lines))
    print("\ncounts (language, mode, source, table|harvested):")
    for key in sorted(by):
        print(f"  {key[0]:6} {key[1]:12} {key[2]:15} {key[3]:9} {by[key]}")
    accurate = {key: n for key, n in by.items() if key[1] != "synthesized"}
    for lang in ("triton", "cuda"):
        total = sum(n for key, n in accurate.items() if key[0] == lang)
        refs = sum(n for key, n in accurate.items() if key[0] == lang and key[2] != "none")
        would = sum(n for key, n in accurate.items() if key[0] == lang and key[3] == "would-ref")
        print(f"{lang}: {refs} of {total} model-accurate/test-traced artifacts carry a reference"
              + (f" (+{would} on re-collect)" if lookup else ""))
    print("\nrefusal reasons (first reason; model-accurate/test-traced artifacts without a reference):")
    for (lang, name), n in sorted(refusals.items(), key=lambda kv: (kv[0][0], -kv[1], kv[0][1])):
        print(f"  {lang:6} {n:4}  {name}")
    if check:
        print("CPU interpreter checks (model-accurate/test-traced, verdict):",
              dict(sorted((v, n) for (acc, v), n in checks.items() if acc)),
              "synthesized:", dict(sorted((v, n) for (acc, v), n in checks.items() if not acc)))


if __name__ == "__main__":
    main(sys.argv[1:])
