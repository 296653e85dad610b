"""What the contents rules share (:mod:`.inits`, :mod:`.lora_align`, :mod:`.build`): the refusal, buffers padded to
the traced storage, and the routing facts a rule reads."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

from vkc.invoke.triton.plan import InitSpec, Value
from vkc.modeltrace.contents import Contents
from vkc.modeltrace.records import ScalarArg, StepSpec, TensorArg, TracedEvent

__all__ = ["MOE_LORA_ALIGN", "Refused", "RoutingFacts", "StepView", "float_bits", "int_scalars", "is_int", "lengths",
           "numel", "padded", "role_of"]

MOE_LORA_ALIGN = "_moe_C::moe_lora_align_block_size"


class Refused(Exception):
    """The launch cannot be reproduced with valid contents (the reason is the message)."""


class RoutingFacts(Protocol):
    """The part of :class:`.inits.StepFacts` a routing rule reads."""

    @property
    def known(self) -> Mapping[str, Contents]: ...

    def route(self, M: int, E: int, k: int) -> list[list[int]]: ...


class StepView(Protocol):
    """The part of :class:`.inits.StepFacts` a produced-contents rule reads: the step, its KV-cache block
    count and the event a ``producer`` names."""

    @property
    def spec(self) -> StepSpec: ...

    @property
    def num_blocks(self) -> int: ...

    @property
    def known(self) -> Mapping[str, Contents]: ...

    def event(self, producer: str) -> TracedEvent | None: ...


def is_int(dtype: str) -> bool:
    """An integer (or bool) storage: index-like unless a rule says it is data."""
    return dtype.startswith(("int", "uint")) or dtype == "bool"


def numel(a: TensorArg) -> int:
    return max(1, a.base_nbytes // a.itemsize)


def padded(values: Sequence[int], a: TensorArg, fill: int) -> InitSpec:
    """``values`` then ``fill`` over the whole traced storage (refused at an offset or when too many)."""
    n = numel(a)
    if a.offset != 0 or len(values) > n:
        raise Refused(f"{len(values)} values do not fit the traced buffer ({n} elements at offset {a.offset})")
    full: list[Value] = [*values, *([fill] * (n - len(values)))]
    return InitSpec("values", (full,))


def lengths(spec: StepSpec) -> tuple[list[int], list[int]]:
    """(query lengths, context lengths) per sequence of the step."""
    if spec.workload == "decode":
        return [1] * spec.batch, [spec.ctx] * spec.batch
    return [spec.prompt_len] * spec.batch, [spec.prompt_len] * spec.batch


def int_scalars(ev: TracedEvent) -> dict[str, int]:
    """The launch's integer scalars and integer constexprs, by name (what a contents rule reads of its producer)."""
    out = {n: v.value for n, v in ev.args if isinstance(v, ScalarArg) and isinstance(v.value, int)}
    out.update({n: v for n, v in ev.constexprs.items() if isinstance(v, int) and not isinstance(v, bool)})
    return out


def role_of(ev: TracedEvent, a: TensorArg, results: Sequence[str] = ()) -> str | None:
    """Which argument of ``ev`` (or which of its results, named ``results`` in order) views ``a``'s storage."""
    for n, t in [*ev.tensors(), *zip(results, ev.outputs)]:
        if t.base == a.base:
            return n
    return None


_FLOATS = ("float16", "bfloat16", "float32", "float64")


def float_bits(a: TensorArg, ev: TracedEvent) -> InitSpec | None:
    """``a`` is an integer view of floating data: the producer ``ev`` made (or took) the storage as floats of
    the same width (Step5's compacted query: bf16 rows copied as int16); its contents are random values of
    that float dtype reinterpreted (``randn_as``), not indices.  None when ``ev`` saw no such view."""
    if not is_int(a.dtype) or a.dtype == "bool":
        return None
    for t in [*(t for _n, t in ev.tensors()), *ev.outputs]:
        if t.base == a.base and t.dtype in _FLOATS and t.itemsize == a.itemsize:
            return InitSpec("randn_as", (t.dtype,))
    return None
