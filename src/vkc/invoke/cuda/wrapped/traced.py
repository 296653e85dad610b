"""The model-traced source of the wrapper-compiled path: :func:`wrapped_from_trace`.

For a kernel no recipe covers, the model's FULL step (the Triton half's cached trace session) is
searched for the first call of an op whose host function reaches the kernel (the op map) and whose
dispatch launches it (vkc's rules, :mod:`vkc.invoke.cuda.modeltraced.dispatch`); that call, with the
step's facts for the contents, becomes the FULL config and the SMALL step's first such call the
SMALL config.  Never raises for a call it cannot reproduce: the attempt carries the reason.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from vkc.invoke.core.provenance import InvocationMode
from vkc.modeltrace.records import ModelTrace, StepTrace, TracedEvent
from vkc.records import Extraction, Invocation, ModelConfig, SourceTree

from .host import NotLaunched, WrapRefused
from .program import OpCall, invoke_wrapped

__all__ = ["WrappedAttempt", "step_call", "wrapped_from_trace"]


@dataclass(frozen=True)
class WrappedAttempt:
    invocation: Invocation | None = None
    fallback: str | None = None     # "model-traced: <why>": the step launches the kernel, vkc cannot reproduce it
    note: str | None = None         # the step does not launch the kernel


def step_call(trace: ModelTrace, step: StepTrace, ev: TracedEvent, where: str) -> OpCall:
    """One op call of a traced model step, with the step's facts (the Triton half's contents rules)."""
    from vkc.invoke.triton.modeltraced.build import kv_bases, kv_blocks
    from vkc.invoke.triton.modeltraced.inits import StepFacts
    from vkc.modeltrace.contents import step_contents

    bs = trace.block_size
    tokens = step.spec.ctx if step.spec.workload == "decode" else step.spec.prompt_len
    used = step.spec.batch * -(-max(tokens, 1) // bs) + 1
    kv = kv_bases(step)
    known = step_contents(trace, step.spec)
    # block ids and slots must stay inside every KV-cache view the call itself passes (its block dimension:
    # the outermost one of size > 2), whatever the rest of the step shows
    own = [t.shape[max((d for d in range(len(t.shape)) if t.shape[d] > 2), key=lambda d: t.stride[d], default=0)]
           for _n, t in ev.tensors() if t.base in kv and t.shape]
    nb = min([n for n in (kv_blocks(step), *own) if n] or [used])
    facts = StepFacts(step, nb, bs, kv_bases=kv, known=known)
    return OpCall(ev, known, where, facts, kv)


def _where(trace: ModelTrace, workload: str, ev: TracedEvent) -> str:
    from vkc.invoke.cuda.modeltraced.bind import call_text

    layer = f"layer {ev.layer}" if ev.layer is not None else "outside the layers"
    return f"{trace.model_id} {workload} {layer}: {call_text(ev)}"


def _small(trace: ModelTrace, spec: Any, ops: tuple[str, ...], build: Any, workload: str) -> OpCall | None:
    try:
        step = trace.step(spec)
    except KeyError:
        return None
    for ev in (e for e in step.events if e.kind == "op" and e.name in ops):
        call = step_call(trace, step, ev, f"{_where(trace, workload, ev)} (step {spec.id})")
        try:
            build(call, None)
        except WrapRefused:
            continue
        return call
    return None


def wrapped_from_trace(trace: ModelTrace, tree: SourceTree, ex: Extraction, model: ModelConfig, *,
                       workload: str, why: str, ops: tuple[str, ...], command: str, name: str) -> WrappedAttempt:
    """The wrapper-compiled example of ``ex`` from ``trace``'s step of ``workload`` (``ops``: the op map's)."""
    from vkc.invoke.cuda.modeltraced.bind import call_text
    from vkc.invoke.triton.modeltraced.session import steps_for
    from vkc.modeltrace.render import serving_notes

    full_spec, small_spec = steps_for(workload)
    try:
        step = trace.step(full_spec)
    except KeyError:
        return WrappedAttempt(fallback=f"model-traced: the model trace has no {full_spec.id} step")
    see = f"see `vkc model kernels {trace.model_id} --workload {workload}`"
    calls = [e for e in step.events if e.kind == "op" and e.name in ops]
    if not calls:
        return WrappedAttempt(note=f"model-traced: {trace.model_id}'s {workload} step {full_spec.id} does not launch "
                                   f"this kernel (it is launched by {', '.join(ops)}); {see}")

    def build(full: OpCall, small: OpCall | None, notes: tuple[str, ...] = ()) -> Invocation:
        return invoke_wrapped(tree, ex, full, small, mode=InvocationMode.MODEL_TRACED, model=model,
                              workload=workload, why=why, command=command, name=name, notes=notes)

    refusals: list[str] = []
    others: list[str] = []
    for ev in calls:
        full = step_call(trace, step, ev, _where(trace, workload, ev))
        try:
            build(full, None)
        except NotLaunched as e:
            others.append(f"{call_text(ev)} (layer {ev.layer}): {e.message}")
            continue
        except WrapRefused as e:
            refusals.append(f"{call_text(ev)}: {e.message}")
            continue
        small = _small(trace, small_spec, (ev.name,), build, workload)
        where = f"layer {ev.layer}" if ev.layer is not None else "outside the layers"
        first = f"model-traced: FULL = the {full_spec.id} step's first {ev.name} call that launches this kernel"
        notes = (f"{first} ({where}); {see}",
                 *(f"model-traced: the step also calls {c}" for c in
                   sorted({call_text(e) for e in calls if e.name == ev.name} - {call_text(ev)})),
                 *(f"model-traced serving choice: {n}" for n in serving_notes(trace)))
        return WrappedAttempt(invocation=build(full, small, notes))
    if not refusals:
        more = f" (and {len(others) - 1} more calls)" if len(others) > 1 else ""
        return WrappedAttempt(note=f"model-traced: {trace.model_id}'s {workload} step {full_spec.id} does not launch "
                                   f"this kernel: {others[0]}{more}; {see}")
    more = f" (and {len(refusals) - 1} more calls)" if len(refusals) > 1 else ""
    return WrappedAttempt(fallback=f"model-traced: no traced call reproducible by the wrapper-compiled path: "
                                   f"{refusals[0]}{more}")
