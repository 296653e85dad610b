"""Recipe: normalisation kernels (Mamba2 gated RMSNorm, fused q/kv RMSNorm of MLA).

* ``_layer_norm_fwd_1pass_kernel``: ``rms_norm_gated(x, w, None, z=gate,
  norm_before_gate=False)``, the call of vLLM's ``Mixer2RMSNormGated.forward_cuda``
  (Mamba2 / hybrid models, ``n_groups == 1``).  Width ``d_inner = expand * hidden_size``
  with the Mamba2 reference default ``expand = 2`` (none of the benchmark models has SSM
  layers; the SSM geometry is documented in :mod:`.ssm`).
* ``FusedQKVRMSNormKernel.kernel``: ``fused_q_kv_rmsnorm(q_c, kv_c, ...)`` as
  ``MLAAttention`` calls it: ``q_c`` (q_lora_rank wide) and ``kv_c`` (kv_lora_rank wide)
  are column views of the fused ``qkv_a`` projection output (row stride
  q_lora_rank + kv_lora_rank + qk_rope_head_dim).  Only MLA models with a q LoRA
  (DeepSeek-V3/R1, Kimi-K2) run it; other models get a clear error.

Sizing: prefill rows fill the budget; decode uses ``DECODE_TOKENS`` rows.
"""
from __future__ import annotations

from typing import Any

from vkc.errors import NotApplicableError
from vkc.invoke.core.family import Family
from vkc.invoke.triton.recipes.base import DTYPE_BYTES, model_dtype, triton_recipe

K_GATED = "vllm.model_executor.layers.mamba.ops.layernorm_gated:_layer_norm_fwd_1pass_kernel"
K_QKV = "vllm.models.common.ops.fused_qk_rmsnorm:FusedQKVRMSNormKernel.kernel"
KERNELS: tuple[str, ...] = (K_GATED, K_QKV)
WORKLOADS: tuple[str, ...] = ("prefill", "decode")
DEFAULT_WORKLOAD = "prefill"

MAMBA_EXPAND = 2
DECODE_TOKENS = 256
ROW_MULTIPLE = 256


def _rows(workload: str, budget: int, per_row: int) -> int:
    if workload == "decode":
        return DECODE_TOKENS
    m = max(ROW_MULTIPLE, budget // per_row)
    return (m // ROW_MULTIPLE) * ROW_MULTIPLE


def shapes(model: dict, workload: str, budget_bytes: int, small: bool) -> dict:
    dtype = "float16" if small else model_dtype(model)
    es = DTYPE_BYTES[dtype]
    eps = float(model.get("rms_norm_eps") or 1e-6)
    hidden = int(model["hidden_size"])
    out: dict[str, Any] = {"dtype": dtype, "eps": eps, "workload": workload, "notes": []}
    # gated RMSNorm (always computable: every model has hidden_size)
    d_inner = MAMBA_EXPAND * hidden
    out["gated"] = {"d_inner": 256 if small else d_inner}
    if not small:
        out["notes"].append(f"gated RMSNorm width d_inner = {MAMBA_EXPAND} * hidden_size = {d_inner} "
                            "(Mamba2 default expand=2; the model has no SSM layers)")
    out["M_gated"] = 16 if small else _rows(workload, budget_bytes, 3 * d_inner * es + 4)
    # fused q/kv RMSNorm (MLA only)
    q, kv, rope = model.get("q_lora_rank"), model.get("kv_lora_rank"), model.get("qk_rope_head_dim") or 0
    if q and kv:
        if small:
            q, kv, rope = 96, 32, 16
        width = int(q) + int(kv) + int(rope)
        out["mla"] = {"q_lora_rank": int(q), "kv_lora_rank": int(kv), "qk_rope_head_dim": int(rope),
                      "row_stride": width}
        out["M_qkv"] = 16 if small else _rows(workload, budget_bytes, (width + int(q) + int(kv)) * es)
    else:
        out["mla"] = None
    return out


def _require_mla(shp: dict) -> dict:
    if not shp.get("mla"):
        raise NotApplicableError(
            "fused q/kv RMSNorm: the model has no MLA q LoRA (q_lora_rank/kv_lora_rank unset); "
            "vLLM runs this kernel only in MLAAttention",
            hint="use an MLA model, e.g. deepseek-ai/DeepSeek-V3 or moonshotai/Kimi-K2-Instruct")
    return shp["mla"]


def _fused_qkv(get: Any, shp: dict, T: Any) -> None:
    mla = _require_mla(shp)
    m, q, kv, dtype = shp["M_qkv"], mla["q_lora_rank"], mla["kv_lora_rank"], shp["dtype"]
    qkv_lora = T.tensor("qkv_lora", (m, mla["row_stride"]), dtype, "randn")
    q_c = qkv_lora[:, :q]
    kv_c = qkv_lora[:, q:q + kv]
    q_w = T.tensor("q_a_layernorm_weight", (q,), dtype, "ones")
    kv_w = T.tensor("kv_a_layernorm_weight", (kv,), dtype, "ones")
    get("vllm.models.common.ops.fused_qk_rmsnorm").fused_q_kv_rmsnorm(q_c, kv_c, q_w, kv_w, shp["eps"])


def _gated(get: Any, shp: dict, T: Any) -> None:
    d, m, dtype = shp["gated"]["d_inner"], shp["M_gated"], shp["dtype"]
    x = T.tensor("x", (m, d), dtype, "randn")
    gate = T.tensor("gate", (m, d), dtype, "randn")
    w = T.tensor("norm_weight", (d,), dtype, "ones")
    lng = get("vllm.model_executor.layers.mamba.ops.layernorm_gated")
    lng.rms_norm_gated(x, w, None, z=gate, eps=shp["eps"], norm_before_gate=False)


def shapes_qkv(model: dict, workload: str, budget_bytes: int, small: bool) -> dict:
    """:func:`shapes`, refusing a model without an MLA q LoRA before any trace starts."""
    shp = shapes(model, workload, budget_bytes, small)
    _require_mla(shp)
    return shp


RECIPES = (
    triton_recipe((K_GATED,), Family.NORM, shapes, _gated, workloads=WORKLOADS, default_workload=DEFAULT_WORKLOAD),
    triton_recipe((K_QKV,), Family.NORM, shapes_qkv, _fused_qkv, workloads=WORKLOADS,
                  default_workload=DEFAULT_WORKLOAD),
)
