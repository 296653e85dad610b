"""Recipe: multimodal rotary embedding (``_triton_mrope_forward``).

``triton_mrope(q, k, cos, sin, mrope_section, head_size, rotary_dim, interleaved,
is_neox_style)`` as ``MRotaryEmbedding.forward_cuda`` calls it for 2-D (T/H/W) positions:
``q [tokens, H_q*Dh]``, ``k [tokens, H_kv*Dh]`` (rotated in place), ``cos``/``sin``
``[3, tokens, rotary_dim/2]`` (the gathered cos/sin cache; values in [-1, 1]).
None of the benchmark models uses M-RoPE (it is Qwen2/2.5-VL's): the recipe applies it
to the model's attention geometry with Qwen2-VL's section split scaled to the head
(``[16, 24, 24]`` for Dh=128, i.e. 1/4, 3/8, 3/8 of rotary_dim/2), NeoX style,
not interleaved, rotary_dim = head_dim.
Sizing: prefill tokens fill the budget; decode uses ``DECODE_TOKENS`` tokens.
"""
from __future__ import annotations

from typing import Any

from vkc.invoke.core.family import Family
from vkc.invoke.triton.recipes.base import DTYPE_BYTES, model_dtype, triton_recipe

KERNELS: tuple[str, ...] = ("vllm.model_executor.layers.rotary_embedding.mrope:_triton_mrope_forward",)
WORKLOADS: tuple[str, ...] = ("prefill", "decode")
DEFAULT_WORKLOAD = "prefill"

DECODE_TOKENS = 256
ROW_MULTIPLE = 256


def mrope_section(rotary_dim: int) -> list[int]:
    """Qwen2-VL's [16, 24, 24] split of rotary_dim/2 = 64, scaled to other heads."""
    half = rotary_dim // 2
    t = half // 4
    h = (half - t) // 2
    return [t, h, half - t - h]


def shapes(model: dict, workload: str, budget_bytes: int, small: bool) -> dict:
    hq = int(model["num_attention_heads"])
    hkv = int(model.get("num_key_value_heads") or hq)
    dh = int(model.get("head_dim") or int(model["hidden_size"]) // hq)
    if small:
        hq, hkv, dh = 4, 2, 32
    dtype = "float16" if small else model_dtype(model)
    es = DTYPE_BYTES[dtype]
    rd = dh
    if small:
        tokens = 8
    elif workload == "decode":
        tokens = DECODE_TOKENS
    else:
        per_tok = (hq + hkv) * dh * es + 2 * 3 * (rd // 2) * es
        tokens = max(ROW_MULTIPLE, budget_bytes // per_tok)
        tokens = (tokens // ROW_MULTIPLE) * ROW_MULTIPLE
    notes = [] if small else [(f"M-RoPE (Qwen2-VL style) applied to this model's heads: section {mrope_section(rd)}, "
                              "neox style, not interleaved (the model itself uses 1-D RoPE)")]
    return {"tokens": int(tokens), "H_q": hq, "H_kv": hkv, "Dh": dh, "rotary_dim": rd,
            "mrope_section": mrope_section(rd), "interleaved": False, "is_neox_style": True,
            "dtype": dtype, "workload": workload, "notes": notes}


def call(vllm_mod_getter: Any, shp: dict, T: Any) -> None:
    n, hq, hkv, dh, rd = shp["tokens"], shp["H_q"], shp["H_kv"], shp["Dh"], shp["rotary_dim"]
    dtype = shp["dtype"]
    q = T.tensor("query", (n, hq * dh), dtype, "randn")
    k = T.tensor("key", (n, hkv * dh), dtype, "randn")
    # cos_sin_cache is kept in the query dtype by vLLM (_match_cos_sin_cache_dtype)
    cos = T.tensor("cos", (3, n, rd // 2), dtype, ("uniform", -1.0, 1.0))
    sin = T.tensor("sin", (3, n, rd // 2), dtype, ("uniform", -1.0, 1.0))
    mrope = vllm_mod_getter("vllm.model_executor.layers.rotary_embedding.mrope")
    mrope.triton_mrope(q, k, cos, sin, list(shp["mrope_section"]), dh, rd,
                       shp["interleaved"], shp["is_neox_style"])


RECIPES = (
    triton_recipe(KERNELS, Family.ROTARY, shapes, call,
                  workloads=WORKLOADS, default_workload=DEFAULT_WORKLOAD),
)
