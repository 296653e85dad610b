"""Dispatch rules for fused activation / norm+RoPE ops (masked MoE activation, QK-norm RoPE,
DeepSeek-V4 Q-norm RoPE KV insert, MiniMax all-reduce + QK RMS norm).

Each rule restates its host function's own branches (vLLM 0.33.0, file named in the docstring);
device queries take vkc's H100 answers (:mod:`.dispatch_args`).  An empty set: the host function
fails its checks or returns before any launch; None: the call does not record what the branch reads.
"""
from __future__ import annotations

from collections.abc import Callable

from vkc.modeltrace.records import TracedEvent

from .binding import tensor
from .dispatch_args import SM_VERSION, opt_bool, opt_int, opt_str

__all__ = ["RULES"]

_FLOATING = ("float32", "float16", "bfloat16")
_HALF = ("float16", "bfloat16")

# csrc/activation_kernels.cu masked_moe_activation: activation string -> kernel
_MASKED: dict[str, str] = {
    "silu": "masked_act_and_mul_kernel", "silu_with_clamp": "masked_act_and_mul_kernel",
    "gelu": "masked_act_and_mul_kernel", "gelu_tanh": "masked_act_and_mul_kernel",
    "swigluoai_uninterleave": "masked_act_and_mul_kernel",
    "situ": "masked_situ_and_mul_kernel", "swigluoai": "masked_swigluoai_and_mul_kernel",
    "swiglustep": "masked_swiglustep_and_mul_kernel",
    "silu_no_mul": "masked_activation_kernel", "gelu_no_mul": "masked_activation_kernel",
    "gelu_tanh_no_mul": "masked_activation_kernel", "relu2_no_mul": "masked_activation_kernel",
}


def _masked_moe_activation(ev: TracedEvent) -> set[str] | None:
    """csrc/activation_kernels.cu masked_moe_activation: no launch for zero experts, tokens or
    width; the ``activation`` string picks the kernel (an unknown one fails its check)."""
    out, inp, act = tensor(ev, "out"), tensor(ev, "input"), opt_str(ev, "activation")
    if out is None or inp is None or act is None or not out.shape or len(inp.shape) < 2:
        return None
    batched = len(inp.shape) == 3
    experts, tokens = (inp.shape[0], inp.shape[1]) if batched else (1, inp.shape[0])
    if experts == 0 or tokens == 0 or out.shape[-1] == 0 or inp.dtype not in _FLOATING or act not in _MASKED:
        return set()
    return {_MASKED[act]}


def _qk_token_heads(tokens: int, qk_heads: int, head_dim: int) -> int:
    """fused_qk_norm_rope's auto-selected token_heads_per_warp (calibrated on SM 9.0; 1 elsewhere)."""
    if SM_VERSION != 90:
        return 1
    units = tokens * qk_heads
    if head_dim >= 256:
        return 1 if units < 4096 else 2 if units < 8192 else 4
    return 1 if units < 10240 else 4 if units < 40960 else 8


def _fused_qk_norm_rope(ev: TracedEvent) -> set[str] | None:
    """csrc/fused_qknorm_rope_kernel.cu fused_qk_norm_rope: token_heads_per_warp is
    ``forced_token_heads_per_warp`` when > 0 (schema default -1), else the SM 9.0 table over
    num_tokens x (heads_q + heads_k); 1 takes fusedQKNormRopeKernel, 2/4/8 the NTokenHeads kernel
    unless rotary_dim x cache element size is not a multiple of 16 bytes (then the base kernel);
    another value, head_dim outside 64/128/256 or a non-16-bit qkv fail their checks."""
    qkv, cache = tensor(ev, "qkv"), tensor(ev, "cos_sin_cache")
    hq, hk, hd = opt_int(ev, "num_heads_q"), opt_int(ev, "num_heads_k"), opt_int(ev, "head_dim")
    forced = opt_int(ev, "forced_token_heads_per_warp", -1)
    if qkv is None or cache is None or hq is None or hk is None or hd is None or forced is None:
        return None
    if len(qkv.shape) != 2 or len(cache.shape) != 2:
        return set()
    if qkv.dtype not in _HALF or cache.dtype not in _FLOATING or hd not in (64, 128, 256):
        return set()
    per_warp = forced if forced > 0 else _qk_token_heads(qkv.shape[0], hq + hk, hd)
    if per_warp not in (1, 2, 4, 8):
        return set()
    rotary_bytes = cache.shape[1] * (4 if cache.dtype == "float32" else 2)
    if per_warp == 1 or rotary_bytes % 16:
        return {"fusedQKNormRopeKernel"}
    return {"fusedQKNormRopeKernelNTokenHeads"}


