"""How fast is collecting?  ``python bench/collect_speed.py [--jobs N] [--skip-all] [--profile NAME]``

Measures, on the cached vLLM sdist tree (``vkc.source.resolve_source()``):

1. the lower bound: parse every ``.py`` under ``vllm/`` with ``ast`` and read every file
   under ``csrc/`` once (in this process);
2. ``vkc collect --all`` (no compile), a subprocess writing to a temporary folder, with
   its wall time, CPU time and peak RSS (the largest child: ``ru_maxrss`` of
   RUSAGE_CHILDREN), against the target ``<= 20 x`` the lower bound; its per-kernel
   seconds come from collect_results.json (the slowest are listed);
3. one kernel per subprocess (``vkc collect NAME``, wall time including interpreter start):
   a CUDA kernel, a Triton kernel without a recipe (no trace), a Triton kernel with a
   recipe (warm trace) and one that needs the runtime fallback (importing its vLLM module;
   warm: answered from the on-disk cache), each warmed up once, then timed ``--repeat``
   times (default 3; the median is reported, all runs listed); then a Triton kernel with a
   recipe traced cold (fresh trace cache: a temporary VKC_CACHE_DIR that links the cached
   sdist; its index is built first, also timed) and then warm.  Target: warm < 1 s.
   ``--pyc`` gives the children a writable bytecode cache (a temporary PYTHONPYCACHEPREFIX)
   even under PYTHONDONTWRITEBYTECODE=1, as an installed vkc has its .pyc files; without
   it every fresh process recompiles vkc's own modules when bytecode writing is off.

``--profile NAME`` instead prints a cProfile of collecting NAME in this process (warm:
collected once untimed first, so lazily-built caches are filled), top 30 by cumulative time.
Everything printed is also written as JSON with ``--json FILE``.
"""
from __future__ import annotations

import argparse
import ast
import cProfile
import json
import os
import pstats
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CUDA_KERNEL = "rms_norm_kernel"
TRITON_PLAIN = "_gelu_and_mul_sparse_kernel"               # no recipe: no trace subprocess
TRITON_RECIPE = "vllm.v1.attention.ops.triton_unified_attention:reduce_segments"
TRITON_FALLBACK = "_masked_topk_sum_kernel"                # runtime fallback (imports its vLLM module)
TARGET_RATIO = 20.0
TARGET_WARM_S = 1.0


def lower_bound(root: Path) -> dict:
    t0 = time.perf_counter()
    n_py = n_other = nbytes = 0
    for dirpath, _, files in os.walk(root / "vllm"):
        for f in files:
            if f.endswith(".py"):
                data = Path(dirpath, f).read_bytes()
                nbytes += len(data)
                try:
                    ast.parse(data)
                except (SyntaxError, ValueError):
                    pass
                n_py += 1
    for dirpath, _, files in os.walk(root / "csrc"):
        for f in files:
            nbytes += len(Path(dirpath, f).read_bytes())
            n_other += 1
    return {"seconds": time.perf_counter() - t0, "py_files": n_py, "csrc_files": n_other, "bytes": nbytes}


def run_vkc(args: list[str], *, cwd: str, env: dict | None = None, timeout: float = 3600) -> dict:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    p = subprocess.run([sys.executable, "-m", "vkc", *args], check=False, cwd=cwd, env=env, capture_output=True, text=True,
                       timeout=timeout)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {"cmd": "vkc " + " ".join(args), "rc": p.returncode, "wall_s": round(wall, 3),
            "cpu_s": round((after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), 3),
            "stdout_tail": p.stdout.strip().splitlines()[-1:] if p.stdout.strip() else [],
            "stderr_tail": p.stderr.strip().splitlines()[-6:]}


def fresh_trace_cache(tmp: Path, base: dict | None = None) -> dict:
    """A VKC_CACHE_DIR holding the cached sdist (symlinked) but no index and no traces."""
    from vkc.source import DEFAULT_VERSION, cache_dir
    cache = tmp / "cache"
    cache.mkdir()
    (cache / f"vllm-{DEFAULT_VERSION}").symlink_to(cache_dir() / f"vllm-{DEFAULT_VERSION}")
    return {**(base if base is not None else os.environ), "VKC_CACHE_DIR": str(cache)}


