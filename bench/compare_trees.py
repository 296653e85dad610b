"""Compare two artifact trees written by `vkc collect --all` (byte identity across a change).

    python bench/compare_trees.py BEFORE_DIR AFTER_DIR

Prints files only in one tree, how many are byte-identical, and for the differing ones whether
``source_code`` changed and which lines of ``invocation_example`` changed, grouped by the header key
(``// WORKLOAD``, ``# invocation``, ...) or the first characters of a code line.  Used for issue 10's
acceptance (the same run before and after, each with a fresh VKC_CACHE_DIR and HF_HUB_OFFLINE=1).
"""
from __future__ import annotations

import collections
import difflib
import json
import sys
from pathlib import Path


def _key(line: str) -> str:
    t = line[1:].strip()
    if t.startswith(("//", "#")):
        return line[0] + t.split(":")[0][:50]
    return line[0] + "code: " + t[:50]


def main(argv: list[str]) -> int:
    a, b = Path(argv[0]), Path(argv[1])
    fa = {p.relative_to(a) for p in a.rglob("*.json") if p.name != "collect_results.json"}
    fb = {p.relative_to(b) for p in b.rglob("*.json") if p.name != "collect_results.json"}
    print(f"files: before {len(fa)}, after {len(fb)}, common {len(fa & fb)}")
    for p in sorted(fa - fb):
        print(f"  only before: {p}")
    for p in sorted(fb - fa):
        print(f"  only after: {p}")
    same, src, kinds = 0, 0, collections.Counter()
    for rel in sorted(fa & fb):
        x, y = (a / rel).read_bytes(), (b / rel).read_bytes()
        if x == y:
            same += 1
            continue
        jx, jy = json.loads(x)["kernel"], json.loads(y)["kernel"]
        src += jx["source_code"] != jy["source_code"]
        for line in difflib.unified_diff(jx["invocation_example"].splitlines(),
                                         jy["invocation_example"].splitlines(), lineterm="", n=0):
            if not line.startswith(("---", "+++", "@@")):
                kinds[_key(line)] += 1
    print(f"identical: {same}; differing: {len(fa & fb) - same} (source_code differs in {src})")
    for k, n in kinds.most_common(40):
        print(f"  {n:6d} changed lines  {k}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
