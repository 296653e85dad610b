"""What a binder returns (:class:`Binding`) and the helpers binders read a traced call with."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from vkc.modeltrace.records import ScalarArg, TensorArg, TracedEvent

__all__ = ["Binding", "contiguous", "register_path", "rows_2d", "scalar", "tensor"]

_16BIT = ("bfloat16", "float16")


@dataclass(frozen=True)
class Binding:
    """What a traced call fixes: the Scale value and the recipe constants, or why it cannot."""

    rows: int = 0
    rows_from: str = ""
    consts: Mapping[str, tuple[int, str]] = field(default_factory=dict)
    refused: str | None = None        # the recipe cannot reproduce this call
    not_launched: str | None = None   # the call launches another kernel of the op (why): recipe, with a note
    notes: tuple[str, ...] = ()
    choices: frozenset[str] = frozenset()   # consts where the traced value replaces the recipe's own choice
    # template argument index -> (value the traced call's dispatch picks, why); another value in the
    # recipe's plan means this call launches another instantiation / overload
    template_expect: Mapping[int, tuple[str, str]] = field(default_factory=dict)


def tensor(ev: TracedEvent, name: str) -> TensorArg | None:
    a = dict(ev.args).get(name)
    return a if isinstance(a, TensorArg) else None


def scalar(ev: TracedEvent, name: str) -> object:
    a = dict(ev.args).get(name)
    return a.value if isinstance(a, ScalarArg) else None


def rows_2d(t: TensorArg, label: str) -> tuple[int, int] | str:
    """(rows, width) of a 2-D row-contiguous tensor, else the reason it is not."""
    if len(t.shape) != 2:
        return f"{label} is {len(t.shape)}-D {list(t.shape)}; the recipe launches a 2-D [rows, width] call"
    if t.stride[1] != 1:
        return f"{label} has inner stride {t.stride[1]}; the recipe assumes unit inner stride"
    return t.shape[0], t.shape[1]


def contiguous(t: TensorArg) -> bool:
    want, acc = [], 1
    for n in reversed(t.shape):
        want.append(acc)
        acc *= n
    return all(n == 1 or s == w for n, s, w in zip(t.shape, t.stride, reversed(want)))


def register_path(ev: TracedEvent) -> str | None:
    """Why ``per_token_group_quant_8bit`` takes the register kernel for this call (None: it does not)."""
    inp, q = tensor(ev, "input"), tensor(ev, "output_q")
    if inp is None or q is None or scalar(ev, "group_size") != 128 or inp.dtype not in _16BIT:
        return None
    if not (contiguous(inp) and contiguous(q)) or (inp.offset * inp.itemsize) % 16 or (q.offset * q.itemsize) % 16:
        return None
    return f"CanUseRegisterPath: group_size 128, {inp.dtype} contiguous 16-byte aligned input and output_q"
