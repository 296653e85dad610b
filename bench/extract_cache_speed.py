"""What does the extraction cache save a warm ``vkc collect KERNEL --model M``?  (issue 15, "Recovery")

    python bench/extract_cache_speed.py [--repeat 5] [--no-trace] [--live] [--json FILE]

For each kernel below (a Triton kernel without a recipe, two CUDA kernels -- one the tree's slowest
to extract --, two big Triton kernels), ``vkc collect KERNEL --model M --out DIR`` runs as a
subprocess (interpreter start included), first
once per mode untimed (fills the .pyc, index, trace and extraction caches), then ``--repeat`` times
per mode, the two modes alternating: ``hit`` (the extraction cache answers) and ``off``
(``VKC_NO_EXTRACT_CACHE=1``: the kernel is extracted, as before the cache).  Medians are printed,
with every run, and whether both modes wrote the same artifact bytes.  The last row is the retry
of a collect that fails after extracting (a MoE kernel at a dense model: exit 12).  Also, in a
fresh process per mode, the pipeline's extract step alone (``extract(..., cache=True)`` after the
index is loaded: a hit reads and decodes the entry, ``off`` runs the extractor).  Wall and CPU time
(user + system of the ``vkc`` process and its children) are both reported: on a shared machine the
CPU time is the steadier number.

All runs use a frozen copy of ``src/vkc`` (first on ``PYTHONPATH``; ``--live`` uses the checkout) so
that others editing the checkout do not change the extractor digest between runs.  ``--no-trace``
sets ``VKC_MODEL_TRACE=0 VKC_TEST_TRACE=0``.  Prints numbers; not a test.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

LLAMA = "meta-llama/Llama-3.1-8B-Instruct"
CASES = [  # (label, kernel, model, expected exit status)
    ("triton, no recipe", "_gelu_and_mul_sparse_kernel", LLAMA, 0),
    ("cuda", "rms_norm_kernel", LLAMA, 0),
    ("cuda, slowest extraction", "masked_act_and_mul_kernel", LLAMA, 0),   # ~7 s: the tree's slowest
    ("triton, big", "kernel_unified_attention", LLAMA, 0),
    ("triton, big, MoE", "fused_moe_kernel", "Qwen/Qwen3-30B-A3B", 0),
    ("retry of a failed invocation", "fused_moe_kernel", LLAMA, 12),
]
_EXTRACT_STEP = """
import sys, time
from vkc.extract import extract
from vkc.index import lookup
from vkc.pipeline import load_index
index = load_index()
kernel = lookup(index, sys.argv[1])
t0 = time.perf_counter()
try:
    extract(index.tree, kernel, name=sys.argv[1], cache=True)
except Exception:
    pass
print(f"{time.perf_counter() - t0:.4f}")
"""


def freeze_code(dest: Path) -> Path:
    src = Path(__file__).resolve().parent.parent / "src" / "vkc"
    shutil.copytree(src, dest / "vkc", ignore=shutil.ignore_patterns("__pycache__"))
    return dest


def child_env(code: Path | None, no_trace: bool, cache_on: bool) -> dict[str, str]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    if code is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(code)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    if no_trace:
        env.update(VKC_MODEL_TRACE="0", VKC_TEST_TRACE="0")
    if cache_on:
        env.pop("VKC_NO_EXTRACT_CACHE", None)
    else:
        env["VKC_NO_EXTRACT_CACHE"] = "1"
    return env


def run_collect(kernel: str, model: str, out: Path, env: dict[str, str]) -> tuple[float, float, int, bytes | None]:
    """Wall and CPU seconds (user + system of the child and its children), exit status, artifact bytes."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    p = subprocess.run([sys.executable, "-m", "vkc", "collect", kernel, "--model", model, "--out", str(out)],
                       capture_output=True, text=True, env=env, cwd=str(out.parent), timeout=1800, check=False)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    art = out / f"{kernel}.json"
    data = art.read_bytes() if p.returncode == 0 and art.is_file() else None
    if data is not None:
        art.unlink()
    return wall, cpu, p.returncode, data


def extract_step_seconds(kernel: str, env: dict[str, str]) -> float:
    """The pipeline's extract step alone in a fresh process (after the index is loaded)."""
    p = subprocess.run([sys.executable, "-c", _EXTRACT_STEP, kernel], capture_output=True, text=True, env=env,
                       timeout=600, check=True)
    return float(p.stdout.strip().splitlines()[-1])


def bench_case(label: str, kernel: str, model: str, want_rc: int, tmp: Path, envs: dict[str, dict[str, str]],
               repeat: int) -> dict:
    out = tmp / "out"
    out.mkdir(exist_ok=True)
    walls: dict[str, list[float]] = {"hit": [], "off": []}
    cpus: dict[str, list[float]] = {"hit": [], "off": []}
    rcs: set[int] = set()
    arts: set[bytes | None] = set()
    for mode in ("hit", "off"):                              # warm-up: every cache filled
        rcs.add(run_collect(kernel, model, out, envs[mode])[2])
    for _ in range(repeat):
        for mode in ("hit", "off"):
            wall, cpu, rc, data = run_collect(kernel, model, out, envs[mode])
            walls[mode].append(round(wall, 3))
            cpus[mode].append(round(cpu, 3))
            rcs.add(rc)
            arts.add(data)
    step = {m: statistics.median(extract_step_seconds(kernel, envs[m]) for _ in range(repeat)) for m in ("hit", "off")}
    med = {m: statistics.median(w) for m, w in walls.items()}
    cpu_med = {m: statistics.median(c) for m, c in cpus.items()}
    r = {"label": label, "kernel": kernel, "model": model, "rc": sorted(rcs), "expected_rc": want_rc,
         "wall_median_s": med, "cpu_median_s": cpu_med, "runs_wall_s": walls, "runs_cpu_s": cpus,
         "extract_step_median_s": {m: round(v, 4) for m, v in step.items()}, "same_bytes": len(arts) == 1}
    print(f"{label:<29} {kernel:<28} wall hit {med['hit']:.2f} / off {med['off']:.2f} s; "
          f"CPU hit {cpu_med['hit']:.2f} / off {cpu_med['off']:.2f} s; extract step hit {step['hit']:.3f} / "
          f"off {step['off']:.3f} s; rc {sorted(rcs)}; {'same bytes' if r['same_bytes'] else 'BYTES DIFFER'}",
          flush=True)
    return r


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5, help="timed runs per mode (median reported)")
    ap.add_argument("--no-trace", action="store_true", help="VKC_MODEL_TRACE=0 VKC_TEST_TRACE=0")
    ap.add_argument("--live", action="store_true", help="run the checkout's code, not a frozen copy")
    ap.add_argument("--json", metavar="FILE", help="also write the numbers here")
    a = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="vkc-extract-cache-"))
    report: dict = {"cpus": os.cpu_count(), "repeat": a.repeat, "no_trace": a.no_trace,
                    "loadavg_start": os.getloadavg(), "cases": []}
    try:
        code = None if a.live else freeze_code(tmp / "code")
        envs = {"hit": child_env(code, a.no_trace, True), "off": child_env(code, a.no_trace, False)}
        for label, kernel, model, rc in CASES:
            report["cases"].append(bench_case(label, kernel, model, rc, tmp, envs, max(1, a.repeat)))
        report["loadavg_end"] = os.getloadavg()
        print(f"load average: start {report['loadavg_start'][0]:.1f}, end {report['loadavg_end'][0]:.1f} "
              f"on {os.cpu_count()} CPUs", flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        if a.json:
            Path(a.json).write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
