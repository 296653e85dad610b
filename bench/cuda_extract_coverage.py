"""Coverage of the CUDA extractor: extract + nvcc-compile every non-ROCm kernel.

Usage: python bench/cuda_extract_coverage.py [--workers 2] [--limit N] [--names a,b]
                                            [--json out.json] [--only-failed prev.json]
Prints counts, time per kernel and failures grouped by reason.  ``--json`` saves the
per-kernel results; ``--only-failed prev.json`` reruns just the kernels that did not pass
there and reports the merged totals.
"""
from __future__ import annotations

import argparse
import json
import re
import tempfile
import time
from collections import Counter, defaultdict
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path


def _one(qualified: str) -> tuple[str, str, str, float, float]:
    from vkc.errors import ExtractionError
    from vkc.extract.cuda import extract_cuda
    from vkc.index.build import scan_cuda_cached
    from vkc.source import resolve_source
    from vkc.toolchain.nvcc import first_error
    from vkc.verify import cuda_compile as cc
    tree = resolve_source()
    k = next(k for k in scan_cuda_cached(tree) if k.qualified == qualified)
    t0 = time.time()
    try:
        e = extract_cuda(tree, k)
    except ExtractionError as ex:
        return qualified, "extract-error", str(ex.message)[:160], time.time() - t0, 0.0
    except Exception as ex:  # noqa: BLE001 - a bug: report it
        return qualified, "extract-crash", f"{type(ex).__name__}: {ex}"[:160], time.time() - t0, 0.0
    t1 = time.time()
    insts = []
    if k.template_params:
        ex_args = e.facts.get("example_instantiation")
        if ex_args is None:
            return qualified, "no-instantiation", "unbound: " + ", ".join(e.facts["unbound_template_args"])[:120], t1 - t0, 0.0
        insts = [f"{k.qualname}<{ex_args}>"]
    with tempfile.TemporaryDirectory() as td:
        ok, err, obj = cc.compile_source(e.source_code, "unit", insts, Path(td))
        ok = ok and cc.has_symbol(obj, k.name)
    t2 = time.time()
    if ok:
        return qualified, "ok", "", t1 - t0, t2 - t1
    msg = first_error(err)
    msg = re.sub(r"^.*?error:\s*", "", msg)
    return qualified, "compile-error", msg[:160], t1 - t0, t2 - t1


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--limit", type=int, default=0)
    ap.add_argument("--names", default="")
    ap.add_argument("--json", default="", help="write per-kernel results here")
    ap.add_argument("--only-failed", default="",
                    help="rerun the failures of this --json file (and kernels it lacks)")
    a = ap.parse_args()
    from vkc.index.cuda_scan import scan_cuda
    from vkc.source import resolve_source
    tree = resolve_source()
    t0 = time.time()
    ks = [k for k in scan_cuda(tree) if not k.rocm_only]
    print(f"scan: {len(ks)} CUDA kernels in {time.time() - t0:.1f}s")
    if a.names:
        want = set(a.names.split(","))
        ks = [k for k in ks if k.name in want or k.qualified in want]
    prev: dict[str, list] = {}
    if a.only_failed:
        prev = {r[0]: r for r in json.loads(Path(a.only_failed).read_text())}
        ks = [k for k in ks if k.qualified not in prev or prev[k.qualified][1] != "ok"]
    if a.limit:
        ks = ks[: a.limit]
    res = []
    t0 = time.time()
    with ProcessPoolExecutor(a.workers) as ex:
        for r in ex.map(_one, [k.qualified for k in ks]):
            res.append(r)
            print(f"{r[1]:16s} {r[3]:5.2f}s {r[4]:6.1f}s {r[0]}  {r[2]}", flush=True)
            if a.json:   # incremental: an interrupted run can be resumed with --only-failed
                done = {x[0] for x in res}
                keep = [list(x) for q, x in sorted(prev.items()) if q not in done]
                Path(a.json).write_text(json.dumps(keep + [list(x) for x in res], indent=0))
    wall = time.time() - t0
    print(f"\n{len(res)} kernels (re)run, wall {wall:.0f}s with {a.workers} workers"
          f" ({wall / max(len(res), 1):.1f}s per kernel)")
    if prev:
        rerun = {r[0] for r in res}
        res = [list(r) for q, r in sorted(prev.items()) if q not in rerun] + [list(r) for r in res]
    if a.json:
        Path(a.json).write_text(json.dumps([list(r) for r in res], indent=0))
    c = Counter(r[1] for r in res)
    n = len(res)
    print(f"{n} kernels in total")
    for k, v in sorted(c.items()):
        print(f"  {k:16s} {v:4d} ({100 * v / max(n, 1):.1f}%)")
    ext = [r[3] for r in res]
    comp = [r[4] for r in res if r[4]]
    if ext:
        print(f"  extract: mean {sum(ext) / len(ext):.2f}s max {max(ext):.2f}s")
    if comp:
        comp.sort()
        print(f"  nvcc: median {comp[len(comp) // 2]:.1f}s max {max(comp):.1f}s")
    groups = defaultdict(list)
    for r in res:
        if r[1] != "ok":
            groups[(r[1], re.sub(r'"[^"]*"', '"…"', r[2])[:90])].append(r[0])
    print("\nfailures by reason:")
    for (kind, reason), qs in sorted(groups.items(), key=lambda kv: -len(kv[1])):
        print(f"  [{kind}] x{len(qs)} {reason}")
        for q in qs[:4]:
            print(f"      {q}")


if __name__ == "__main__":
    main()
