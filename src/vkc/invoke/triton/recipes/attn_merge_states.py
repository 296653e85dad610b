"""merge_attn_states (vllm/v1/attention/ops/triton_merge_attn_states.py): merge two partial
attention results (prefix/suffix) with their LSEs, as cascade / chunked-context MLA prefill do.

prefill: as many tokens as fit the budget (3 outputs of [T, H_q, Dv] + 3 LSEs [H_q, T]).
decode: 256 tokens (one per request; DCP decode merge).  Dv = v_head_dim for MLA models.
"""
from __future__ import annotations

from vkc.invoke.core.dims import Need
from vkc.invoke.core.family import Family
from vkc.invoke.triton.recipes import _attn
from vkc.invoke.triton.recipes.base import ATTENTION_HELPERS, round_down, triton_recipe

KERNELS = ("vllm.v1.attention.ops.triton_merge_attn_states:merge_attn_states_kernel",)
WORKLOADS = ("prefill", "decode")
DEFAULT_WORKLOAD = "prefill"
DECODE_TOKENS = 256


def shapes(model: dict, workload: str, budget_bytes: int, small: bool) -> dict:
    d = _attn.dims(model, small)
    it = _attn.itemsize(d["dtype"])
    dv = d["v_head_dim"] if d["mla"] and d["v_head_dim"] else d["D"]
    if small:
        tokens = 7
    elif workload == "decode":
        tokens = DECODE_TOKENS
    else:
        per_tok = 3 * d["H_q"] * dv * it + 3 * d["H_q"] * 4
        tokens = round_down(budget_bytes // per_tok, 16)
    return dict(d, workload=workload, tokens=tokens, Dv=dv)


def call(get, shp: dict, T) -> None:
    mod = get("vllm.v1.attention.ops.triton_merge_attn_states")
    n, h, dv, dt = shp["tokens"], shp["H_q"], shp["Dv"], shp["dtype"]
    out = T.tensor("output", [n, h, dv], dt, "empty")
    p_out = T.tensor("prefix_output", [n, h, dv], dt, "randn")
    s_out = T.tensor("suffix_output", [n, h, dv], dt, "randn")
    p_lse = T.tensor("prefix_lse", [h, n], "float32", "randn")
    s_lse = T.tensor("suffix_lse", [h, n], "float32", "randn")
    o_lse = T.tensor("output_lse", [h, n], "float32", "empty")
    mod.merge_attn_states(out, p_out, p_lse, s_out, s_lse, output_lse=o_lse)


def flops_bytes(shp: dict, launch: dict):
    it = _attn.itemsize(shp["dtype"])
    n, h, dv = shp["tokens"], shp["H_q"], shp["Dv"]
    return None, float(3 * n * h * dv * it + 3 * n * h * 4)


RECIPES = (
    triton_recipe(KERNELS, Family.ATTENTION, shapes, call,
                  workloads=WORKLOADS, default_workload=DEFAULT_WORKLOAD, needs=(Need.ATTENTION,),
                  flops_bytes=flops_bytes, helpers=ATTENTION_HELPERS),
)
