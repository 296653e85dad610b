"""How far vLLM's own kernel tests take vkc's CUDA examples (issue 12, source 2, the CUDA half).

    python bench/test_trace_cuda.py reach [--all-tests]
        the static index: non-ROCm CUDA kernels, those some op launches (the op map), those a test
        under tests/kernels reaches through an op (directly / only through a helper of the test
        file), by how the test names the op; --all-tests: also over every test file under tests/
    python bench/test_trace_cuda.py run [--sample N | --all] [--batch K] [--max-tests T]
        for N reached kernels (evenly spaced over the sorted list; --all: every one): the op call
        captures of their first T tests (``vkc.testtrace.op_captures`` at the default model's dims,
        worker batches of K jobs, so the invoker's cache is shared); prints kernels with a usable
        capture, the split test-traced / vllm-sized, captures with index contents, the producers
        of their tensors, and the failure reasons grouped (the worker's category, then the reason
        with numbers and names cut)

Nothing here is a test; the numbers go to stdout; ``--json FILE`` merges them into FILE under the
subcommand's name (bench/results/test_trace_cuda.json keeps them).
"""
from __future__ import annotations

import argparse
import collections
import json
import re
import sys
import time
from pathlib import Path


def _setup() -> tuple:
    from vkc.index import build_index
    from vkc.invoke.cuda.modeltraced.opmap import op_kernel_map
    from vkc.source import resolve_source

    tree = resolve_source()
    idx = build_index(tree)
    return tree, idx, {op: ok.kernels for op, ok in op_kernel_map(idx).items()}


def _how(wrapper: str) -> str:
    if wrapper.startswith("torch.ops."):
        return "torch.ops"
    return "vllm._custom_ops" if wrapper.startswith("vllm._custom_ops:") else "other vllm wrapper"


def cmd_reach(a: argparse.Namespace) -> dict:
    from vkc.testtrace import build_op_reach_index

    tree, idx, op_kernels = _setup()
    cuda = sorted({k.qualified for k in idx.kernels if k.lang == "cuda" and not k.rocm_only})
    in_map = {k for ks in op_kernels.values() for k in ks}
    reach = build_op_reach_index(tree, op_kernels)
    direct = {r.kernel for r in reach.reaches if r.via is None}
    out: dict = {"cuda_kernels": len(cuda), "cuda_kernels_in_op_map": len(in_map & set(cuda)),
                 "ops_in_op_map": len(op_kernels), "test_files": reach.files, "test_functions": reach.tests,
                 "kernels_reached": len(reach.kernels), "kernels_reached_directly": len(direct),
                 "kernels_reached_only_via_helper": len(set(reach.kernels) - direct),
                 "ops_reached": len({r.op for r in reach.reaches}),
                 "tests_reaching": len({r.test.node_id for r in reach.reaches})}
    by_how = collections.defaultdict(set)
    for r in reach.reaches:
        by_how[_how(r.wrapper)].add(r.kernel)
    out["kernels_by_how"] = {k: len(v) for k, v in sorted(by_how.items())}
    out["top_files"] = collections.Counter(r.test.file for r in reach.reaches).most_common(10)
    out["in_op_map_not_reached"] = sorted(in_map - set(reach.kernels))
    if a.all_tests:
        every = build_op_reach_index(tree, op_kernels, roots=("tests",))
        out["all_tests"] = {"test_files": every.files, "kernels_reached": len(every.kernels)}
    for k, v in out.items():
        print(f"{k}: {v if k != 'in_op_map_not_reached' else len(v)}")
    return out


def _sample(kernels: list[str], n: int | None) -> list[str]:
    if n is None or n >= len(kernels):
        return kernels
    step = len(kernels) / n
    return [kernels[int(i * step)] for i in range(n)]


def _group(reason: str | None) -> str:
    text = re.sub(r"\b\d+\b", "N", reason or "?")
    text = re.sub(r"'[^']*'|\"[^\"]*\"", "'…'", text)
    text = re.sub(r"\[[^\]]*\]", "[…]", text)
    return text[:140]


def _usable(tree, idx, caps: list) -> list:
    from vkc.testtrace import op_call_of

    entries = {k.qualified: k for k in idx.kernels}
    calls = [op_call_of(c, entries.get(c.kernel), tree) for c in caps if c.ok and c.op_call is not None]
    return calls


