"""``vkc collect --model M --all-used``: the tree kernels M's traced step reaches, per workload.

The model is traced once (:func:`vkc.invoke.triton.modeltraced.session.model_trace_for`: the same
cached trace the per-kernel model-traced examples use; the serving steps only); Triton launches name their kernel by vkc's qualified ``module:qualname``; vLLM custom-op
calls map to the CUDA kernels their ``torch::kCUDA`` implementation launches
(:func:`vkc.invoke.cuda.modeltraced.opmap.op_kernel_map`, read from ``torch_bindings.cpp`` and the index),
narrowed to the ones each traced call's dispatch takes where vkc has a rule for it
(:func:`vkc.invoke.cuda.modeltraced.dispatch.call_launches`).  Kernels outside the tree
(cuBLAS behind ``aten::mm``, FlashAttention, FlashInfer) are not collected.
:func:`step_kernels` is that rule for one step; the reach map (:mod:`vkc.batch.reach`) uses it too.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

from vkc.errors import UsageError
from vkc.modeltrace.records import StepTrace
from vkc.records import KernelEntry, KernelIndex, SourceTree

__all__ = ["op_map", "step_kernels", "used_kernels"]

_WORKLOADS = ("decode", "prefill")


def used_kernels(index: KernelIndex, model: str, workloads: Iterable[str | None]) -> dict[str | None, set[str]]:
    """Per workload asked (``None``: both), the qualified names of the entry kernels the step launches."""
    from vkc.invoke.triton.modeltraced.session import FULL_STEPS, model_trace_for
    from vkc.modelcfg import load_model

    cfg = load_model(model)
    trace = model_trace_for(index.tree, cfg)   # the same (cached) trace the per-kernel examples use
    known = {k.qualified: k for k in index.kernels if k.role == "entry"}
    ops = op_map(index)
    out: dict[str | None, set[str]] = {}
    for w in workloads:
        names: set[str] = set()
        for step in trace.steps:
            if step.spec not in FULL_STEPS.values() or (w is not None and step.spec.workload != w):
                continue
            names |= step_kernels(step, known, ops, tree=index.tree)
        out[w] = names
    if not any(out.values()):
        raise UsageError(f"{model}'s traced step launched no kernel of the vLLM tree",
                         hint=f"see `vkc model kernels {model}`")
    return out


def step_kernels(step: StepTrace, known: Mapping[str, KernelEntry], ops: Callable[[str], Iterable[str]], *,
                 tree: SourceTree | None = None) -> set[str]:
    """The entry kernels (qualified names, keys of ``known``) one traced step launches; ``tree`` lets the
    dispatch rules tell overloads that share a name apart by their declarations."""
    from vkc.invoke.cuda.modeltraced import call_launches

    names: set[str] = set()
    for ev in step.events:
        if ev.kind == "triton" and ev.name in known:
            names.add(ev.name)
        elif ev.kind == "op":
            # an op's host can reach several kernels; keep those this call launches (or may:
            # an op without a dispatch rule keeps them all)
            names.update(k for k in ops(ev.name) if k in known and call_launches(k, ev, entry=known[k], tree=tree) is not False)
    return names


def op_map(index: KernelIndex) -> Callable[[str], Iterable[str]]:
    """op name -> the qualified kernels its CUDA implementation launches (the tree's op map)."""
    from vkc.invoke.cuda.modeltraced.opmap import op_kernel_map

    ops = op_kernel_map(index)
    return lambda op: ops[op].kernels if op in ops else ()
