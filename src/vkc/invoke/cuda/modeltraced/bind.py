"""Bind a CUDA recipe's sizes to one traced custom-op call: :func:`bind_call`.

A binder reads the op's tensors as the C++ wrapper receives them (shape, stride, offset, dtype)
and returns the recipe's runtime dimension (:class:`~vkc.invoke.cuda.plan.Scale`: tokens / rows)
and the constants it fixes (hidden size, heads, ...), each with the tensor size it came from.  It
refuses, with the reason, a call whose layout the recipe does not reproduce (a 3-D input, a
non-contiguous row, a key that is not a view into the query's fused row).  Only ops whose wrapper
is the recipe's are bound (``gelu_and_mul`` also launches ``act_and_mul_kernel``, but with another
activation than the ``silu_and_mul`` recipe instantiates).
"""
from __future__ import annotations

from collections.abc import Callable

from vkc.modeltrace.records import ScalarArg, TensorArg, TracedEvent

from .bind_extra import EXTRA_BINDERS, rotary_split
from .binding import Binding, rows_2d, scalar, tensor

__all__ = ["BINDERS", "Binding", "bind_call", "bound_ops", "call_text", "describe_args"]


_t, _s, _rows_2d = tensor, scalar, rows_2d


def _input_rows(ev: TracedEvent) -> tuple[TensorArg, int, int] | Binding:
    """The call's 2-D ``input`` tensor with its (rows, width), or the refusal."""
    inp = _t(ev, "input")
    if inp is None:
        return Binding(refused="the call has no input tensor")
    rw = _rows_2d(inp, "input")
    if isinstance(rw, str):
        return Binding(refused=rw)
    return inp, rw[0], rw[1]


def _rms_norm(ev: TracedEvent, kernel: str) -> Binding:
    got = _input_rows(ev)
    if isinstance(got, Binding):
        return got
    inp, rows, width = got
    if inp.stride[0] != width:
        return Binding(refused=f"input row stride {inp.stride[0]} != hidden {width}; the recipe binds "
                               "input_stride_d2 = hidden_size")
    return Binding(rows, "input.size(0)", {"hidden_size": (width, "input.size(-1)")})


def _fused_add_rms_norm(ev: TracedEvent, kernel: str) -> Binding:
    inp, res = _t(ev, "input"), _t(ev, "residual")
    if inp is None or res is None:
        return Binding(refused="the call lacks input or residual")
    b = _rms_norm(ev, kernel)
    if b.refused:
        return b
    width = inp.shape[1]
    if res.shape != inp.shape or res.stride[0] != width:
        return Binding(refused=f"residual {list(res.shape)} stride {list(res.stride)} is not input's contiguous layout")
    # LAUNCH_FUSED_ADD_RMS_NORM(8) when pointers are 16-byte aligned and hidden/strides are multiples of 8
    aligned = all((t.offset * t.itemsize) % 16 == 0 for t in (inp, res)) and width % 8 == 0 \
        and inp.stride[0] % 8 == 0 and res.stride[0] % 8 == 0
    width_t = "8" if aligned else "0"
    path = ("LAUNCH_FUSED_ADD_RMS_NORM(8): 16-byte aligned, hidden and strides % 8 == 0" if aligned else
            "LAUNCH_FUSED_ADD_RMS_NORM(0): unaligned pointers or strides")
    return Binding(b.rows, b.rows_from, b.consts, template_expect={1: (width_t, path)})


