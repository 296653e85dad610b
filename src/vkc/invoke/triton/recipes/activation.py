"""Recipe: gated activations (``_swiglustep_and_mul_kernel``).

``swiglustep_and_mul_triton(out, x, limit)``: ``x`` is the gate/up projection output
``[rows, 2*d]``, ``out`` is ``[rows, d]``.  Dense models: ``rows`` = tokens and
``d = intermediate_size``; MoE models: the activation runs per routed row, so
``rows = tokens * top_k`` and ``d = moe_intermediate_size``.  ``limit`` is the model's
``swiglu_limit`` when the config has one (gpt-oss: 7.0), else vLLM's default 7.0.
Sizing: prefill rows fill the budget; decode uses ``DECODE_TOKENS`` tokens.
"""
from __future__ import annotations

from typing import Any

from vkc.invoke.core.family import Family
from vkc.invoke.triton.recipes.base import DTYPE_BYTES, model_dtype, triton_recipe

KERNELS: tuple[str, ...] = ("vllm.model_executor.layers.activation:_swiglustep_and_mul_kernel",)
WORKLOADS: tuple[str, ...] = ("prefill", "decode")
DEFAULT_WORKLOAD = "prefill"

DEFAULT_LIMIT = 7.0
DECODE_TOKENS = 256
ROW_MULTIPLE = 256


def shapes(model: dict, workload: str, budget_bytes: int, small: bool) -> dict:
    k = int(model.get("num_experts_per_tok") or 0) if model.get("num_experts") else 0
    d = int(model.get("moe_intermediate_size") or model["intermediate_size"]) if k else int(model["intermediate_size"])
    limit = float(model.get("swiglu_limit") or DEFAULT_LIMIT)
    per_token_rows = max(1, k)
    if small:
        return {"rows": 8, "d": 1536, "dtype": "float16", "limit": limit, "top_k": k,
                "workload": workload, "notes": ["SMALL_SANITY sizes (not the model's)"]}
    dtype = model_dtype(model)
    es = DTYPE_BYTES[dtype]
    if workload == "decode":
        rows = DECODE_TOKENS * per_token_rows
    else:
        rows = max(ROW_MULTIPLE, budget_bytes // (3 * d * es))
        rows = (rows // ROW_MULTIPLE) * ROW_MULTIPLE
    notes = [f"MoE: rows = tokens * top_k ({k}), d = moe_intermediate_size {d}"] if k else []
    return {"rows": int(rows), "d": d, "dtype": dtype, "limit": limit, "top_k": k,
            "workload": workload, "notes": notes}


def call(vllm_mod_getter: Any, shp: dict, T: Any) -> None:
    rows, d, dtype = shp["rows"], shp["d"], shp["dtype"]
    x = T.tensor("gate_up", (rows, 2 * d), dtype, "randn")
    out = T.tensor("out", (rows, d), dtype, "empty")
    act = vllm_mod_getter("vllm.model_executor.layers.activation")
    act.swiglustep_and_mul_triton(out, x, shp["limit"])


RECIPES = (
    triton_recipe(KERNELS, Family.ACTIVATION, shapes, call,
                  workloads=WORKLOADS, default_workload=DEFAULT_WORKLOAD),
)
