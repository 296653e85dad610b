"""The model-traced attempt of ``invoke_triton``: trace the model, build the plan, or say why not.

:func:`attempt` never raises for a trace that fails or a launch it refuses: it returns an
:class:`Attempt` whose ``plan`` is None and whose ``fallback`` names the reason, so the invoker
takes the recipe or synthesised path and records ``fallback_from``.  A failing trace or a refused
launch also prints exactly one warning line on stderr (``vkc: warning: <kernel>: model trace failed
(<reason>); using <weaker mode>``, or ``... model-traced launch not reproducible ...``).
"""
from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass, replace

from vkc.errors import VkcError
from vkc.modeltrace.records import ModelTrace
from vkc.records import ModelConfig, SourceTree

from .build import ModelTracedPlan, modeltraced_plan
from .session import model_trace_enabled, model_trace_for, steps_for
from .writeonly import kernel_source

__all__ = ["Attempt", "attempt", "source_text"]


@dataclass(frozen=True)
class Attempt:
    """What the model-traced path gave: a plan, or why not (``fallback``: failed/refused, ``note``:
    not launched, disabled)."""

    plan: ModelTracedPlan | None
    trace: ModelTrace | None
    fallback: str | None = None     # "model-traced: <why>" when a trace failed or a launch was refused
    note: str | None = None         # informational: not launched in the step / disabled
    trace_failed: bool = False


def source_text(plan: ModelTracedPlan, workload: str) -> str:
    """The provenance ``source`` of a model-traced example."""
    layers = sorted({x for x in plan.layers if x is not None})
    where = f"layer{'s' if len(layers) > 1 else ''} {','.join(map(str, layers))}" if layers else "outside the layers"
    return (f"{plan.model_id} {workload} {where}, step {plan.step_id}; "
            f"see `vkc model kernels {plan.model_id} --workload {workload}`")


def attempt(tree: SourceTree, model: ModelConfig, kernel: str, workload: str, *, name: str, weaker: str,
            params: Sequence[str] | None = None) -> Attempt:
    """Trace ``model`` (cached) and build ``kernel``'s plan at ``workload``'s FULL/SMALL steps."""
    if not model_trace_enabled():
        return Attempt(None, None, note="model tracing disabled (VKC_MODEL_TRACE=0)")
    try:
        trace = model_trace_for(tree, model)
    except Exception as e:  # noqa: BLE001 -- any trace failure falls back, loudly (one warning line)
        text = e.message if isinstance(e, VkcError) else f"{type(e).__name__}: {e}"
        reason = " ".join(str(text).split())[:300]
        print(f"vkc: warning: {name}: model trace failed ({reason}); using {weaker}", file=sys.stderr)
        return Attempt(None, None, fallback=f"model-traced: model trace failed ({reason})", trace_failed=True)
    full, small = steps_for(workload)
    step = trace.step(full)
    if not any(e.kind == "triton" and e.name == kernel for e in step.events):
        return Attempt(None, trace, note=f"model-traced: {model.model_id} {workload} step {full.id} does not launch "
                                         f"{kernel} (see `vkc model kernels {model.model_id} --workload {workload}`)")
    small_note = None
    if all(s.spec != small for s in trace.steps):    # an optional step that failed (the trace says why)
        # the FULL launch is vLLM's either way: SMALL becomes the FULL launch itself (the CPU interpreter
        # runs the model's shapes), and the header says why
        why = " ".join(str(trace.notes.get("failed_steps", {}).get(small.id, "not traced")).split())[:300]
        small_note = (f"SMALL is the FULL launch (step {full.id}): the model trace has no SMALL step {small.id} "
                      f"({why})")
        small = full
    elif not any(e.kind == "triton" and e.name == kernel for e in trace.step(small).events):
        small_note = (f"SMALL is the FULL launch (step {full.id}): vLLM's SMALL step {small.id} does not launch "
                      "the kernel (it takes another path at that size)")
        small = full
    reasons: list[str] = []
    plan = modeltraced_plan(trace, full, kernel, small_step=small, params=params, reasons=reasons,
                            kernel_source=kernel_source(tree.root, kernel) if tree is not None else None)
    if plan is not None and small_note:
        plan = replace(plan, notes=(*plan.notes, small_note))
    if plan is None:   # the step launches the kernel but vkc cannot rebuild the launch: loud, like a failed trace
        why = " ".join("; ".join(reasons).split())[:300]
        print(f"vkc: warning: {name}: model-traced launch not reproducible ({why}); using {weaker}", file=sys.stderr)
        return Attempt(None, trace, fallback=f"model-traced: launch not reproducible ({why})")
    return Attempt(plan, trace)
