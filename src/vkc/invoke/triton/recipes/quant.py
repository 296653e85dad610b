"""Recipe: activation / weight quantization kernels (fp8 per-token-group, fp8 block GEMM, int8).

* ``_per_token_group_quant_fp8``: ``per_token_group_quant_fp8(x, 128)``, row-major scales.
  On a CUDA platform vLLM routes contiguous inputs to the CUDA op
  ``torch.ops._C.per_token_group_fp8_quant``; the Triton kernel is the fallback taken when
  that op is unavailable.  The recipe takes the fallback by hiding CUDA from that one
  branch (``fp8_utils.current_platform`` answers ``is_cuda_alike() == False`` during the
  call; every other query, fp8 dtype and limits included, stays the H100's).
* ``_w8a8_triton_block_scaled_mm``: ``w8a8_triton_block_scaled_mm`` with block [128, 128],
  fp8 A/B, fp32 per-token-group / per-block scales, config from vLLM's tuned-config lookup
  (``get_w8a8_block_fp8_configs``; default config where vLLM ships none for the dims).
* ``_per_token_quant_int8``: ``per_token_quant_int8(x)``.

The layer: the QKV projection (K = hidden_size, N = (H_q + 2*H_kv) * Dh) when hidden_size
is a multiple of the 128 group; otherwise (gpt-oss: 2880) the o_proj (K = H_q * Dh,
N = hidden_size), whose input width is.
Sizing: prefill fills the budget (GEMM: at most ``GEMM_MAX_TOKENS`` rows); decode uses
``DECODE_TOKENS`` rows.
"""
from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from vkc.errors import InvocationError
from vkc.invoke.core.family import Family
from vkc.invoke.triton.recipes.base import (
    DTYPE_BYTES,
    default_flops_bytes,
    dispatch,
    model_dtype,
    triton_recipe,
)

K_GROUP = "vllm.model_executor.layers.quantization.utils.fp8_utils:_per_token_group_quant_fp8"
K_BLOCK_MM = "vllm.model_executor.layers.quantization.utils.fp8_utils:_w8a8_triton_block_scaled_mm"
K_INT8 = "vllm.model_executor.layers.quantization.utils.int8_utils:_per_token_quant_int8"
KERNELS: tuple[str, ...] = (K_GROUP, K_BLOCK_MM, K_INT8)
WORKLOADS: tuple[str, ...] = ("prefill", "decode")
DEFAULT_WORKLOAD = "prefill"

GROUP = 128
BLOCK = [128, 128]
DECODE_TOKENS = 256
GEMM_MAX_TOKENS = 16384      # vLLM 0.33 default max_num_batched_tokens on H100 (LLM class)
ROW_MULTIPLE = 128


