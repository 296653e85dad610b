"""Traced op calls built by hand for the dispatch-rule tests (one branch of a host function each)."""
from __future__ import annotations

from typing import Any

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


def check_names(tree: Any, cases: list[tuple[str, TracedEvent, set[str] | None]],
                never: set[tuple[str, str]]) -> None:
    """Every kernel a rule answers is one of the op's kernels in the tree's op map, and every kernel of
    each op is answered by some case, but for the (op, kernel) pairs in ``never``."""
    from vkc.index import build_index
    from vkc.invoke.cuda.modeltraced import op_kernel_map

    opmap = op_kernel_map(build_index(tree))
    for op in sorted({ev.name for _, ev, _ in cases}):
        kernels = {k.rsplit(":", 1)[-1] for k in opmap[op].kernels}
        answered = {n for _, ev, want in cases if ev.name == op for n in want or ()}
        assert answered <= kernels, (op, answered - kernels)
        assert {(op, k) for k in kernels - answered} <= never, (op, kernels - answered)
    assert all(k in {n.rsplit(":", 1)[-1] for n in opmap[op].kernels} for op, k in never)
