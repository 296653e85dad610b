"""Test captures run once, in batches, before ``collect --all`` fans out (:func:`prefetch_test_captures`)."""
from __future__ import annotations

import itertools

from vkc.invoke.core.policy import DEFAULT_WORKLOAD
from vkc.records import KernelIndex

__all__ = ["prefetch_test_captures"]


def prefetch_test_captures(index: KernelIndex, models: list[str], workers: int, lang: str | None,
                            test_models: dict[str, str] | None = None, workloads: list[str] | None = None) -> None:
    """Run the vLLM tests that reach Triton kernels, and those that call the ops of CUDA kernels without
    a recipe, once, in batches, before the fan-out (each kernel's worker then reads its capture from the
    cache instead of importing vLLM itself).  ``test_models``: those kernels' tests run at their model
    instead (and not at ``models``).  Batch sizes come from each of ``workloads`` (default: decode, the
    workload of a kernel without a recipe or an evident phase); a kernel the invoker gives another
    workload runs its tests when it is collected."""
    from vkc.invoke.cuda.wrapped.tested import prefetch as prefetch_cuda
    from vkc.invoke.triton.testtraced.attempt import prefetch
    from vkc.modelcfg import load_model

    moved = test_models or {}
    everything = [k.qualified for k in index.kernels]
    runs: list[tuple[str, list[str]]] = [(m, [q for q in everything if q not in moved]) for m in dict.fromkeys(models)]
    for m in sorted(set(moved.values())):
        runs.append((m, sorted(q for q, tm in moved.items() if tm == m)))
    for (m, only), wl in itertools.product(runs, workloads or [DEFAULT_WORKLOAD]):
        if lang in (None, "triton"):
            prefetch(index.tree, index.kernels, load_model(m), workers=workers, only=only, workload=wl)
        if lang in (None, "cuda"):
            prefetch_cuda(index.tree, index.kernels, load_model(m), workers=workers, only=only, workload=wl)
