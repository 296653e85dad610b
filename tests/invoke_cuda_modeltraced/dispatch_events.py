"""Traced op calls built by hand for the dispatch-rule tests (one branch of a host function each)."""
from __future__ import annotations

from vkc.modeltrace.records import ScalarArg, TensorArg, TracedEvent

SIZE = {"float32": 4, "float16": 2, "bfloat16": 2, "int32": 4, "int64": 8, "int8": 1, "uint8": 1,
         "float8_e4m3fn": 1}


def tensor(dtype: str, shape: tuple[int, ...], *, offset: int = 0, stride: tuple[int, ...] | None = None) -> TensorArg:
    if stride is None:
        acc, rev = 1, []
        for n in reversed(shape):
            rev.append(acc)
            acc *= n
        stride = tuple(reversed(rev))
    size = SIZE[dtype]
    nbytes = size * (offset + sum((n - 1) * s for n, s in zip(shape, stride)) + 1)
    return TensorArg(dtype, shape, stride, offset, size, f"s{len(shape)}{offset}", nbytes, "event:1")


def op_event(op: str, **args: object) -> TracedEvent:
    return TracedEvent(index=2, kind="op", name=op, layer=0, module="model.layers.0",
                       args=tuple((k, v if isinstance(v, (TensorArg, ScalarArg, tuple)) else ScalarArg(v))
                                 for k, v in args.items()))
