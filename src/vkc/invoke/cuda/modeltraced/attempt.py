"""The model-traced attempt of ``invoke_cuda``: the recipe's plan sized from the model's traced op call.

:func:`attempt` traces the model (the Triton half's cached session: both workloads, FULL and SMALL
steps, one worker run), finds the first call in the FULL step of an op that launches the kernel
(:mod:`.opmap`) and that the recipe copies the wrapper of (:mod:`.bind`), and rebuilds the recipe's
plan with its constants checked against the call and FULL fixed to the call's rows.  It never raises
for a failed trace or a call it cannot reproduce: ``plan`` is None and ``fallback`` / ``note`` say
why; a failed trace, and a launching call vkc cannot reproduce, print one warning line on stderr.
"""
from __future__ import annotations

import dataclasses
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from vkc.errors import VkcError
from vkc.invoke.cuda.context import Ctx, TracedMismatch
from vkc.invoke.cuda.literals import comment_text
from vkc.invoke.cuda.plan import Plan
from vkc.modeltrace.records import ModelTrace, TracedEvent
from vkc.modeltrace.render import serving_notes
from vkc.records import ModelConfig, SourceTree

from .bind import bind_call, bound_ops, call_text, describe_args

__all__ = ["Attempt", "attempt", "attempt_with_trace", "attempt_wrapped"]

BuildPlan = Callable[[Ctx], Plan]


@dataclass(frozen=True)
class Attempt:
    plan: Plan | None = None
    event: TracedEvent | None = None
    source: str = ""
    traced_lines: tuple[str, ...] = ()
    fallback: str | None = None     # "model-traced: <why>" (trace failed, call not reproducible)
    note: str | None = None         # the step does not launch the kernel / no binder


def _enabled() -> bool:
    from vkc.invoke.triton.modeltraced.session import model_trace_enabled

    return model_trace_enabled()


def attempt(tree: SourceTree, model: ModelConfig, ctx: Ctx, build: BuildPlan, *, name: str) -> Attempt | None:
    """None when model tracing is disabled (``VKC_MODEL_TRACE=0``): the recipe path, unchanged."""
    if not _enabled():
        return None
    from vkc.index import build_index

    from .opmap import op_kernel_map

    ops = tuple(sorted(op for op, ok in op_kernel_map(build_index(tree)).items() if ctx.kernel in ok.kernels))
    if not ops:   # no traced call can size it: no trace needed
        return Attempt(note="model-traced: no custom op registered in the tree's torch_bindings.cpp launches this "
                            "kernel, so no traced op call can size it")
    trace, failed = _trace(tree, model, name, "using recipe")
    if trace is None:
        return Attempt(fallback=failed)
    return attempt_with_trace(trace, ctx, build, ops)


def _trace(tree: SourceTree, model: ModelConfig, name: str, instead: str) -> tuple[ModelTrace | None, str]:
    """The model's cached trace, or None and the fallback reason (printed as one warning line)."""
    from vkc.invoke.triton.modeltraced.session import model_trace_for

    try:
        return model_trace_for(tree, model), ""
    except Exception as e:  # noqa: BLE001 -- any trace failure falls back, loudly (one warning line)
        text = e.message if isinstance(e, VkcError) else f"{type(e).__name__}: {e}"
        reason = " ".join(str(text).split())[:300]
        print(f"vkc: warning: {name}: model trace failed ({reason}); {instead}", file=sys.stderr)
        return None, f"model-traced: model trace failed ({reason})"


def attempt_wrapped(tree: SourceTree, model: ModelConfig, ctx: Ctx, *, name: str, command: str,
                    why: str) -> Any:
    """The wrapper-compiled attempt (:mod:`vkc.invoke.cuda.wrapped`) for a kernel no recipe covers: vLLM's
    host function of the op called with the model step's traced call.  None when model tracing is off;
    a failed trace, or a launching call vkc cannot reproduce, prints one warning line (``fallback``)."""
    if not _enabled():
        return None
    from vkc.index import build_index
    from vkc.invoke.cuda.wrapped.traced import WrappedAttempt, wrapped_from_trace

    from .opmap import op_kernel_map

    ops = tuple(sorted(op for op, ok in op_kernel_map(build_index(tree)).items() if ctx.kernel in ok.kernels))
    if not ops:
        return WrappedAttempt(note="model-traced: no custom op launches this kernel")
    trace, failed = _trace(tree, model, name, "using the synthesized example")
    if trace is None:
        return WrappedAttempt(fallback=failed)
    got = wrapped_from_trace(trace, tree, ctx.extraction, model, workload=ctx.workload, why=why, ops=ops,
                             command=command, name=name)
    if got.fallback:
        text = " ".join(got.fallback.removeprefix("model-traced: ").split())[:300]
        print(f"vkc: warning: {ctx.kernel}: model-traced call not reproducible ({text}); using the synthesized "
              "example", file=sys.stderr)
    return got


