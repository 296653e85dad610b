"""How many of vLLM's op host functions build against vkc's Tensor stand-in (the wrapper-compiled path).

    python bench/wrapped_compile.py reached [--models ID ...] [--jobs N] [--compile-only] [--keep DIR]
    python bench/wrapped_compile.py all [--jobs N] [--compile-only] [--keep DIR]

``reached``: the bundled models' traces (``model_trace_for``: cached, or one worker run per model), FULL
decode and prefill steps; for every (op, kernel) a step's op call launches (the op map narrowed by vkc's
dispatch rules, as ``--all-used`` counts them), the first such call.  Its wrapper-compiled program is
rendered (:func:`vkc.invoke.cuda.wrapped.invoke_wrapped`, recipes bypassed) and built with nvcc
(``-arch=sm_90``, linked unless ``--compile-only``).  These are the model-traced programs.

``all``: every op of the op map, called with a SYNTHETIC op call made from its schema only (every
tensor bfloat16 [16, 128], scalars at their defaults or a small value): it tests only whether the host
function compiles against the stand-in -- those programs are not model-accurate and their launches
mean nothing; the numbers are labelled as such.

Prints one line per program (status, first nvcc error or refusal) and the totals by status.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def _tree_and_index() -> tuple[Any, Any, Any]:
    from vkc.index import build_index
    from vkc.invoke.cuda.modeltraced.opmap import op_kernel_map
    from vkc.source import resolve_source

    tree = resolve_source()
    index = build_index(tree)
    return tree, index, op_kernel_map(index)


def _extract(tree: Any, index: Any, qual: str, cache: dict[str, Any]) -> Any:
    from vkc.extract.cuda import extract_cuda

    if qual not in cache:
        entry = next((k for k in index.kernels if k.qualified == qual), None)
        try:
            cache[qual] = extract_cuda(tree, entry) if entry is not None else None
        except Exception as e:  # noqa: BLE001 -- an extraction failure is a result here
            cache[qual] = e
    return cache[qual]


def _reached_jobs(tree: Any, index: Any, opmap: Any, models: list[str]) -> list[dict[str, Any]]:
    """One job per (op, kernel of the op): every distinct call of the op in the models' FULL steps, in order
    (the first that launches the kernel is used)."""
    from vkc.invoke.cuda.modeltraced.bind import call_text
    from vkc.invoke.cuda.wrapped.traced import step_call
    from vkc.invoke.triton.modeltraced.session import FULL_STEPS, model_trace_for
    from vkc.modelcfg import load_model

    jobs: dict[tuple[str, str], dict[str, Any]] = {}
    for model_id in models:
        model = load_model(model_id, offline=True)
        try:
            trace = model_trace_for(tree, model)
        except Exception as e:  # noqa: BLE001
            print(f"{model_id}: trace failed: {e}", file=sys.stderr)
            continue
        for wl, spec in FULL_STEPS.items():
            try:
                step = trace.step(spec)
            except KeyError:
                continue
            for ev in step.events:
                if ev.kind != "op" or ev.name not in opmap:
                    continue
                for k in opmap[ev.name].kernels:
                    job = jobs.setdefault((ev.name, k), {"op": ev.name, "kernel": k, "calls": [], "seen": set()})
                    if call_text(ev) not in job["seen"]:
                        job["seen"].add(call_text(ev))
                        job["calls"].append((model, wl, step_call(trace, step, ev, f"{model_id} {wl} layer {ev.layer}")))
    return [jobs[k] for k in sorted(jobs)]


def _synthetic_call(op: str, root: str) -> Any:
    from vkc.invoke.cuda.wrapped import OpCall
    from vkc.invoke.cuda.wrapped.schema import op_schema
    from vkc.modeltrace.records import ScalarArg, TensorArg, TracedEvent

    got = op_schema(root, op)
    if got is None:
        return None
    args: list[tuple[str, Any]] = []
    for i, a in enumerate(got[1]):
        def tensor(j: int = 0, a: Any = a, i: int = i) -> TensorArg:
            return TensorArg("bfloat16", (16, 128), (128, 1), 0, 2, f"b{i}_{j}", 4096,
                             "alloc" if a.written else "input:synthetic")
        if a.base == "Tensor":
            args.append((a.name, tensor()))
        elif a.base == "Tensor[]":
            args.append((a.name, (tensor(0), tensor(1))))
        elif a.default is None:
            value: Any = {"int": 16, "SymInt": 16, "float": 1.0, "bool": False, "str": "auto",
                          "ScalarType": "bfloat16", "int[]": [16], "SymInt[]": [16], "float[]": [1.0]}.get(a.base)
            args.append((a.name, ScalarArg(value)))
    return OpCall(TracedEvent(0, "op", op, None, None, tuple(args)), {}, f"synthetic {op} call (schema only)")


def _all_jobs(tree: Any, opmap: Any) -> list[dict[str, Any]]:
    jobs = []
    for op, entry in sorted(opmap.items()):
        call = _synthetic_call(op, str(tree.root))
        jobs.append({"op": op, "kernels": entry.kernels, "model": None, "workload": "decode", "call": call})
    return jobs


def _render_one(tree: Any, ex: Any, qual: str, call: Any, model: Any, workload: str,
                synthetic: bool) -> dict[str, Any]:
    from vkc.invoke.core.provenance import InvocationMode
    from vkc.invoke.cuda.wrapped import WrapRefused, invoke_wrapped
    from vkc.invoke.cuda.wrapped.host import NotLaunched
    from vkc.naming import safe_stem

    name = qual.rsplit(":", 1)[-1].split("@", 1)[0]
    base = {"kernel": qual, "model": model, "workload": workload}
    try:
        inv = invoke_wrapped(tree, ex, call, mode=InvocationMode.SYNTHESIZED if synthetic
                             else InvocationMode.MODEL_TRACED, model=model, workload=workload, why="bench",
                             command="bench/wrapped_compile.py", name=name, check_launch=not synthetic)
    except NotLaunched as e:
        return {**base, "status": "not-launched", "why": e.message}
    except WrapRefused as e:
        return {**base, "status": "refused", "why": e.message}
    return {**base, "status": "rendered", "stem": safe_stem(name), "unit": ex.source_code, "main": inv.code}


def _render(tree: Any, index: Any, job: dict[str, Any], ex_cache: dict[str, Any], synthetic: bool) -> dict[str, Any]:
    out = {"op": job["op"], "status": "refused", "why": "no schema"}
    if synthetic:
        if job["call"] is None:
            return out
        out["why"] = "no kernel of the op extracts"
        for qual in job["kernels"]:
            ex = _extract(tree, index, qual, ex_cache)
            if not hasattr(ex, "source_code"):
                out["why"] = f"extraction failed: {ex}"
                continue
            return {"op": job["op"], **_render_one(tree, ex, qual, job["call"], None, "decode", True)}
        return out
    ex = _extract(tree, index, job["kernel"], ex_cache)
    if not hasattr(ex, "source_code"):
        return {"op": job["op"], "kernel": job["kernel"], "status": "refused", "why": f"extraction failed: {ex}"}
    got: dict[str, Any] = {}
    for model, wl, call in job["calls"]:
        got = _render_one(tree, ex, job["kernel"], call, model, wl, False)
        if got["status"] != "not-launched":
            break
    return {"op": job["op"], **got}


def _nvcc(res: dict[str, Any], compile_only: bool, keep: Path | None) -> dict[str, Any]:
    from vkc.toolchain.nvcc import first_error, nvcc_flags

    with tempfile.TemporaryDirectory(prefix="vkc-wrapped-") as td:
        wd = Path(keep) / res["op"].replace(":", "_") if keep else Path(td)
        wd.mkdir(parents=True, exist_ok=True)
        stem = res["stem"]
        (wd / f"{stem}.cu").write_text(res["unit"], encoding="utf-8")
        (wd / f"{stem}_main.cu").write_text(res["main"], encoding="utf-8")
        out = ["-c", "-o", str(wd / f"{stem}.o")] if compile_only else ["-o", str(wd / stem)]
        t0 = time.monotonic()
        r = subprocess.run(["nvcc", *nvcc_flags(), *out, str(wd / f"{stem}_main.cu")], capture_output=True,
                           text=True, cwd=wd)
        dt = time.monotonic() - t0
    if r.returncode == 0:
        return {**res, "status": "compiled", "seconds": dt}
    return {**res, "status": "nvcc-failed", "why": first_error(r.stderr or r.stdout), "seconds": dt}


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("what", choices=("reached", "all"))
    ap.add_argument("--models", nargs="*", help="model ids (default: every bundled model)")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--compile-only", action="store_true", help="nvcc -c (no link)")
    ap.add_argument("--no-nvcc", action="store_true", help="render and check only")
    ap.add_argument("--keep", type=Path, help="keep each program in DIR/<op>/")
    args = ap.parse_args(argv)
    from vkc.modelcfg.snapshots import bundled_ids

    tree, index, opmap = _tree_and_index()
    synthetic = args.what == "all"
    jobs = _all_jobs(tree, opmap) if synthetic else _reached_jobs(tree, index, opmap, args.models or list(bundled_ids()))
    ex_cache: dict[str, Any] = {}
    results = [_render(tree, index, j, ex_cache, synthetic) for j in jobs]
    todo = [r for r in results if r["status"] == "rendered"]
    if not args.no_nvcc:
        with ThreadPoolExecutor(max(1, args.jobs)) as pool:
            done = {id(r): x for r, x in zip(todo, pool.map(lambda r: _nvcc(r, args.compile_only, args.keep), todo))}
        results = [done.get(id(r), r) for r in results]
    label = ("SYNTHETIC op calls from the schema only (compilability; not model-accurate)" if synthetic
             else "op calls of the bundled models' FULL steps (model-traced)")
    print(f"# wrapper-compiled programs over {label}; nvcc {'-c' if args.compile_only else 'build'} -arch=sm_90")
    for r in results:
        where = f" [{r['model'].model_id} {r['workload']}]" if r.get("model") is not None else ""
        secs = f" ({r['seconds']:.0f}s)" if "seconds" in r else ""
        print(f"{r['status']:12} {r['op']:52} {r.get('kernel', '-').rsplit(':', 1)[-1]}{where}{secs}"
              + (f"\n             {r['why']}" if r.get("why") else ""))
    counts = Counter(r["status"] for r in results)
    ops = {r["op"] for r in results}
    ok = "rendered" if args.no_nvcc else "compiled"
    built = {r["op"] for r in results if r["status"] == ok}
    print(f"\n{len(results)} programs ({len(ops)} ops): " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    print(f"ops with a program that {'renders' if args.no_nvcc else 'builds'}: {len(built)} of {len(ops)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
