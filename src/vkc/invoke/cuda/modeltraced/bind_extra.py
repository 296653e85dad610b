"""Binders for the MoE reduction, the MLA cache write, the block-FP8 quants, the dynamic int8 quant,
grouped top-k and Qwen3's split q/k rope.

Each reads one traced op call as its C++ wrapper receives it (:mod:`.bind` has the others; :mod:`.binding` the
:class:`~.binding.Binding` record); a call the recipe cannot reproduce is refused with the reason, and
a call that takes another kernel of the op (the register path of ``per_token_group_fp8_quant``)
says so in ``not_launched``.
"""
from __future__ import annotations

from collections.abc import Callable

from vkc.modeltrace.records import TracedEvent

from .binding import Binding, contiguous, register_path, rows_2d, scalar, tensor

_t, _s, _rows_2d = tensor, scalar, rows_2d

__all__ = ["EXTRA_BINDERS", "rotary_split"]

def _moe_sum(ev: TracedEvent, kernel: str) -> Binding:
    inp, out = _t(ev, "input"), _t(ev, "output")
    if inp is None or out is None:
        return Binding(refused="the call lacks input or output")
    if dict(ev.args).get("topk_ids") is not None and _t(ev, "topk_ids") is not None:
        return Binding(refused="the call passes topk_ids: the pad-aware instantiation (PAD_AWARE=true), "
                               "not the one the recipe launches")
    if len(inp.shape) != 3 or not contiguous(inp) or not contiguous(out):
        return Binding(refused=f"input {list(inp.shape)} stride {list(inp.stride)} / output stride "
                               f"{list(out.stride)}: the recipe launches a contiguous [T, topk, H] input")
    vec = 16 // inp.itemsize
    if (inp.offset * inp.itemsize) % 16 or (out.offset * out.itemsize) % 16 or inp.shape[2] % vec:
        return Binding(refused="unaligned pointers or hidden % VEC != 0: moe_sum takes moe_sum_scalar_kernel")
    t, k, h = inp.shape
    return Binding(t, "output.numel() / input.size(-1)",
                   {"hidden_size": (h, "input.size(-1)"), "topk": (k, "input.size(1)")})


