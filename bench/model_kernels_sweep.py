"""``vkc model kernels`` over every bundled model x decode/prefill: which succeed, and the distinct
tree kernels their steps reach (custom ops resolved to their CUDA kernels by vkc's op map).

    python bench/model_kernels_sweep.py [--attention-backend NAME] [--out DIR]

Prints one line per (model, workload): rc, seconds, tree ops/kernels reached; then the totals and
the distinct kernel names.  Each model's first workload pays the trace (one process traces both);
the second reads its cache.  ``--out`` keeps each ``--json`` result.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _models() -> list[str]:
    return sorted(p.stem.replace("__", "/", 1) for p in (ROOT.parent / "shared" / "models").glob("*.json"))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--attention-backend", default=None)
    ap.add_argument("--out", type=Path, default=None)
    a = ap.parse_args()
    from vkc.index import build_index
    from vkc.invoke.cuda.modeltraced.opmap import op_kernel_map
    from vkc.source import resolve_source

    ops = op_kernel_map(build_index(resolve_source()))
    ok = fail = 0
    kernels: dict[str, set[str]] = {"triton": set(), "cuda": set()}
    unmapped: set[str] = set()
    for model in _models():
        for wl in ("decode", "prefill"):
            cmd = [sys.executable, "-m", "vkc", "model", "kernels", model, "--workload", wl, "--json"]
            if a.attention_backend:
                cmd += ["--attention-backend", a.attention_backend]
            t = time.perf_counter()
            p = subprocess.run(cmd, capture_output=True, text=True, check=False)
            dt = time.perf_counter() - t
            if p.returncode != 0:
                fail += 1
                print(f"{model:45s} {wl:8s} rc={p.returncode} {dt:5.1f}s  {p.stderr.strip().splitlines()[-1:]}")
                continue
            ok += 1
            d = json.loads(p.stdout)
            if a.out:
                a.out.mkdir(parents=True, exist_ok=True)
                (a.out / f"{model.replace('/', '__')}.{wl}.json").write_text(p.stdout)
            names = {r["name"] for r in d["rows"] if r["origin"] == "tree"}
            here: set[str] = set()
            for n in names:
                if ":" in n and "::" not in n:          # Triton "module:qualname"
                    kernels["triton"].add(n)
                    here.add(n)
                elif n in ops:
                    kernels["cuda"].update(ops[n].kernels)
                    here.update(ops[n].kernels)
                else:
                    unmapped.add(n)
            print(f"{model:45s} {wl:8s} rc=0 {dt:5.1f}s  tree ops/kernels {len(names):3d}  kernels {len(here):3d}")
    total = len(kernels["triton"]) + len(kernels["cuda"])
    print(f"\n{ok} of {ok + fail} model x workload runs succeeded")
    print(f"distinct tree kernels reached: {total} ({len(kernels['triton'])} Triton launched, {len(kernels['cuda'])} CUDA "
          "that the called ops can launch: vkc's op map; which one runs depends on the op's C++ dispatch)")
    for lang in ("triton", "cuda"):
        for k in sorted(kernels[lang]):
            print(f"  {lang:6s} {k}")
    if unmapped:
        print(f"ops with no kernel in vkc's op map: {', '.join(sorted(unmapped))}")
    return 0 if fail == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