_V4_HEADS = (8, 16, 32, 64, 128)
_V4_TOKEN_CUTOFF = 1024            # NUM_TOKEN_CUTOFF
_V4_NORMAL = "fusedDeepseekV4QNormRopeKVRopeQuantInsertKernel"


def _deepseek_v4_quant_insert(ev: TracedEvent) -> set[str] | None:
    """csrc/fused_deepseek_v4_qnorm_rope_kv_insert_kernel.cu (launchFusedDeepseekV4Templated): a
    KV-only call (q_head_padded 0) and fewer than NUM_TOKEN_CUTOFF (1024) rows of q_in take the
    warp-per-slot kernel, more rows the ReducedGrid one; padded head counts other than 0, 8, 16,
    32, 64, 128 (or below q_in's head count) and a non-16-bit q_in fail their checks."""
    q, padded = tensor(ev, "q_in"), opt_int(ev, "q_head_padded")
    if q is None or padded is None or not q.shape:
        return None
    if len(q.shape) != 3 or q.dtype not in _HALF or (padded != 0 and (padded not in _V4_HEADS or padded < q.shape[1])):
        return set()
    if padded == 0 or q.shape[0] < _V4_TOKEN_CUTOFF:
        return {_V4_NORMAL}
    return {_V4_NORMAL + "ReducedGrid"}


def _deepseek_v4_kv_insert(ev: TracedEvent) -> set[str] | None:
    """fused_deepseek_v4_kv_rope_insert: no launch for an empty slot_mapping; a uint8 (packed) cache
    takes the KV-only templated launch (zero Q heads: the warp-per-slot kernel), an fp8 e4m3 or
    bfloat16 cache fusedDeepseekV4FullCacheKernel; another cache dtype or a row width other than
    584 (528 with kv_mxfp8, schema default False) for uint8, 512 otherwise fails its check."""
    cache, slots = tensor(ev, "k_cache"), tensor(ev, "slot_mapping")
    mxfp8 = opt_bool(ev, "kv_mxfp8", False)
    if cache is None or slots is None or not slots.shape or mxfp8 is None:
        return None
    if len(cache.shape) != 3 or cache.dtype not in ("uint8", "float8_e4m3fn", "bfloat16"):
        return set()
    if cache.shape[2] != ((528 if mxfp8 else 584) if cache.dtype == "uint8" else 512) or slots.shape[0] == 0:
        return set()
    return {_V4_NORMAL if cache.dtype == "uint8" else "fusedDeepseekV4FullCacheKernel"}


def _minimax_allreduce_rms_qk(ev: TracedEvent) -> set[str] | None:
    """csrc/minimax_reduce_rms_kernel.cu minimax_allreduce_rms_qk: the float4 QK kernel when the full
    (nranks x per-rank) Q and K widths are MiniMax-M2's 6144 and 1024 (the K input is qkv's pointer
    past Q, never null for a non-empty call), else the scalar lamport kernel; 2/4/8/16 ranks and a
    floating qkv, else its checks fail."""
    qkv = tensor(ev, "qkv")
    q, kv, ranks = opt_int(ev, "q_size"), opt_int(ev, "kv_size"), opt_int(ev, "nranks")
    if qkv is None or q is None or kv is None or ranks is None:
        return None
    if len(qkv.shape) != 2 or qkv.shape[-1] != q + 2 * kv or ranks not in (2, 4, 8, 16) or qkv.dtype not in _FLOATING:
        return set()
    if q * ranks == 6144 and kv * ranks == 1024:
        return {"minimax_reduce_qk_rms_kernel_lamport_float4"}
    return {"minimax_reduce_rms_kernel_lamport"}


RULES: dict[str, Callable[[TracedEvent], set[str] | None]] = {
    "_C::masked_moe_activation": _masked_moe_activation,
    "_C::fused_qk_norm_rope": _fused_qk_norm_rope,
    "_C::fused_deepseek_v4_qnorm_rope_kv_rope_quant_insert": _deepseek_v4_quant_insert,
    "_C::fused_deepseek_v4_kv_rope_insert": _deepseek_v4_kv_insert,
    "_C::minimax_allreduce_rms_qk": _minimax_allreduce_rms_qk,
}