def rotary_split(ev: TracedEvent, kernel: str) -> Binding | None:
    """Query and key as separate contiguous [T, heads*head_size] tensors; None for another layout."""
    from vkc.invoke.cuda.recipes.rotary import SEPARATE

    q, k, cache, pos = _t(ev, "query"), _t(ev, "key"), _t(ev, "cos_sin_cache"), _t(ev, "positions")
    hs = _s(ev, "head_size")
    if q is None or k is None or cache is None or pos is None or not isinstance(hs, int):
        return None
    if len(q.shape) != 2 or len(k.shape) != 2 or q.base == k.base:
        return None
    if q.stride != (q.shape[1], 1) or k.stride != (k.shape[1], 1) or q.shape[1] % hs or k.shape[1] % hs:
        return None
    if _s(ev, "is_neox") is False:
        return Binding(refused="is_neox=False: the recipe instantiates the NeoX rotation")
    consts = {"num_heads": (q.shape[1] // hs, "query.size(-1) / head_size"),
              "num_kv_heads": (k.shape[1] // hs, "key.size(-1) / head_size"),
              "head_size": (hs, "head_size"), "rot_dim": (cache.shape[1], "cos_sin_cache.size(1)"),
              "max_position": (cache.shape[0], "cos_sin_cache.size(0)"),
              SEPARATE: (1, "query and key are separate contiguous tensors")}
    return Binding(pos.shape[0], "positions.size(0)", consts,
                   notes=(("model-traced: query and key are separate contiguous tensors (q/k normalised before "
                          "rope); the program allocates them so, strides query.stride(0) / key.stride(0)"),))


def _concat_mla(ev: TracedEvent, kernel: str) -> Binding:
    kv_c, k_pe, cache, slots = _t(ev, "kv_c"), _t(ev, "k_pe"), _t(ev, "kv_cache"), _t(ev, "slot_mapping")
    if kv_c is None or k_pe is None or cache is None or slots is None:
        return Binding(refused="the call lacks kv_c, k_pe, kv_cache or slot_mapping")
    if _s(ev, "kv_cache_dtype") != "auto":
        return Binding(refused=f"kv_cache_dtype={_s(ev, 'kv_cache_dtype')!r}; the recipe writes an 'auto' cache")
    for t, label in ((kv_c, "kv_c"), (k_pe, "k_pe")):
        rw = _rows_2d(t, label)
        if isinstance(rw, str):
            return Binding(refused=rw)
        if t.stride[0] != rw[1]:
            return Binding(refused=f"{label} row stride {t.stride[0]} != width {rw[1]}; the recipe allocates "
                                   "separate contiguous kv_c and k_pe")
    if len(cache.shape) != 3 or not contiguous(cache) or cache.shape[2] != kv_c.shape[1] + k_pe.shape[1]:
        return Binding(refused=f"kv_cache {list(cache.shape)} stride {list(cache.stride)} is not a contiguous "
                               "[num_blocks, block_size, kv_lora_rank + pe_dim] cache")
    notes: tuple[str, ...] = (
        (f"model-traced: the traced cache is {cache.dtype}{list(cache.shape)} ({cache.shape[0]} blocks of "
        f"{cache.shape[1]}); the program's cache holds each sequence's pages (slots unique, inside it)"),)
    if kv_c.shape[0] != slots.shape[0]:
        notes += ((f"model-traced: kv_c has {kv_c.shape[0]} rows, slot_mapping {slots.shape[0]} (CUDA-graph "
                  "padding): the kernel writes slot_mapping.size(0) rows"),)
    return Binding(slots.shape[0], "slot_mapping.size(0)",
                   {"kv_lora_rank": (kv_c.shape[1], "kv_c.size(1)"), "pe_dim": (k_pe.shape[1], "k_pe.size(1)"),
                    "block_size": (cache.shape[1], "kv_cache.size(1)")},
                   notes=notes, choices=frozenset({"block_size"}))


def _quant_group(ev: TracedEvent, kernel: str) -> Binding:
    from vkc.invoke.cuda.recipes.quant_group import COL_MAJOR

    inp, s = _t(ev, "input"), _t(ev, "output_s")
    reg = register_path(ev)
    generic = "per_token_group_quant_8bit_register_kernel" not in kernel
    if generic:
        if reg:
            return Binding(not_launched=f"{reg}: it launches per_token_group_quant_8bit_register_kernel, "
                                        "not this kernel")
        return Binding(refused="vkc binds only calls on the register path (the generic kernel's recipe "
                               "instantiates row-major scales at other shapes)")
    if reg is None or inp is None or s is None:
        return Binding(not_launched="the call does not meet CanUseRegisterPath: it launches "
                                    "per_token_group_quant_8bit_kernel")
    if _s(ev, "scale_ue8m0") is True:
        return Binding(refused="scale_ue8m0=True: the recipe instantiates SCALE_UE8M0=false")
    rw = _rows_2d(inp, "input")
    if isinstance(rw, str):
        return Binding(refused=rw)
    rows, width = rw
    if len(s.shape) != 2 or s.shape != (rows, width // 128):
        return Binding(refused=f"output_s {list(s.shape)} is not [rows, hidden / 128]")
    col = s.stride[0] < s.stride[1]
    if (col and s.stride != (1, rows)) or (not col and s.stride != (width // 128, 1)):
        return Binding(refused=f"output_s stride {list(s.stride)}: the recipe allocates dense scales")
    return Binding(rows, "input.numel() / input.size(-1)",
                   {"hidden_size": (width, "input.size(-1)"),
                    COL_MAJOR: (int(col), "output_s.stride(0) < output_s.stride(1)")},
                   choices=frozenset({COL_MAJOR}),
                   notes=(f"model-traced: {reg}",))


Binder = Callable[[TracedEvent, str], Binding]

def _silu_quant(ev: TracedEvent, kernel: str) -> Binding:
    out, inp, scales, gs = _t(ev, "out"), _t(ev, "input"), _t(ev, "scales"), _s(ev, "group_size")
    if out is None or inp is None or scales is None or not isinstance(gs, int):
        return Binding(refused="the call lacks out, input, scales or group_size")
    if _t(ev, "scale_ub") is not None or _s(ev, "is_scale_transposed") is True:
        return Binding(refused="the call passes scale_ub or transposed scales; the recipe launches neither")
    if len(inp.shape) != 2 or not contiguous(inp) or not contiguous(out) or not contiguous(scales):
        return Binding(refused=f"input {list(inp.shape)} stride {list(inp.stride)}: the recipe launches contiguous "
                               "[rows, 2N] input, [rows, N] out and row-major scales")
    return Binding(inp.shape[0], "input.size(0)",
                   {"hidden_size": (out.shape[-1], "out.size(-1)"), "group_size": (gs, "group_size")})


def _grouped_topk(ev: TracedEvent, kernel: str) -> Binding:
    from .dispatch import launched_kernels

    scores = _t(ev, "scores")
    ng, tg, k = _s(ev, "n_group"), _s(ev, "topk_group"), _s(ev, "topk")
    if scores is None or not all(isinstance(x, int) for x in (ng, tg, k)):
        return Binding(refused="the call lacks scores, n_group, topk_group or topk")
    assert isinstance(ng, int) and isinstance(tg, int) and isinstance(k, int)
    rw = _rows_2d(scores, "scores")
    if isinstance(rw, str) or scores.stride[0] != scores.shape[1]:
        return Binding(refused=rw if isinstance(rw, str) else "scores rows are not contiguous")
    if _s(ev, "renormalize") is not True or _s(ev, "routed_scaling_factor") != 1.0:
        return Binding(refused=f"renormalize={_s(ev, 'renormalize')!r}, routed_scaling_factor="
                               f"{_s(ev, 'routed_scaling_factor')!r}: the recipe launches true and 1.0")
    bias = _t(ev, "bias")
    if bias is None or bias.dtype != "float32":
        return Binding(refused="the recipe launches a float32 e_score_correction_bias")
    got = launched_kernels(ev)
    bare = kernel.rsplit(":", 1)[-1]
    if got is not None and bare not in got:
        return Binding(not_launched=f"invokeNoAuxTc takes {', '.join(sorted(got))} for these sizes")
    return Binding(rw[0], "scores.size(0)",
                   {"num_experts": (rw[1], "scores.size(1)"), "n_group": (ng, "n_group"),
                    "topk_group": (tg, "topk_group"), "topk": (k, "topk")})


def _int8_quant(ev: TracedEvent, kernel: str) -> Binding:
    """scaled_quant.cu dynamic_scaled_int8_quant: contiguous input/out (the wrapper checks), one block per
    token (num_tokens = input.numel() / hidden_size); no azp (else the azp kernel)."""
    inp, out, scales = _t(ev, "input"), _t(ev, "result"), _t(ev, "scale")
    if inp is None or out is None or scales is None or not inp.shape:
        return Binding(refused="the call lacks input, result or scale")
    if _t(ev, "azp") is not None:
        return Binding(not_launched="the call passes azp: it launches dynamic_scaled_int8_azp_quant_kernel")
    if not (contiguous(inp) and contiguous(out) and contiguous(scales)):
        return Binding(refused=f"input {list(inp.shape)} stride {list(inp.stride)}: the wrapper requires contiguous "
                               "input, result and scale")
    hidden = inp.shape[-1]
    numel = 1
    for n in inp.shape:
        numel *= n
    if hidden == 0:
        return Binding(refused="hidden_size 0: the wrapper divides by it")
    return Binding(numel // hidden, "input.numel() / input.size(-1)", {"hidden_size": (hidden, "input.size(-1)")})


EXTRA_BINDERS: dict[str, tuple[tuple[str, ...], Binder]] = {
    "dynamic_scaled_int8_quant_kernel": (("_C::dynamic_scaled_int8_quant",), _int8_quant),
    "moe_sum_vec_kernel": (("_moe_C::moe_sum",), _moe_sum),
    "concat_and_cache_mla_kernel": (("_C_cache_ops::concat_and_cache_mla",), _concat_mla),
    "per_token_group_quant_8bit_register_kernel": (("_C::per_token_group_fp8_quant",), _quant_group),
    "per_token_group_quant_8bit_kernel": (("_C::per_token_group_fp8_quant",), _quant_group),
    "silu_and_mul_per_block_quant_kernel": (("_C::silu_and_mul_per_block_quant",), _silu_quant),
    "grouped_topk_fused_kernel": (("_moe_C::grouped_topk",), _grouped_topk),
    "grouped_topk_fused_small_expert_count_kernel": (("_moe_C::grouped_topk",), _grouped_topk),
}