def profile(name: str, out: str) -> None:
    from vkc.pipeline import collect
    collect(name, out_dir=out)                         # fill lazily-built caches
    prof = cProfile.Profile()
    t0 = time.perf_counter()
    prof.enable()
    collect(name, out_dir=out)
    prof.disable()
    print(f"warm in-process collect of {name}: {time.perf_counter() - t0:.3f} s")
    pstats.Stats(prof).sort_stats("cumulative").print_stats(30)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--skip-all", action="store_true", help="skip the `vkc collect --all` run")
    ap.add_argument("--skip-cold", action="store_true", help="skip the cold-trace single-kernel run")
    ap.add_argument("--profile", metavar="NAME", help="print a cProfile of collecting NAME and stop")
    ap.add_argument("--json", metavar="FILE", help="also write the numbers here")
    ap.add_argument("--repeat", type=int, default=3, help="timed runs per warm single collect (median reported)")
    ap.add_argument("--pyc", action="store_true", help="children write/read .pyc under a temporary PYTHONPYCACHEPREFIX")
    a = ap.parse_args()
    from vkc.source import resolve_source

    tree = resolve_source()
    tmp = Path(tempfile.mkdtemp(prefix="vkc-speed-"))
    report: dict = {"tree": str(tree.root), "cpus": os.cpu_count(), "jobs": a.jobs,
                    "loadavg_start": os.getloadavg()}
    try:
        if a.profile:
            profile(a.profile, str(tmp / "prof"))
            return 0
        lb = lower_bound(Path(tree.root))
        report["lower_bound"] = lb
        print(f"lower bound: ast.parse {lb['py_files']} .py + read {lb['csrc_files']} csrc files "
              f"({lb['bytes'] / 1e6:.1f} MB): {lb['seconds']:.2f} s", flush=True)
        if not a.skip_all:
            r = run_vkc(["collect", "--all", "--jobs", str(a.jobs), "--out", str(tmp / "all")], cwd=str(tmp))
            res = json.loads((tmp / "all" / "collect_results.json").read_text())
            ratio = r["wall_s"] / lb["seconds"]
            r.update(ratio=round(ratio, 2), summary=res["summary"],
                     slowest=[(k["name"], k["seconds"]) for k in sorted(res["kernels"], key=lambda k: -k["seconds"])[:8]],
                     worker_seconds=round(sum(k["seconds"] for k in res["kernels"]), 1))
            report["collect_all"] = r
            s = res["summary"]
            print(f"vkc collect --all --jobs {a.jobs}: {r['wall_s']:.1f} s wall, {r['cpu_s']:.1f} s CPU "
                  f"({s['total']} runs: {s['written']} written, {s['not_applicable']} n/a, {s['failed']} failed); "
                  f"{ratio:.1f}x the lower bound (target <= {TARGET_RATIO:g}x: "
                  f"{'ok' if ratio <= TARGET_RATIO else 'MISSED'})", flush=True)
            print(f"  worker seconds {r['worker_seconds']}; slowest: "
                  + ", ".join(f"{n} {s_:.1f}s" for n, s_ in r["slowest"]), flush=True)
        singles = []
        child_env = None
        if a.pyc:
            child_env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
            child_env["PYTHONPYCACHEPREFIX"] = str(tmp / "pycache")
        report["pyc"] = bool(a.pyc) or not sys.flags.dont_write_bytecode
        for label, name in (("cuda", CUDA_KERNEL), ("triton, no recipe", TRITON_PLAIN),
                            ("triton, recipe, warm trace", TRITON_RECIPE),
                            ("triton, runtime fallback, warm", TRITON_FALLBACK)):
            args = ["collect", name, "--out", str(tmp / "one")]
            run_vkc(args, cwd=str(tmp), env=child_env)      # warm-up (fills the .pyc, trace and fallback caches)
            runs = [run_vkc(args, cwd=str(tmp), env=child_env) for _ in range(max(1, a.repeat))]
            walls = [x["wall_s"] for x in runs]
            r = dict(runs[-1], label=label, wall_s=round(statistics.median(walls), 3), runs_wall_s=walls,
                     rc=max(x["rc"] for x in runs))
            singles.append(r)
            print(f"warm single: {label:<32} {name}: median {r['wall_s']:.2f} s of {walls} (rc {r['rc']}; "
                  f"target < {TARGET_WARM_S:g} s: {'ok' if r['wall_s'] < TARGET_WARM_S else 'MISSED'})", flush=True)
        if not a.skip_cold:
            env = fresh_trace_cache(tmp, child_env)
            r = run_vkc(["list"], cwd=str(tmp), env=env)
            print(f"index build (cold cache): {r['wall_s']:.2f} s", flush=True)
            report["index_cold"] = r
            for label in ("triton, recipe, cold trace", "triton, recipe, warm trace (same cache)"):
                r = run_vkc(["collect", TRITON_RECIPE, "--out", str(tmp / "cold")], cwd=str(tmp), env=env)
                r["label"] = label
                singles.append(r)
                print(f"single: {label:<40} {r['wall_s']:.2f} s (rc {r['rc']})", flush=True)
        report["singles"] = singles
        self_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        child_rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        report["peak_rss_mb"] = {"self": round(self_rss / 1024, 1), "largest_child": round(child_rss / 1024, 1)}
        report["loadavg_end"] = os.getloadavg()
        print(f"peak RSS: this process {self_rss / 1024:.0f} MB, largest child (a vkc process, a worker "
              f"or a trace subprocess) {child_rss / 1024:.0f} MB", flush=True)
        print(f"load average: start {report['loadavg_start'][0]:.1f}, end {report['loadavg_end'][0]:.1f} "
              f"on {os.cpu_count()} CPUs", flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        if a.json:
            Path(a.json).write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
