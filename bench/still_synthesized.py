"""The most-launched kernels whose artifact is not model-accurate, and why.

    python bench/still_synthesized.py DIR [--top N]

DIR is a ``vkc collect --all`` output (its ``collect_results.json``).  For every written artifact that
is not model-accurate: the model and workload the reach map gave it, the number of launches of the
kernel in that (model, workload)'s FULL traced step (Triton launches by name; CUDA ops whose dispatch
rule says the call launches the kernel, or may), and the reason its header gives ("fell back from
model-traced: ...").  Kernels no trace reaches have no launch count; they are counted by family.
"""
from __future__ import annotations

import argparse
import collections
import json
import re
import sys
from pathlib import Path
from typing import Any

_WHY = re.compile(r"fell back from model-traced: ([^\n\\]*)")


def _reason(path: str) -> str:
    try:
        code = json.loads(Path(path).read_text())["kernel"]["invocation_example"]
    except (OSError, ValueError, KeyError, TypeError):
        return "(artifact unreadable)"
    m = _WHY.search(code)
    return " ".join(m.group(1).split())[:220] if m else "(no fallback line: no reached launch)"


def _counts(rows: list[dict[str, Any]]) -> dict[str, int]:
    """qualified -> launches in its reach's FULL step."""
    from vkc.batch.used import op_map
    from vkc.index import build_index
    from vkc.invoke.cuda.modeltraced import call_launches
    from vkc.invoke.triton.modeltraced import session
    from vkc.invoke.triton.modeltraced.session import FULL_STEPS
    from vkc.modelcfg import load_model_cached
    from vkc.source import resolve_source

    tree = resolve_source(None)
    index = build_index(tree)
    known = {k.qualified: k for k in index.kernels if k.role == "entry"}
    ops = op_map(index)
    out: dict[str, int] = {}
    by_reach: dict[tuple[str, str], list[str]] = collections.defaultdict(list)
    for r in rows:
        if r.get("reach"):
            by_reach[(r["model"], r["workload"])].append(r["qualified"])
    for (model, workload), quals in sorted(by_reach.items()):
        trace = session.model_trace_for(tree, load_model_cached(model))
        step = next((s for s in trace.steps if s.spec == FULL_STEPS[workload]), None)
        for q in quals:
            n = 0
            for ev in (step.events if step else ()):
                if ev.kind == "triton" and ev.name == q:
                    n += 1
                elif ev.kind == "op" and q in ops(ev.name) and q in known:
                    n += call_launches(q, ev, entry=known[q], tree=tree) is not False
            out[q] = n
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("dir")
    p.add_argument("--top", type=int, default=20)
    a = p.parse_args()
    res = json.loads((Path(a.dir) / "collect_results.json").read_text())
    rows = [r for r in res["kernels"] if r.get("status") == "written" and not r.get("model_accurate")]
    counts = _counts(rows)
    reached = sorted((r for r in rows if r["qualified"] in counts), key=lambda r: (-counts[r["qualified"]], r["qualified"]))
    print(f"# {len(rows)} written artifacts not model-accurate; {len(reached)} of them reached by a traced step")
    print(f"# top {a.top} by launches in their reach's FULL step (model workload: launches, mode, why)")
    for r in reached[:a.top]:
        print(f"{counts[r['qualified']]:4d}  {r['lang']:6s} {r['qualified']}  [{r['model']} {r['workload']}, "
              f"{r['invocation_mode']}]  {_reason(r['path'])}")
    fam: collections.Counter[str] = collections.Counter()
    for r in rows:
        if r["qualified"] not in counts:
            q = r["qualified"]
            parts = q.split(":")[0].split(".") if r["lang"] == "triton" else q.split("/")[:3]
            fam[".".join(parts[:4]) if r["lang"] == "triton" else "/".join(parts)] += 1
    print(f"# not reached by any traced step: {sum(fam.values())}, by folder (top 25)")
    for k, n in fam.most_common(25):
        print(f"{n:4d}  {k}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
