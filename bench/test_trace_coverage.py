"""How far vLLM's own kernel tests take vkc's Triton examples (issue 12, source 2).

    python bench/test_trace_coverage.py reach
        the static index: test files/functions scanned, Triton entry kernels whose wrapper a test
        under tests/kernels calls (directly / through a helper of the test file)
    python bench/test_trace_coverage.py run [--sample N | --all] [--out DIR] [--batch K] [--no-verify]
        for N reachable kernels (evenly spaced over the sorted list; --all: every one): capture the
        first tests of each (the invoker's jobs, at the default model's dims, so its cache is
        shared) in worker batches of K; then ``vkc.collect`` each kernel into DIR with
        VKC_TEST_TRACE=1 VKC_MODEL_TRACE=0 and ``vkc verify --compile DIR``; prints kernels
        captured, artifacts by invocation mode, those passing verify --compile, and the failure
        reasons grouped (the worker's category, then the reason with numbers and names cut);
        ``test_sourced_artifacts`` = artifacts test-traced + vllm-sized.  Category ``not-applicable``:
        a test for ROCm / AMD / XPU hardware (its skip or failure says so), not an error.
        The worker modules' sources are part of each capture's cache key: to measure one state of
        the tree while others edit it, run this script from a copy (``PYTHONPATH=COPY/src``).

Nothing here is a test; the numbers go to stdout (``--json FILE`` keeps them).
"""
from __future__ import annotations

import argparse
import collections
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path


def _setup() -> tuple:
    from vkc.index import build_index
    from vkc.source import resolve_source
    from vkc.testtrace import build_reach_index

    tree = resolve_source()
    idx = build_index(tree)
    return tree, idx, build_reach_index(tree, idx.kernels)


def cmd_reach(_a: argparse.Namespace) -> dict:
    from vkc.invoke.triton.recipes import get_recipe

    _tree, idx, reach = _setup()
    entries = [k for k in idx.kernels if k.lang == "triton" and k.role == "entry" and not k.rocm_only]
    direct = {r.kernel for r in reach.reaches if r.via is None}
    out = {"test_files": reach.files, "test_functions": reach.tests, "triton_entry_kernels": len(entries),
           "kernels_reached": len(reach.kernels), "kernels_reached_directly": len(direct),
           "kernels_reached_only_via_helper": len(set(reach.kernels) - direct),
           "kernels_reached_without_recipe": sum(1 for q in reach.kernels if get_recipe(q) is None),
           "tests_reaching": len({r.test.node_id for r in reach.reaches})}
    by_file = collections.Counter(r.test.file for r in reach.reaches)
    out["top_files"] = by_file.most_common(10)
    for k, v in out.items():
        print(f"{k}: {v}")
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


def _precapture(tree, idx, reach, kernels: list[str], batch: int) -> dict[str, list]:
    """The invoker's own jobs (:func:`jobs_for`) at the default model, in worker batches."""
    from vkc.invoke.triton.testtraced.attempt import jobs_for, model_dims
    from vkc.modelcfg import DEFAULT_MODEL, load_model_cached
    from vkc.testtrace import capture_tests

    dims = model_dims(load_model_cached(DEFAULT_MODEL))
    lines = {k.qualified: k.line for k in idx.kernels if k.lang == "triton"}
    jobs = [j for q in kernels for j in jobs_for(reach, q, lines[q], dims)]
    caps: dict[str, list] = collections.defaultdict(list)
    for i in range(0, len(jobs), batch):
        t0 = time.perf_counter()
        part = jobs[i:i + batch]
        for j, c in zip(part, capture_tests(tree, part)):
            caps[j.kernel].append(c)
        print(f"captured jobs {i + 1}-{i + len(part)} of {len(jobs)} in {time.perf_counter() - t0:.0f} s",
              file=sys.stderr)
    return caps