def attempt_with_trace(trace: ModelTrace, ctx: Ctx, build: BuildPlan, ops: tuple[str, ...]) -> Attempt:
    """The attempt on a given trace; ``ops``: the ops that launch ``ctx.kernel`` (the op map's).

    When the step launches the kernel but its call cannot be reproduced (or bound), the recipe takes
    over loudly: one ``vkc: warning:`` line on stderr, as for a failed trace."""
    got = _attempt_with_trace(trace, ctx, build, ops)
    why = got.fallback or (got.note if got.note and "vkc binds no" in got.note else None)
    if why:
        text = " ".join(why.removeprefix("model-traced: ").split())[:300]
        print(f"vkc: warning: {ctx.kernel}: model-traced call not reproducible ({text}); using recipe",
              file=sys.stderr)
    return got


def _attempt_with_trace(trace: ModelTrace, ctx: Ctx, build: BuildPlan, ops: tuple[str, ...]) -> Attempt:
    from vkc.invoke.triton.modeltraced.session import steps_for

    full, _small = steps_for(ctx.workload)
    try:
        step = trace.step(full)
    except KeyError:
        return Attempt(fallback=f"model-traced: the model trace has no {full.id} step")
    see = f"see `vkc model kernels {trace.model_id} --workload {ctx.workload}`"
    calls = [e for e in step.events if e.kind == "op" and e.name in ops]
    if not ops or not calls:
        launched_by = ", ".join(ops) or "no op the tree registers"
        return Attempt(note=f"model-traced: {trace.model_id}'s {ctx.workload} step {full.id} does not launch this "
                            f"kernel (it is launched by {launched_by}); {see}")
    usable = [e for e in calls if e.name in bound_ops(ctx.kernel)]
    if not usable:
        return Attempt(note=f"model-traced: the {ctx.workload} step calls {calls[0].name} (layer {calls[0].layer}), "
                            f"which launches this kernel, but vkc binds no {calls[0].name} call to this recipe; {see}")
    refusals: list[str] = []
    others: list[str] = []                  # calls that launch another kernel of the op
    for ev in usable:                       # the first call the recipe can reproduce
        b = bind_call(ctx.kernel, ev)
        if b.not_launched:
            others.append(f"{call_text(ev)} (layer {ev.layer}): {b.not_launched}")
            continue
        if b.refused:
            refusals.append(f"{call_text(ev)}: {b.refused}")
            continue
        break
    else:
        if not refusals:                    # every call takes another kernel: the step does not launch this one
            more = f" (and {len(others) - 1} more calls)" if len(others) > 1 else ""
            return Attempt(note=f"model-traced: {trace.model_id}'s {ctx.workload} step {full.id} does not launch "
                                f"this kernel: {others[0]}{more}; {see}")
        more = f" (and {len(refusals) - 1} more calls)" if len(refusals) > 1 else ""
        return Attempt(fallback=f"model-traced: no traced call reproducible: {refusals[0]}{more}")
    try:
        plan = build(dataclasses.replace(ctx, bound=b.consts, bound_choices=b.choices))
    except TracedMismatch as e:
        return Attempt(fallback=f"model-traced: {e.message}")
    for i, (want, why) in sorted(b.template_expect.items()):
        got = plan.template_args[i] if i < len(plan.template_args) else None
        if got != want:
            return Attempt(note=f"model-traced: the traced {ev.name} call (layer {ev.layer}) takes {why}: it launches "
                                f"{plan.kernel_symbol} with template argument {want}, not {got}; {see}")
    where = f"layer {ev.layer}" if ev.layer is not None else "outside the layers"
    source = f"{trace.model_id} {ctx.workload} {where}: {call_text(ev)}"
    distinct = sorted({call_text(e) for e in calls if e.name == ev.name} - {call_text(ev)})
    notes = [f"model-traced: FULL = the {full.id} step's first {ev.name} call ({where}); {see}"]
    notes += [f"model-traced: the step also calls {c}" for c in distinct]
    notes += [f"model-traced serving choice: {n}" for n in serving_notes(trace)]
    scale = dataclasses.replace(plan.scale, traced=b.rows,
                                traced_note=comment_text(f"{b.rows_from} of {ev.name} at {where}, step {full.id}"))
    plan = dataclasses.replace(plan, scale=scale, notes=(*plan.notes, *b.notes, *notes))
    return Attempt(plan=plan, event=ev, source=source, traced_lines=tuple(describe_args(ev)))
