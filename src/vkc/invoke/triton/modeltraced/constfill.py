"""Contents rules of one value: views inside a range an aten op filled with one scalar (a rule of
:func:`vkc.invoke.triton.modeltraced.inits.init_for`)."""
from __future__ import annotations

from vkc.invoke.triton.plan import InitSpec
from vkc.modeltrace.records import TensorArg, TracedEvent

from .initbase import is_int

__all__ = ["FILLS", "filled_value", "span"]

# aten ops that set every element of ``self`` to one value
FILLS = frozenset({"aten::fill_", "aten::zero_"})


def filled_value(ev: TracedEvent, a: TensorArg) -> InitSpec | None:
    """The elements ``a`` views, when its storage's last writer filled a contiguous range holding all of
    them with one scalar (``fill_(value)``, ``zero_()``: e.g. DeepSeek-V4's top-k index workspace slices,
    pre-filled with -1): that value; None for a range that misses some, a tensor value or another storage."""
    args = dict(ev.args)
    dst = args.get("self")
    lo, hi = (span(dst), span(a)) if isinstance(dst, TensorArg) and dst.base == a.base else (None, None)
    if lo is None or hi is None or not (lo[0] <= hi[0] and hi[1] <= lo[1]):
        return None
    value = 0 if ev.name == "aten::zero_" else getattr(args.get("value"), "value", None)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return InitSpec("const", (int(value) if is_int(a.dtype) else value,))


def span(t: TensorArg) -> tuple[int, int] | None:
    """[first, end) element range of a contiguous (row-major) view; None for a strided one."""
    want, n = 1, 1
    for d, st in reversed(list(zip(t.shape, t.stride))):
        if d > 1 and st != want:
            return None
        want *= d
        n *= d
    return (t.offset, t.offset + n)
