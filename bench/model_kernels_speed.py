"""Time one model's kernel map (``vkc model kernels``) for both workloads, cold and warm.

    python bench/model_kernels_speed.py [MODEL]      (default meta-llama/Llama-3.1-8B-Instruct)

Cold: a fresh ``VKC_CACHE_DIR`` (the unpacked vLLM sdist is linked in, so only the model trace is
cold): the first command runs the one trace process, which traces decode and prefill; the second
reads its cache.  Warm: both again on the warm cache.  Prints one line per run and a summary.
"""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _vkc(args: list[str], env: dict[str, str]) -> float:
    t = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "vkc", *args], env=env, capture_output=True, text=True, check=False)
    dt = time.perf_counter() - t
    if proc.returncode != 0:
        raise SystemExit(f"vkc {' '.join(args)} failed ({proc.returncode}): {proc.stderr.strip()[-400:]}")
    return dt


def main() -> int:
    model = sys.argv[1] if len(sys.argv) > 1 else "meta-llama/Llama-3.1-8B-Instruct"
    from vkc.source import cache_dir, resolve_source

    tree = resolve_source()
    src_cache = Path(cache_dir())
    with tempfile.TemporaryDirectory(prefix="vkc-bench-") as tmp:
        for entry in src_cache.iterdir():      # share the sdist and the index, not the model traces
            if entry.name.startswith("vllm-") or entry.name == "index":
                os.symlink(entry, Path(tmp) / entry.name)
        env = dict(os.environ, VKC_CACHE_DIR=tmp, HF_HUB_OFFLINE="1")
        times: dict[str, float] = {}
        for phase in ("cold", "warm"):
            for wl in ("decode", "prefill"):
                dt = _vkc(["model", "kernels", model, "--workload", wl, "--json"], env)
                times[f"{phase}-{wl}"] = dt
                print(f"{phase:4} {wl:7} {dt:7.2f} s", flush=True)
        n = len(list((Path(tmp) / "modeltraces").glob("*.json")))
    print(f"model={model} vllm={tree.version} trace_processes={n} "
          f"cold_both={times['cold-decode'] + times['cold-prefill']:.2f}s "
          f"warm_both={times['warm-decode'] + times['warm-prefill']:.2f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