def _silu_and_mul(ev: TracedEvent, kernel: str) -> Binding:
    got, out = _input_rows(ev), _t(ev, "result")
    if isinstance(got, Binding):
        return got
    inp, rows, width = got
    if inp.stride[0] != width or (out is not None and out.stride[0] != width // 2):
        return Binding(refused="input/result rows are not contiguous; the recipe allocates [rows, 2*d] and [rows, d]")
    return Binding(rows, "input.size(0)", {"d": (width // 2, "input.size(-1) / 2")})


def _swigluoai(ev: TracedEvent, kernel: str) -> Binding:
    got, out = _input_rows(ev), _t(ev, "out")
    if isinstance(got, Binding):
        return got
    inp, rows, width = got
    if inp.stride[0] != width or out is None or out.stride[0] != width // 2:
        return Binding(refused="input/out rows are not contiguous; the recipe allocates [rows, 2*d] and [rows, d]")
    for name in ("alpha", "limit"):
        if _s(ev, name) is not None:
            return Binding(refused=f"the call passes {name}={_s(ev, name)!r}; the recipe launches the schema's "
                                   "defaults, as vLLM's fused-MoE activation does")
    return Binding(rows, "input.size(0)", {"d": (width // 2, "input.size(-1) / 2")}, choices=frozenset({"d"}))


def _rotary(ev: TracedEvent, kernel: str) -> Binding:
    q, k, cache, pos = _t(ev, "query"), _t(ev, "key"), _t(ev, "cos_sin_cache"), _t(ev, "positions")
    hs = _s(ev, "head_size")
    if q is None or k is None or cache is None or pos is None or not isinstance(hs, int):
        return Binding(refused="the call lacks query, key, positions, cos_sin_cache or head_size")
    if len(pos.shape) != 1 or len(q.shape) != 2 or len(k.shape) != 2:
        return Binding(refused=f"positions {list(pos.shape)}, query {list(q.shape)}, key {list(k.shape)}: the "
                               "recipe launches flat [tokens, heads*head_size] views")
    split = rotary_split(ev, kernel)          # Qwen3: q and k normalised first, separate tensors
    if split is not None:
        return split
    hq, hkv = q.shape[1] // hs, k.shape[1] // hs
    row = (hq + 2 * hkv) * hs
    if q.base != k.base or q.stride != (row, 1) or k.stride != (row, 1) or k.offset != q.offset + hq * hs:
        return Binding(refused=f"query/key are not views of one fused qkv row of {row} elements (query stride "
                               f"{list(q.stride)}, key stride {list(k.stride)} offset {k.offset})")
    consts = {"num_heads": (hq, "query.size(-1) / head_size"), "num_kv_heads": (hkv, "key.size(-1) / head_size"),
              "head_size": (hs, "head_size"), "rot_dim": (cache.shape[1], "cos_sin_cache.size(1)"),
              "max_position": (cache.shape[0], "cos_sin_cache.size(0)")}
    return Binding(pos.shape[0], "positions.size(0)", consts)


def _topk_softmax(ev: TracedEvent, kernel: str) -> Binding:
    gate, w = _t(ev, "gating_output"), _t(ev, "topk_weights")
    if gate is None or w is None:
        return Binding(refused="the call lacks gating_output or topk_weights")
    rw = _rows_2d(gate, "gating_output")
    if isinstance(rw, str):
        return Binding(refused=rw)
    if gate.stride[0] != rw[1] or len(w.shape) != 2:
        return Binding(refused="gating_output rows are not contiguous or topk_weights is not [T, k]")
    if _s(ev, "renormalize") is not True or _s(ev, "bias") is not None:
        return Binding(refused=f"renormalize={_s(ev, 'renormalize')!r}, bias={_s(ev, 'bias')!r}; the recipe "
                               "launches renormalize=true without a bias")
    return Binding(rw[0], "gating_output.size(0)", {"num_experts": (rw[1], "gating_output.size(-1)"),
                                                      "topk": (w.shape[1], "topk_weights.size(-1)")})


def _moe_align(ev: TracedEvent, kernel: str) -> Binding:
    ids = _t(ev, "topk_ids")
    e, bs = _s(ev, "num_experts"), _s(ev, "block_size")
    if ids is None or len(ids.shape) != 2 or not isinstance(e, int) or not isinstance(bs, int):
        return Binding(refused="the call lacks a [T, k] topk_ids, num_experts or block_size")
    if dict(ev.args).get("maybe_expert_map") not in (None, ScalarArg(None)):
        return Binding(refused="the call passes an expert map; the recipe launches without one")
    return Binding(ids.shape[0], "topk_ids.size(0)",
                   {"num_experts": (e, "num_experts"), "topk_num": (ids.shape[1], "topk_ids.size(-1)"),
                    "block_size": (bs, "block_size (fused_moe's BLOCK_SIZE_M)")},
                   choices=frozenset({"block_size"}))


Binder = Callable[[TracedEvent, str], Binding]

# bare kernel name -> (the ops whose wrapper the recipe copies, binder)
BINDERS: dict[str, tuple[tuple[str, ...], Binder]] = {
    "rms_norm_kernel": (("_C::rms_norm",), _rms_norm),
    "fused_add_rms_norm_kernel": (("_C::fused_add_rms_norm",), _fused_add_rms_norm),
    "act_and_mul_kernel": (("_C::silu_and_mul",), _silu_and_mul),
    "swigluoai_and_mul_kernel": (("_C::swigluoai_and_mul",), _swigluoai),
    "rotary_embedding_kernel": (("_C::rotary_embedding",), _rotary),
    "topkGating": (("_moe_C::topk_softmax",), _topk_softmax),
    "moe_align_block_size_kernel": (("_moe_C::moe_align_block_size",), _moe_align),
    "count_and_sort_expert_tokens_kernel": (("_moe_C::moe_align_block_size",), _moe_align),
    **EXTRA_BINDERS,
}


def _bare(kernel: str) -> str:
    return kernel.rsplit(":", 1)[-1].split("@", 1)[0]


def bound_ops(kernel: str) -> tuple[str, ...]:
    """The ops a traced call of which can size ``kernel``'s recipe (empty: no binder)."""
    entry = BINDERS.get(_bare(kernel))
    return entry[0] if entry else ()


def bind_call(kernel: str, ev: TracedEvent) -> Binding:
    entry = BINDERS.get(_bare(kernel))
    if entry is None or ev.name not in entry[0]:
        return Binding(refused=f"vkc binds no {ev.name} call to the recipe of {_bare(kernel)}")
    return entry[1](ev, kernel)


def _arg(name: str, a: object) -> str:
    if isinstance(a, TensorArg):
        return f"{name} {a.dtype}{list(a.shape)}"
    if isinstance(a, ScalarArg):
        return f"{name}={a.value!r}"
    if isinstance(a, tuple):
        return f"{name}=({', '.join(_arg('', x).strip() for x in a)})"
    return f"{name}=?"


def call_text(ev: TracedEvent) -> str:
    """``_C::rms_norm(result bfloat16[64, 4096], input bfloat16[64, 4096], ..., epsilon=1e-05)``."""
    return f"{ev.name}({', '.join(_arg(n, a) for n, a in ev.args)})"


def describe_args(ev: TracedEvent) -> list[str]:
    """One header line per argument: dtype, shape, stride, storage offset (tensors) or the value."""
    out = []
    for n, a in ev.args:
        if isinstance(a, TensorArg):
            out.append(f"{n}: {a.dtype} shape={list(a.shape)} stride={list(a.stride)} offset={a.offset} "
                       f"(storage {a.base}, {a.producer})")
        else:
            out.append(_arg(n, a))
    return out