def _layer(model: dict) -> dict[str, Any]:
    hidden = int(model["hidden_size"])
    hq, hkv = int(model["num_attention_heads"]), int(model.get("num_key_value_heads") or model["num_attention_heads"])
    dh = int(model.get("head_dim") or hidden // hq)
    if hidden % GROUP == 0:
        return {"layer": "qkv_proj", "K": hidden, "N": (hq + 2 * hkv) * dh}
    if (hq * dh) % GROUP == 0:
        return {"layer": "o_proj", "K": hq * dh, "N": hidden,
                "note": f"hidden_size {hidden} is not a multiple of the {GROUP}-wide quantization group; "
                        f"the o_proj input (H_q*Dh = {hq * dh}) is used"}
    raise InvocationError(f"quantization kernels: neither hidden_size {hidden} nor H_q*Dh {hq * dh} "
                          f"is a multiple of the {GROUP}-wide group",
                          hint="block-fp8 quantization needs a width divisible by 128")


def _rows(workload: str, budget: int, per_row: int, fixed: int = 0, cap: int | None = None) -> int:
    if workload == "decode":
        return DECODE_TOKENS
    m = max(ROW_MULTIPLE, (budget - fixed) // per_row)
    if cap:
        m = min(m, cap)
    return max(ROW_MULTIPLE, (m // ROW_MULTIPLE) * ROW_MULTIPLE)


def shapes(model: dict, workload: str, budget_bytes: int, small: bool) -> dict:
    """Sizes for the kernel named in ``model``-independent key ``kernel`` (default: the first)."""
    lay = _layer(model)
    K, N = lay["K"], lay["N"]
    notes = [lay["note"]] if "note" in lay else []
    dtype = model_dtype(model)
    if small:
        return {"M": 16, "M_quant": 16, "M_gemm": 16, "K": 256, "N": 256, "dtype": "float16",
                "layer": lay["layer"], "group": GROUP,
                "block": BLOCK, "workload": workload, "notes": ["SMALL_SANITY sizes (not the model's)"]}
    es = DTYPE_BYTES[dtype]
    out: dict[str, Any] = {"K": K, "N": N, "dtype": dtype, "layer": lay["layer"], "group": GROUP,
                           "block": BLOCK, "workload": workload, "notes": notes}
    # live rows: quant kernels read x (es) and write xq (1 B) + scales; the GEMM reads A, B, writes C
    # cap: the kernels index rows with int32 arithmetic (row_id * stride), as vLLM launches them
    # only for a scheduler's token budget; more than 2**31 elements per tensor would overflow.
    out["M_quant"] = _rows(workload, budget_bytes, K * (es + 1) + 4 * (K // GROUP + 1),
                           cap=(2**31 - 1) // K)
    out["M_gemm"] = _rows(workload, budget_bytes, K + N * es + 4 * (K // GROUP), fixed=N * K, cap=GEMM_MAX_TOKENS)
    out["M"] = out["M_quant"]
    return out


@contextlib.contextmanager
def _triton_fallback(fp8_utils: Any) -> Iterator[None]:
    """Make per_token_group_quant_fp8 take its Triton branch (the CUDA op is unavailable)."""
    real = fp8_utils.current_platform

    class _NoCudaOp:
        def __getattr__(self, name: str) -> Any:
            return getattr(real, name)

        def is_cuda_alike(self) -> bool:
            return False

        def is_xpu(self) -> bool:
            return False

    fp8_utils.current_platform = _NoCudaOp()
    try:
        yield
    finally:
        fp8_utils.current_platform = real


def _group_quant(get: Any, shp: dict, T: Any) -> None:
    fp8 = get("vllm.model_executor.layers.quantization.utils.fp8_utils")
    x = T.tensor("x", (shp["M_quant"], shp["K"]), shp["dtype"], "randn")
    with _triton_fallback(fp8):
        fp8.per_token_group_quant_fp8(x, shp["group"], column_major_scales=False)


def _block_mm(get: Any, shp: dict, T: Any) -> None:
    fp8 = get("vllm.model_executor.layers.quantization.utils.fp8_utils")
    m, K, N = shp["M_gemm"], shp["K"], shp["N"]
    bn, bk = shp["block"]
    A = T.tensor("A", (m, K), "fp8", "randn")
    B = T.tensor("B", (N, K), "fp8", "randn")
    As = T.tensor("As", (m, -(-K // bk)), "float32", ("uniform", 0.005, 0.02))
    Bs = T.tensor("Bs", (-(-N // bn), -(-K // bk)), "float32", ("uniform", 0.0005, 0.002))
    fp8.w8a8_triton_block_scaled_mm(A, B, As, Bs, [bn, bk], output_dtype=T.dtype(shp["dtype"]))


def _int8(get: Any, shp: dict, T: Any) -> None:
    x = T.tensor("x", (shp["M_quant"], shp["K"]), shp["dtype"], "randn")
    get("vllm.model_executor.layers.quantization.utils.int8_utils").per_token_quant_int8(x)


def call(vllm_mod_getter: Any, shp: dict, T: Any) -> None:
    dispatch("quant", {K_GROUP: _group_quant, K_BLOCK_MM: _block_mm, K_INT8: _int8}, vllm_mod_getter, shp, T)


def flops_bytes(shp: dict, launch: dict) -> tuple[float | None, float | None]:
    """The GEMM: 2*M*N*K FLOPs; the quant kernels: bytes of their tensors (default)."""
    if launch.get("fn", {}).get("qualname") == K_BLOCK_MM.split(":")[1]:
        m = shp["M_gemm"]
        es = DTYPE_BYTES.get(shp["dtype"], 2)
        return 2.0 * m * shp["N"] * shp["K"], float(m * shp["K"] + shp["N"] * shp["K"] + m * shp["N"] * es)
    return default_flops_bytes(shp, launch)


RECIPES = (
    triton_recipe(KERNELS, Family.QUANT, shapes, call,
                  workloads=WORKLOADS, default_workload=DEFAULT_WORKLOAD, flops_bytes=flops_bytes),
)