def cmd_run(a: argparse.Namespace) -> dict:
    from vkc.invoke.triton.testtraced.attempt import model_dims
    from vkc.modelcfg import DEFAULT_MODEL, load_model_cached
    from vkc.testtrace import build_op_reach_index, op_captures

    tree, idx, op_kernels = _setup()
    reach = build_op_reach_index(tree, op_kernels)
    kernels = _sample(list(reach.kernels), None if a.all else a.sample)
    dims = model_dims(load_model_cached(DEFAULT_MODEL))
    t0 = time.perf_counter()
    caps: dict[str, list] = {}
    for i in range(0, len(kernels), a.chunk):       # progress lines; each chunk runs in batches of --batch jobs
        part = kernels[i:i + a.chunk]
        caps.update(op_captures(tree, part, dims, batch=a.batch, max_tests=a.max_tests))
        print(f"kernels {i + 1}-{i + len(part)} of {len(kernels)}: {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    seconds = time.perf_counter() - t0
    outcome: dict[str, dict] = {}
    reasons: collections.Counter = collections.Counter()
    producers: collections.Counter = collections.Counter()
    all_modes: collections.Counter = collections.Counter()
    with_contents = 0
    for q in kernels:
        calls = _usable(tree, idx, caps[q])
        good = [c for c in calls if c.launches is not False]
        all_modes.update(c.mode for c in good)
        if good:
            first = good[0]
            with_contents += bool(first.contents)
            producers.update(t.producer.split(":")[0] for _n, t in first.event.tensors())
            outcome[q] = {"outcome": "captured", "mode": first.mode, "op": first.op, "source": first.source,
                          "contents": sorted(first.contents), "launches": first.launches}
            continue
        outcome[q] = {"outcome": "other-kernel" if calls else "not-captured",
                      "reasons": [f"{c.category}: {c.reason}" for c in caps[q] if not c.ok]}
        if calls:
            reasons["captured, but the call launches another of the op's kernels"] += 1
        for c in caps[q]:
            if not c.ok:
                reasons[f"{c.category}: {_group(c.reason)}"] += 1
    jobs = [c for v in caps.values() for c in v]
    summary = {"model": DEFAULT_MODEL, "kernels_reached": len(reach.kernels), "sampled": len(kernels),
               "max_tests": a.max_tests, "jobs": len(jobs),
               "kernels_with_a_capture": sum(1 for v in outcome.values() if v["outcome"] == "captured"),
               "outcome": dict(collections.Counter(v["outcome"] for v in outcome.values())),
               "kernel_modes": dict(collections.Counter(v["mode"] for v in outcome.values() if "mode" in v)),
               "capture_modes_all_jobs": dict(all_modes),
               "kernels_whose_capture_has_index_contents": with_contents,
               "tensor_producers_in_first_captures": dict(producers),
               "job_categories": dict(collections.Counter(c.category or "captured" for c in jobs)),
               "capture_seconds": round(seconds, 1), "reasons": reasons.most_common(), "per_kernel": outcome}
    for k in ("kernels_reached", "sampled", "jobs", "kernels_with_a_capture", "outcome", "kernel_modes",
              "capture_modes_all_jobs", "kernels_whose_capture_has_index_contents",
              "tensor_producers_in_first_captures", "job_categories", "capture_seconds"):
        print(f"{k}: {summary[k]}")
    print("failure reasons (per failed job of a kernel without a usable capture, grouped):")
    for r, n in summary["reasons"]:
        print(f"  {n:4d}  {r}")
    return summary


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    r0 = sub.add_parser("reach")
    r0.add_argument("--all-tests", action="store_true")
    r = sub.add_parser("run")
    r.add_argument("--sample", type=int, default=30)
    r.add_argument("--all", action="store_true")
    r.add_argument("--batch", type=int, default=12)
    r.add_argument("--chunk", type=int, default=10, help="kernels per progress line")
    r.add_argument("--max-tests", type=int, default=3)
    for s in (p, r0, r):
        s.add_argument("--json", default=None)
    a = p.parse_args()
    result = cmd_reach(a) if a.cmd == "reach" else cmd_run(a)
    if a.json:
        path = Path(a.json)
        data = json.loads(path.read_text()) if path.is_file() else {}
        data[a.cmd if a.cmd == "reach" else ("run_all" if a.all else "run_sample")] = result
        path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
