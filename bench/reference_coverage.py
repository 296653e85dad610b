"""How many artifacts carry a PyTorch reference, by source and language; and the SMALL checks.

    python bench/reference_coverage.py DIR [DIR ...]

For every artifact under DIR: its language, whether its example carries a reference (the header's
``reference:`` line) and from which source; for a Triton artifact without one, the reason
(``vkc.reference.find_reference`` on the example's own CONFIGS literal and invocation mode: the
same inputs the renderer used).  With a ``verify_results.json`` beside the artifacts (``vkc verify
--run DIR``), the reference check of each run: PASS / FAIL / no RESULT line.
"""
from __future__ import annotations

import ast
import collections
import json
import re
import sys
from pathlib import Path

from vkc.reference import LaunchFacts, find_reference
from vkc.source import resolve_source
from vkc.write.names import RESULT_FILES

_REF = re.compile(r"^# reference: (\S+) (\S+)", re.M)
_MODE = re.compile(r"^# invocation: (\S+)", re.M)
_CONFIGS = re.compile(r"^CONFIGS = (.*?)\n\n", re.M | re.S)


def _facts(code: str) -> list[LaunchFacts]:
    m = _CONFIGS.search(code)
    if not m:
        return []
    out = []
    for name, cfg in ast.literal_eval(m.group(1)).items():
        values = {p: s[1] for p, s in cfg["args"] if s[0] == "scalar"}
        values.update(cfg["constexprs"])
        tensors = frozenset(p for p, s in cfg["args"] if s[0] == "tensor")
        out.append(LaunchFacts(name, values, tensors, frozenset(p for p, _s in cfg["args"])))
    return out


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


def main(dirs: list[str]) -> None:
    tree = resolve_source()
    by = collections.Counter()
    reasons: dict[str, str] = {}
    lines = []
    for d in map(Path, dirs):
        runs = _runs(d)
        for p in sorted(d.rglob("*.json")):
            if p.name in RESULT_FILES or p.name.startswith("."):
                continue
            art = json.loads(p.read_text())
            k = art["kernel"]
            lang, code = k["kernel_type"], k["invocation_example"]
            ref = _REF.search(code)
            if ref:
                by[(lang, ref.group(1))] += 1
                why = ref.group(2)
            else:
                by[(lang, "none")] += 1
                why = "CUDA: no reference side yet" if lang == "cuda" else find_reference(
                    tree, _qualified(code), mode=(_MODE.search(code) or [None, None])[1],
                    configs=_facts(code)).reason
                reasons[p.name] = why
            lines.append(f"{lang:6} {'ref' if ref else 'none':4} {runs.get(p.name, '-'):10} {p.relative_to(d)}: {why}")
    print("\n".join(lines))
    print("\ncounts (language, source):")
    for key in sorted(by):
        print(f"  {key[0]:6} {key[1]:15} {by[key]}")


if __name__ == "__main__":
    main(sys.argv[1:])
