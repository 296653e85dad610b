"""Dispatch rules for the quantization ops (GPTQ, int8, dynamic FP8, SITU+FP8, add-RMS-norm+FP8).

Each rule restates its host function's own branches (vLLM 0.33.0, file named in the docstring) and
answers the bare kernel names the call launches: an empty set when the host function returns or
fails its checks before any launch, None when the call does not record what the branch reads.
"""
from __future__ import annotations

from collections.abc import Callable

from vkc.modeltrace.records import TracedEvent

from .binding import tensor
from .dispatch_args import (
    GENERIC_DECL,
    VECTORIZED_DECL,
    aligned,
    f32,
    numel,
    opt_bool,
    opt_float,
    opt_int,
    tensor_given,
)

__all__ = ["OVERLOADS", "RULES"]

_GPTQ_BITS = (2, 3, 4, 8)
# csrc/quantization/gptq/q_gemm.cu: MAX_Q_GEMM_ROWS, MAX_Q_GEMM_ROWS_8BIT, MAX_ALT_GEMM_ROWS
_MAX_Q_GEMM_ROWS, _MAX_Q_GEMM_ROWS_8BIT, _MAX_ALT_GEMM_ROWS = 50, 24, 8


def _bit_kernel(bit: int, name: str, bits: tuple[int, ...]) -> str:
    """``name`` formatted with the bit width the ``if (bit == 2) ... else if`` chain picks; 4 otherwise."""
    return name.format(bit if bit in bits else 4)


def _gptq_gemm(ev: TracedEvent) -> set[str] | None:
    """csrc/quantization/gptq/q_gemm.cu gemm_half_q_half_cuda (m = a.size(0)): the exllama path
    reconstructs (reconstruct_exllama + cuBLAS) above 50 rows (24 at 8 bits), else runs the quantized
    gemm (``pick_gemm_half_q_half_gptq_kernel``: 2/3/4/8 bits, NULL for any other width); the other
    path reconstructs (reconstruct_gptq) below 4 bits or above 8 rows, else runs the alt gemm (8-bit
    kernel for bit 8, the 4-bit one otherwise)."""
    a = tensor(ev, "a")
    bit, exllama = opt_int(ev, "bit"), opt_bool(ev, "use_exllama")
    if a is None or bit is None or exllama is None or len(a.shape) != 2 or bit <= 0:
        return None      # bit <= 0: temp_dq's size divides by it
    m = a.shape[0]
    if exllama:
        reconstruct = m > (_MAX_Q_GEMM_ROWS_8BIT if bit == 8 else _MAX_Q_GEMM_ROWS)
    else:
        reconstruct = bit < 4 or m > _MAX_ALT_GEMM_ROWS
    if reconstruct and exllama:
        return {_bit_kernel(bit, "reconstruct_exllama_{}bit_kernel", (2, 3, 8))}
    if reconstruct:
        return {"reconstruct_gptq_3bit_kernel" if bit == 3 else "reconstruct_gptq_kernel"}
    if exllama:
        # chunks of BLOCK_M_SIZE_MAX rows and the remainder: no launch for m == 0; a NULL kernel
        # pointer (nothing runs) for a width pick_gemm_half_q_half_gptq_kernel does not list
        return {f"gemm_half_q_half_gptq_{bit}bit_kernel"} if m and bit in _GPTQ_BITS else set()
    return {_bit_kernel(bit, "gemm_half_q_half_alt_{}bit_kernel", (8,))}


def _gptq_shuffle(ev: TracedEvent) -> set[str] | None:
    """q_gemm.cu shuffle_exllama_weight: 2/3/8-bit kernels for those widths, the 4-bit one otherwise."""
    bit = opt_int(ev, "bit")
    if bit is None or bit <= 0:
        return None
    return {_bit_kernel(bit, "shuffle_{}bit_kernel", (2, 3, 8))}


def _int8_quant(kind: str) -> Callable[[TracedEvent], set[str] | None]:
    """csrc/quantization/w8a8/int8/scaled_quant.cu {static,dynamic}_scaled_int8_quant: the azp kernel
    when ``azp`` is passed (schema ``Tensor? azp``, no default), the symmetric one when it is None."""
    def rule(ev: TracedEvent) -> set[str] | None:
        azp = tensor_given(ev, "azp", default_none=False)
        if azp is None:
            return None
        return {f"{kind}_scaled_int8_azp_quant_kernel" if azp else f"{kind}_scaled_int8_quant_kernel"}
    return rule


