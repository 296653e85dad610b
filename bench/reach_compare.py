"""Compare a ``collect --all --no-reach`` tree with a reach-map tree (issue 12): the kernels the reach
map did not move must be byte-identical; the moved ones, how their invocation mode changed.

    python bench/reach_compare.py BEFORE_DIR AFTER_DIR [--json]

AFTER_DIR's ``collect_results.json`` says which kernels took their model from the reach map (record
``reach``, or ``reach_fallback`` when that failed and the kernel was collected as without the map).
Before comparing, the ``--out DIR`` of the regenerate line (``# regenerate with: vkc collect ...`` /
``// COMMAND: vkc collect ...``) is normalised, so the two runs may write to different folders.
``--ignore-line REGEX`` drops matching example lines on both sides first (a change made by someone
else between the two runs, named in the report).  Exit 1 when a kernel outside the map differs.
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from collections import Counter
from pathlib import Path

_OUT = re.compile(r"^((?:#|//) (?:regenerate with|COMMAND): vkc collect .*?--out )(\S+)", re.M)
_MODE = re.compile(r"^(?:#|//) invocation: ([a-z-]+)", re.M)


def _normalised(path: Path, ignore: re.Pattern[str] | None = None) -> tuple[str, str]:
    """(the artifact's JSON text with ``--out`` normalised, its invocation mode)."""
    obj = json.loads(path.read_text())
    code = obj["kernel"]["invocation_example"]
    m = _MODE.search(code)
    if ignore is not None:
        code = "\n".join(ln for ln in code.split("\n") if not ignore.search(ln))
    obj["kernel"]["invocation_example"] = _OUT.sub(r"\1OUT", code)
    return json.dumps(obj, sort_keys=True), (m.group(1) if m else "unknown")


def _records(root: Path) -> dict[str, dict]:
    data = json.loads((root / "collect_results.json").read_text())
    return {Path(r["path"]).name: r for r in data["kernels"] if r.get("status") == "written" and r.get("path")}


def compare(before: Path, after: Path, ignore: re.Pattern[str] | None = None) -> dict:
    rb, ra = _records(before), _records(after)
    moved = {f for f, r in ra.items() if r.get("reach")}
    fell = {f for f, r in ra.items() if r.get("reach_fallback")}
    same_out, differ_out, transitions = 0, [], Counter()
    same_in = 0
    for f in sorted(set(rb) & set(ra)):
        tb, mb = _normalised(before / f, ignore)
        ta, ma = _normalised(after / f, ignore)
        if f in moved:
            transitions[f"{ra[f]['lang']}: {mb} -> {ma}"] += 1
            same_in += tb == ta
        elif tb == ta:
            same_out += 1
        else:
            differ_out.append(f)
    return {"before": len(rb), "after": len(ra), "only_before": sorted(set(rb) - set(ra)),
            "only_after": sorted(set(ra) - set(rb)), "reach": len(moved), "reach_fell_back": len(fell),
            "reach_identical": same_in, "outside_identical": same_out, "outside_differ": differ_out,
            "transitions": dict(sorted(transitions.items()))}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("before", type=Path)
    ap.add_argument("after", type=Path)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--ignore-line", metavar="REGEX", default=None)
    a = ap.parse_args(argv)
    c = compare(a.before, a.after, re.compile(a.ignore_line) if a.ignore_line else None)
    if a.json:
        print(json.dumps(c, indent=1, sort_keys=True))
    else:
        print(f"written: before {c['before']}, after {c['after']}; only before {len(c['only_before'])}, "
              f"only after {len(c['only_after'])}")
        print(f"outside the reach map: {c['outside_identical']} byte-identical, {len(c['outside_differ'])} differ")
        for f in c["outside_differ"][:20]:
            print(f"  differs: {f}")
        print(f"reach map: {c['reach']} kernels took their model from it ({c['reach_identical']} unchanged), "
              f"{c['reach_fell_back']} fell back")
        for t, n in c["transitions"].items():
            print(f"  {t}: {n}")
    return 1 if c["outside_differ"] else 0


if __name__ == "__main__":
    sys.exit(main())