def _collect(kernels: list[str], out: Path) -> dict[str, dict]:
    import vkc
    from vkc.errors import VkcError

    res: dict[str, dict] = {}
    for q in kernels:
        try:
            w = vkc.collect(q, out_dir=out)
            res[q] = {"mode": w.invocation_mode, "source": w.invocation_source, "path": Path(w.path).name}
        except VkcError as e:
            res[q] = {"mode": "error", "source": f"{type(e).__name__}: {e.message}"}
    return res


def _verify(out: Path) -> dict[str, bool]:
    subprocess.run([sys.executable, "-m", "vkc", "verify", "--compile", "--jobs", "1", str(out)], check=False,
                   stdout=subprocess.DEVNULL)
    data = json.loads((out / "verify_results.json").read_text())
    return {a["artifact"].rsplit("/", 1)[-1]: bool(a["ok"]) for a in data["artifacts"]}


def cmd_run(a: argparse.Namespace) -> dict:
    from vkc.invoke.triton.testtraced.build import Refused, capture_plan

    os.environ["VKC_TEST_TRACE"] = "1"
    os.environ["VKC_MODEL_TRACE"] = "0"
    tree, idx, reach = _setup()
    from vkc.invoke.triton.recipes import get_recipe

    kernels = _sample([q for q in reach.kernels if get_recipe(q) is None], None if a.all else a.sample)
    t0 = time.perf_counter()
    caps = _precapture(tree, idx, reach, kernels, a.batch)
    capture_s = time.perf_counter() - t0
    outcome: dict[str, str] = {}
    reasons: collections.Counter = collections.Counter()
    for q in kernels:
        ok = [c for c in caps[q] if c.ok]
        built = None
        for c in ok:
            try:
                capture_plan(c)
                built = c
                break
            except Refused as e:
                reasons[f"refused: {_group(str(e))}"] += 1
        outcome[q] = "planned" if built else ("captured-refused" if ok else "not-captured")
        if not ok:
            for c in caps[q]:
                reasons[f"{c.category}: {_group(c.reason)}"] += 1
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    res: dict[str, dict] = {}
    if not a.no_collect:
        res = _collect(kernels, out)
    passed = _verify(out) if res and not a.no_verify else {}
    modes = collections.Counter(r["mode"] for r in res.values())
    ver = collections.Counter(r["mode"] for r in res.values() if passed.get(r.get("path", ""), False))
    summary = {"kernels_reached": len(reach.kernels), "sampled": len(kernels),
               "test_sourced_artifacts": modes.get("test-traced", 0) + modes.get("vllm-sized", 0),
               "kernels_with_a_capture": sum(1 for q in kernels if any(c.ok for c in caps[q])),
               "outcome": dict(collections.Counter(outcome.values())), "artifact_modes": dict(modes),
               "verify_compile_ok_by_mode": dict(ver), "capture_seconds": round(capture_s, 1),
               "jobs": sum(len(v) for v in caps.values()),
               "job_categories": dict(collections.Counter(c.category or "captured" for v in caps.values() for c in v)),
               "reasons": reasons.most_common(), "per_kernel": {q: {"outcome": outcome[q], **res.get(q, {})}
                                                              for q in kernels}}
    for k in ("kernels_reached", "sampled", "test_sourced_artifacts", "kernels_with_a_capture", "outcome", "artifact_modes",
              "verify_compile_ok_by_mode", "capture_seconds", "jobs", "job_categories"):
        print(f"{k}: {summary[k]}")
    print("failure reasons (per job, grouped):")
    for r, n in summary["reasons"]:
        print(f"  {n:4d}  {r}")
    return summary


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    sub.add_parser("reach")
    r = sub.add_parser("run")
    r.add_argument("--sample", type=int, default=40)
    r.add_argument("--all", action="store_true")
    r.add_argument("--out", default="bench_out/test_trace")
    r.add_argument("--batch", type=int, default=12)
    r.add_argument("--no-verify", action="store_true")
    r.add_argument("--no-collect", action="store_true")
    for s in (p, r):
        s.add_argument("--json", default=None)
    a = p.parse_args()
    result = cmd_reach(a) if a.cmd == "reach" else cmd_run(a)
    if a.json:
        Path(a.json).write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
