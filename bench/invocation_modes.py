"""How model-accurate is a folder of artifacts?  Counts invocation modes from collect_results.json.

    python bench/invocation_modes.py DIR [DIR ...] [--json]

Reads ``DIR/collect_results.json`` (and nested ones) as ``vkc collect --all`` writes them, and
prints, per language: artifacts written, model-accurate ones (modes ``model-traced``, ``recipe``,
``test-traced``) as a share of the written ones, and the split by mode, by source and by family.
Records written by a vkc that predates ``invocation_mode`` are read from the artifact's header.

* source: ``model-traced: <model> <workload>`` (which model's step sized it), ``test-traced: <test
  file>`` / ``vllm-sized: <test file>``, else the mode (``recipe``, ``synthesized``);
* family: ``vkc.invoke.core.family.Family.of`` over the kernel's file and name, as ``<family>:<mode>``
  (and the model-accurate share per family);
* reach: how many kernels took their model from ``collect --all``'s reach map (record ``reach``), how
  many of those are model-accurate, and how many fell back (``reach_fallback``).
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from collections import Counter, defaultdict
from pathlib import Path

ACCURATE = ("model-traced", "recipe", "test-traced")
_MODE_LINE = re.compile(r"^(?:#|//) invocation: ([a-z-]+)", re.M)


def _records(root: Path) -> list[dict]:
    out = []
    for res in sorted(root.rglob("collect_results.json")):
        data = json.loads(res.read_text())
        for r in data.get("kernels", []):
            if r.get("status") != "written":
                continue
            path = Path(r.get("path") or "")
            if not path.is_file() and len(path.parts) > 1:  # relative to the folder the run started in
                path = res.parent / Path(*path.parts[1:])
            out.append(dict(r, path=str(path)))
    return out


def _mode(rec: dict) -> str:
    if rec.get("invocation_mode"):
        return str(rec["invocation_mode"])
    path = Path(rec.get("path") or "")
    if path.is_file():
        code = json.loads(path.read_text())["kernel"]["invocation_example"]
        m = _MODE_LINE.search(code)
        if m:
            return m.group(1)
        if "UNTRACED" in code or "untraced" in code[:4000]:
            return "synthesized"
        return "recipe"
    return "unknown"


def _family(rec: dict) -> str:
    if rec.get("family"):
        return str(rec["family"])
    from vkc.invoke.core.family import Family

    q = str(rec.get("qualified") or rec.get("name") or "")
    path, _, name = q.rpartition(":")
    if rec.get("lang") == "triton" and path:
        path = path.replace(".", "/") + ".py"
    return Family.of(path, name or q).value


def _source(rec: dict) -> str:
    mode, src = _mode(rec), str(rec.get("invocation_source") or "")
    if mode == "model-traced":
        return f"model-traced: {' '.join(src.split()[:2]) or '?'}"
    if mode in ("test-traced", "vllm-sized"):
        return f"{mode}: {src.split('::')[0].split()[0] if src else '?'}"
    return mode


def summarise(records: list[dict]) -> dict:
    by_lang: dict[str, dict] = {}
    groups: dict[str, list[dict]] = defaultdict(list)
    for r in records:
        groups[r.get("lang") or "?"].append(r)
    for lang, recs in sorted(groups.items()):
        modes = Counter(_mode(r) for r in recs)
        acc = sum(n for m, n in modes.items() if m in ACCURATE)
        fam = Counter(f"{_family(r)}:{_mode(r)}" for r in recs)
        src = Counter(_source(r) for r in recs)
        fam_share = {f: f"{sum(1 for r in recs if _family(r) == f and _mode(r) in ACCURATE)}/"
                        f"{sum(1 for r in recs if _family(r) == f)}" for f in sorted({_family(r) for r in recs})}
        reached = [r for r in recs if r.get("reach")]
        by_lang[lang] = {"written": len(recs), "model_accurate": acc,
                         "share": round(acc / len(recs), 4) if recs else 0.0,
                         "by_mode": dict(sorted(modes.items())), "by_source": dict(sorted(src.items())),
                         "by_family": dict(sorted(fam.items())), "family_accurate": fam_share,
                         "reach": {"used": len(reached),
                                   "model_accurate": sum(1 for r in reached if _mode(r) in ACCURATE),
                                   "fell_back": sum(1 for r in recs if r.get("reach_fallback"))}}
    return by_lang


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dirs", nargs="+", type=Path)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args(argv)
    records = [r for d in a.dirs for r in _records(d)]
    if not records:
        print("no written artifacts found (is there a collect_results.json?)", file=sys.stderr)
        return 1
    s = summarise(records)
    if a.json:
        print(json.dumps(s, indent=2, sort_keys=True))
        return 0
    for lang, d in s.items():
        print(f"{lang}: {d['written']} written, {d['model_accurate']} model-accurate ({100 * d['share']:.1f}%)")
        print("  by mode:   " + ", ".join(f"{m} {n}" for m, n in d["by_mode"].items()))
        print("  by source: " + ", ".join(f"{m} {n}" for m, n in d["by_source"].items()))
        print("  by family: " + ", ".join(f"{m} {n}" for m, n in d["by_family"].items()))
        print("  model-accurate per family: " + ", ".join(f"{m} {n}" for m, n in d["family_accurate"].items()))
        rr = d["reach"]
        print(f"  reach map: {rr['used']} took their model from it, {rr['model_accurate']} of them model-accurate; "
              f"{rr['fell_back']} fell back")
    return 0


if __name__ == "__main__":
    sys.exit(main())
