"""The CUDA half's entry: the op calls vLLM's tests make for a CUDA kernel.

:func:`op_calls_for` (tree, kernel, model dims) -> the :class:`OpCallCapture` of each of the first
:data:`MAX_TESTS` tests that reach an op launching the kernel (:mod:`.static_cuda`) and, run in the
test worker with their size parameters mapped from the model (:mod:`.harness`), call it.  The
worker runs and caches exactly as for Triton launches (:func:`.trace.capture_tests`; an op job is a
:class:`TestJob` with ``ops``).  :func:`op_captures` runs many kernels' jobs in worker batches (one
vLLM import per batch) and answers the raw :class:`Capture` records, failures included.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

from vkc.modeltrace.contents import Contents
from vkc.modeltrace.records import event_from_worker
from vkc.records import KernelEntry, SourceTree

from .harness import SIZE_NAMES, mappable_names
from .records import Capture, OpCallCapture, Reach, ReachIndex, VllmTest
from .sizes import capture_mode, capture_source
from .static_cuda import build_op_reach_index
from .trace import TestJob, capture_tests, tests_enabled

__all__ = ["MAX_TESTS", "mode_of", "op_call_of", "op_calls_for", "op_captures", "op_jobs", "op_reach",
           "op_tests", "resolve_kernel"]

MAX_TESTS = 3                    # tests tried per kernel


def _index(tree: SourceTree) -> tuple[Mapping[str, tuple[str, ...]], Sequence[KernelEntry]]:
    from vkc.index import build_index
    from vkc.invoke.cuda.modeltraced.opmap import op_kernel_map

    idx = build_index(tree)
    return {op: ok.kernels for op, ok in op_kernel_map(idx).items()}, idx.kernels


def op_reach(tree: SourceTree) -> ReachIndex:
    """The tree's static op reach index (``tests/kernels/**``; every reach carries its ``op``)."""
    return build_op_reach_index(tree, _index(tree)[0])


def resolve_kernel(tree: SourceTree, kernel: str) -> str:
    """``kernel`` as the index qualifies it (``"csrc/x.cu:name"``); a bare name must be unique."""
    if ":" in kernel:
        return kernel
    names = sorted({k.qualified for k in _index(tree)[1]
                    if k.lang == "cuda" and not k.rocm_only and k.name == kernel})
    return names[0] if len(names) == 1 else kernel


def _mappable(r: Reach) -> bool:
    return bool(mappable_names(r.test.params, r.test.file))


def _direct(r: Reach) -> bool:
    """The test names the op or its ``vllm._custom_ops`` wrapper (not a layer that may call it)."""
    return r.wrapper.startswith(("torch.ops.", "vllm._custom_ops:"))


def op_jobs(index: ReachIndex, op_kernels: Mapping[str, Sequence[str]], kernel: str,
            dims: Mapping[str, object] | None, *, max_tests: int = MAX_TESTS) -> list[TestJob]:
    """The worker jobs for one CUDA kernel: the first ``max_tests`` tests that reach an op launching
    it (calls in the test's own body first, then those naming the op or its ``vllm._custom_ops``
    wrapper, then tests with a parameter that maps from the model; one test per file first),
    each stopping at the first call of any op that launches the kernel."""
    ops = tuple(sorted(op for op, ks in op_kernels.items() if kernel in ks))
    seen: dict[str, Reach] = {}
    for r in index.for_kernel(kernel):
        seen.setdefault(r.test.node_id, r)
    order = sorted(seen.values(), key=lambda r: (r.via is not None, not _direct(r), not _mappable(r)))
    # one test per file before a second one of a file (a module that skips itself at import, a
    # CPU-only file, fails every test of it)
    nth: dict[str, int] = {}
    rank = []
    for i, r in enumerate(order):
        nth[r.test.file] = nth.get(r.test.file, -1) + 1
        rank.append((nth[r.test.file], i, r))
    return [TestJob(r.test, kernel, None, dims, ops=ops) for _n, _i, r in sorted(rank, key=lambda t: t[:2])[:max_tests]]