# csrc/activation_kernels.cu SITU_BETA, SITU_LINEAR_BETA and situ_and_mul_quant's SITU_D
_SITU_BETA, _SITU_LINEAR_BETA, _SITU_D = 4.0, 25.0, 3072


def _situ_and_mul_quant(ev: TracedEvent) -> set[str] | None:
    """csrc/activation_kernels.cu situ_and_mul_quant (schema defaults beta=1.0, linear_beta=-1.0,
    group_size=0): returns for no tokens; requires group_size 128 and d % 128 == 0; 16-bit input
    (checked) with d == 3072 and (float)beta, (float)linear_beta == SITU_BETA, SITU_LINEAR_BETA takes
    the pipelined kernel, every other call the scalar one."""
    inp = tensor(ev, "input")
    beta, lin = opt_float(ev, "beta", 1.0), opt_float(ev, "linear_beta", -1.0)
    group = opt_int(ev, "group_size", 0)
    if inp is None or not inp.shape or beta is None or lin is None or group is None:
        return None
    if inp.shape[-1] == 0:
        return None      # numel / size(-1) divides by zero
    d, tokens = inp.shape[-1] // 2, numel(inp) // inp.shape[-1]
    if tokens == 0 or group != 128 or d % group or inp.dtype not in ("float16", "bfloat16"):
        return set()
    pipelined = d == _SITU_D and f32(beta) == _SITU_BETA and f32(lin) == _SITU_LINEAR_BETA
    return {"situ_and_mul_quant_group_pipelined_kernel" if pipelined else "situ_and_mul_quant_group_scalar_kernel"}


def _fused_add_rms_norm_fp8(ev: TracedEvent) -> set[str] | None:
    """csrc/layernorm_quant_kernels.cu fused_add_rms_norm_static_fp8_quant: width 8 when input,
    residual and weight are 16-byte aligned and hidden size and input.stride(-2) are multiples of 8
    (not batch invariant, vkc's default); width 8 takes the vectorized overload for the types with a
    ``_typeConvert`` (float, half, bfloat16), every other case the generic one."""
    inp, res, w = tensor(ev, "input"), tensor(ev, "residual"), tensor(ev, "weight")
    if inp is None or res is None or w is None or len(inp.shape) < 2:
        return None
    width8 = (all(aligned(t, 16) for t in (inp, res, w)) and inp.shape[-1] % 8 == 0
              and inp.stride[-2] % 8 == 0)
    vec = width8 and inp.dtype in ("float32", "float16", "bfloat16")
    return {"fused_add_rms_norm_static_fp8_quant_kernel@vectorized" if vec
            else "fused_add_rms_norm_static_fp8_quant_kernel@generic"}


def _dynamic_fp8_quant(ev: TracedEvent) -> set[str] | None:
    """csrc/quantization/w8a8/fp8/common.cu dynamic_scaled_fp8_quant: the absmax pass is the flat grid
    reduction when input rows are packed (stride(-2) == hidden size), the hidden size is a multiple
    of 16 and the input pointer is aligned to a 16-element vector (32 B for 16-bit types, 64 B for
    float32), else the per-row strided one; the quantize kernel follows either way."""
    inp = tensor(ev, "input")
    if inp is None or len(inp.shape) < 2:
        return None
    hidden = inp.shape[-1]
    if inp.dtype not in ("float32", "float16", "bfloat16") or inp.stride[-1] != 1 or hidden == 0:
        return set()
    flat = inp.stride[-2] == hidden and hidden % 16 == 0 and aligned(inp, 16 * inp.itemsize)
    return {"absmax_reduction_flat" if flat else "segmented_max_reduction_strided",
            "scaled_fp8_quant_kernel_strided_dynamic"}


OVERLOADS: dict[str, str] = {
    "fused_add_rms_norm_static_fp8_quant_kernel@vectorized": VECTORIZED_DECL,
    "fused_add_rms_norm_static_fp8_quant_kernel@generic": GENERIC_DECL,
}

RULES: dict[str, Callable[[TracedEvent], set[str] | None]] = {
    "_C::gptq_gemm": _gptq_gemm,
    "_C::gptq_shuffle": _gptq_shuffle,
    "_C::static_scaled_int8_quant": _int8_quant("static"),
    "_C::dynamic_scaled_int8_quant": _int8_quant("dynamic"),
    "_C::dynamic_scaled_fp8_quant": _dynamic_fp8_quant,
    "_C::situ_and_mul_quant": _situ_and_mul_quant,
    "_C::fused_add_rms_norm_static_fp8_quant": _fused_add_rms_norm_fp8,
}
