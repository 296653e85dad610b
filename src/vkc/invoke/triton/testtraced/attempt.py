"""The test-traced attempt of ``invoke_triton``: run a vLLM test that calls the kernel's wrapper.

:func:`attempt` never raises for a test that fails to capture or a capture it refuses: it returns
an :class:`Attempt` whose ``plan`` is None and whose ``fallback`` names the reason (the invoker then
makes a synthesized example and records ``fallback_from``; one warning line on stderr).  With a plan,
``provenance`` is ``test-traced`` when at least one size parameter of the test was mapped from the
model's dimensions, else ``vllm-sized``; its source is the test id with the parameters it ran with.
"""
from __future__ import annotations

import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from vkc.invoke.core.dims import ModelDims
from vkc.invoke.core.provenance import InvocationMode, Provenance
from vkc.invoke.triton.plan import TritonPlan
from vkc.records import KernelEntry, ModelConfig, SourceTree
from vkc.testtrace import (
    SIZE_NAMES,
    Capture,
    Reach,
    ReachIndex,
    TestJob,
    build_reach_index,
    capture_tests,
    tests_enabled,
)
from vkc.testtrace.sizes import capture_mode, capture_source, workload_dims

from .build import Refused, capture_plan

__all__ = ["MAX_TESTS", "Attempt", "attempt", "jobs_for", "model_dims", "prefetch", "provenance_of"]

MAX_TESTS = 3                    # tests tried per kernel (one worker process)


@dataclass(frozen=True)
class Attempt:
    """What the test-traced path gave: a plan and its provenance, or why not."""

    plan: TritonPlan | None
    provenance: Provenance | None = None
    capture: Capture | None = None
    fallback: str | None = None     # "test-traced: <why>" when tests ran but gave no usable launch
    note: str | None = None         # informational: no test reaches the kernel
    notes: tuple[str, ...] = ()     # header notes of a plan


def model_dims(model: ModelConfig, workload: str | None = None) -> dict[str, object]:
    """The sizes the worker maps test parameters from (values of :data:`vkc.testtrace.SIZE_NAMES`): the
    model's, and with ``workload`` its step's batch (:func:`vkc.testtrace.sizes.workload_dims`)."""
    d = ModelDims.from_config(model)
    out: dict[str, object] = {"dtype": d.dtype, **workload_dims(workload)}
    for key in sorted(set(SIZE_NAMES.values())):
        v = getattr(d, key, None)
        if isinstance(v, int) and not isinstance(v, bool):
            out[key] = v
    return out


def provenance_of(cap: Capture, fallback_from: str | None = None) -> Provenance:
    mode = InvocationMode.TEST_TRACED if capture_mode(cap.params, cap.mapped, SIZE_NAMES) == "test-traced" \
        else InvocationMode.VLLM_SIZED
    return Provenance(mode, capture_source(cap.test_id, cap.params, cap.mapped, SIZE_NAMES), fallback_from=fallback_from)


def _pick(reaches: Sequence[Reach]) -> list[Reach]:
    out: list[Reach] = []
    seen: set[str] = set()
    for r in reaches:
        if r.test.node_id not in seen:
            seen.add(r.test.node_id)
            out.append(r)
    return out[:MAX_TESTS]


def jobs_for(index: ReachIndex, qualified: str, line: int | None, dims: Mapping[str, object]) -> list[TestJob]:
    """The worker jobs :func:`attempt` runs for one kernel (the first :data:`MAX_TESTS` tests reaching it)."""
    return [TestJob(r.test, qualified, line, dims) for r in _pick(index.for_kernel(qualified))]


def prefetch(tree: SourceTree, kernels: Sequence[KernelEntry], model: ModelConfig, *, batch: int = 12,
             only: Sequence[str] | None = None, workers: int = 1, workload: str | None = None) -> int:
    """Capture, ahead of the invoker and in worker batches of ``batch`` jobs (one vLLM import per
    batch instead of one per kernel), every job :func:`attempt` would run for the kernels in ``only``
    (default: every kernel a test reaches) at ``model``; ``workers`` batches run at once (each is its
    own worker process).  The captures land in the disk cache, so a later :func:`attempt` (any
    process) finds them.  Returns the number of jobs."""
    from concurrent.futures import ThreadPoolExecutor

    if not tests_enabled():
        return 0
    index = build_reach_index(tree, kernels)
    lines = {k.qualified: k.line for k in kernels if k.lang == "triton"}
    dims = model_dims(model, workload)
    reached = set(index.kernels)
    wanted = [q for q in (only if only is not None else index.kernels) if q in reached]
    jobs = [j for q in wanted for j in jobs_for(index, q, lines.get(q), dims)]
    batches = [jobs[i:i + batch] for i in range(0, len(jobs), batch)]
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        list(pool.map(lambda b: capture_tests(tree, b), batches))
    return len(jobs)


def attempt(tree: SourceTree, kernel: KernelEntry, qualified: str, model: ModelConfig, *, name: str,
            kernels: Callable[[], Sequence[KernelEntry]], params: Sequence[str] | None = None,
            fallback_from: str | None = None, workload: str | None = None) -> Attempt:
    """Capture ``qualified``'s launch from the first of up to :data:`MAX_TESTS` tests that reach it, its
    size parameters from the model and ``workload``'s step (:func:`model_dims`)."""
    if not tests_enabled():
        return Attempt(None)        # no note: outputs stay byte-identical to a vkc without this source
    jobs = jobs_for(build_reach_index(tree, kernels()), qualified, kernel.line, model_dims(model, workload))
    if not jobs:
        return Attempt(None, note="test-traced: no test under tests/ calls this kernel's wrapper directly")
    reasons: list[str] = []
    for cap in capture_tests(tree, jobs):
        if not cap.ok:
            reasons.append(f"{cap.test_id}: {cap.reason}")
            continue
        try:
            plan = capture_plan(cap, params=params)
        except Refused as e:
            reasons.append(f"{cap.test_id}: launch captured but not reproducible ({e})")
            continue
        note = (f"test-traced: launch recorded inside {cap.test_id} run on CPU tensors (fake H100 platform, "
                "nothing launched; the test stopped at this kernel's first launch; the test's own asserts and "
                "assert_close checks were skipped, earlier kernels being recorded, not run); integer contents are "
                "the test's, floating ones random")
        stubs = ((f"test-traced: packages this environment lacks were stood in for in the test worker (imports "
                 f"succeed, calls return placeholders): {', '.join(cap.stubs)}"),) if cap.stubs else ()
        return Attempt(plan, provenance_of(cap, fallback_from), cap, notes=(note, *stubs, *cap.attempts[:-1]))
    why = " ".join("; ".join(reasons).split())[:400]
    print(f"vkc: warning: {name}: no vLLM test gave a usable launch ({why}); using a synthesized example",
          file=sys.stderr)
    return Attempt(None, fallback=f"test-traced: {why}")