def op_tests(tree: SourceTree, kernels: Sequence[str], *, max_tests: int = MAX_TESTS) -> dict[str, list[VllmTest]]:
    """kernel -> the tests :func:`op_captures` would run for it, in job order (static: nothing runs)."""
    op_kernels, _entries = _index(tree)
    index = build_op_reach_index(tree, op_kernels)
    return {k: [j.test for j in op_jobs(index, op_kernels, k, None, max_tests=max_tests)] for k in kernels}


def mode_of(cap: Capture) -> str:
    """``test-traced`` when the test ran at the model's sizes (:func:`vkc.testtrace.sizes.capture_mode`),
    else ``vllm-sized``."""
    return capture_mode(cap.params, cap.mapped, SIZE_NAMES)


def _source(cap: Capture, mode: str) -> str:
    return f"{mode}: {capture_source(cap.test_id, cap.params, cap.mapped, SIZE_NAMES)}"


def op_call_of(cap: Capture, entry: KernelEntry | None = None, tree: SourceTree | None = None) -> OpCallCapture:
    """The record of one successful op job (``cap.op_call`` set)."""
    from vkc.invoke.cuda.modeltraced.dispatch import call_launches

    assert cap.op_call is not None, cap
    ev = event_from_worker(cap.op_call["event"])
    contents = {sid: Contents(tuple((v, int(n)) for v, n in runs))
                for sid, runs in sorted(cap.op_call.get("contents", {}).items())}
    mode = mode_of(cap)
    return OpCallCapture(cap.kernel, ev, contents, _source(cap, mode), mode, cap.test_id, dict(cap.mapped),
                         dict(cap.params), call_launches(cap.kernel, ev, entry=entry, tree=tree))


def op_captures(tree: SourceTree, kernels: Sequence[str], dims: Mapping[str, object] | None, *,
                batch: int = 12, max_tests: int = MAX_TESTS, workers: int = 1) -> dict[str, list[Capture]]:
    """Every kernel's jobs (:func:`op_jobs`), run in worker batches of ``batch`` jobs (``workers`` batches
    at once, each its own worker process); kernel -> its captures in job order (cached: a later call
    with the same inputs starts no worker)."""
    from concurrent.futures import ThreadPoolExecutor

    op_kernels, _entries = _index(tree)
    index = build_op_reach_index(tree, op_kernels)
    jobs = [j for k in kernels for j in op_jobs(index, op_kernels, k, dims, max_tests=max_tests)]
    out: dict[str, list[Capture]] = {k: [] for k in kernels}
    parts = [jobs[i:i + max(1, batch)] for i in range(0, len(jobs), max(1, batch))]
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        for part, caps in zip(parts, pool.map(lambda p: capture_tests(tree, p), parts)):
            for j, c in zip(part, caps):
                out[j.kernel].append(c)
    return out


def op_calls_for(tree: SourceTree, kernel: str, model_dims: Mapping[str, object] | None, *,
                 max_tests: int = MAX_TESTS) -> tuple[OpCallCapture, ...]:
    """The op calls of up to ``max_tests`` tests for the CUDA ``kernel`` (qualified or a unique bare
    name) at ``model_dims`` (``{"dtype": "bfloat16", "hidden": 4096, "h_q": 32, ...}``, the keys of
    :data:`SIZE_NAMES`' values; the Triton half's ``model_dims(model)``; None: the tests' own sizes).
    A call vkc's dispatch rules say launches another of the op's kernels is left out; () when no
    test reaches the kernel or none captured (:func:`op_captures` says why), and when the source is
    turned off (``VKC_TEST_TRACE=0``)."""
    if not tests_enabled():
        return ()
    qualified = resolve_kernel(tree, kernel)
    entry = next((k for k in _index(tree)[1] if k.qualified == qualified), None)
    caps = op_captures(tree, [qualified], model_dims, max_tests=max_tests)[qualified]
    calls = [op_call_of(c, entry, tree) for c in caps if c.ok and c.op_call is not None]
    return tuple(c for c in calls if c.launches is not False)
