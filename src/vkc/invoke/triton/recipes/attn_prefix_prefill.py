"""context_attention_fwd (vllm/v1/attention/ops/prefix_prefill.py): chunked prefill over a
paged prefix, 5-D key cache ``[num_blocks, H_kv, D // x, block_size, x]`` and value cache
``[num_blocks, H_kv, D, block_size]`` (split from one ``kv_cache`` buffer as
``PagedAttention.split_kv_cache`` does).

prefill: sequences with a cached prefix of ``PREFIX`` tokens and ``CHUNK`` new tokens each
(both capped so prefix + chunk <= max_position_embeddings), as many as fit the budget.
"""
from __future__ import annotations

from vkc.invoke.core.dims import Need
from vkc.invoke.core.family import Family
from vkc.invoke.triton.recipes import _attn
from vkc.invoke.triton.recipes.base import ATTENTION_HELPERS, round_down, triton_recipe

KERNELS = ("vllm.v1.attention.ops.prefix_prefill:_fwd_kernel",)
WORKLOADS = ("prefill",)
DEFAULT_WORKLOAD = "prefill"
PREFIX = 2048
CHUNK = 2048


def shapes(model: dict, workload: str, budget_bytes: int, small: bool) -> dict:
    d = _attn.dims(model, small)
    it = _attn.itemsize(d["dtype"])
    bs = _attn.BLOCK_SIZE
    if small:
        prefix, chunk, batch = 2 * bs, 20, 2
    else:
        chunk = min(CHUNK, round_down(d["max_ctx"] // 2, bs))
        prefix = min(PREFIX, round_down(d["max_ctx"] - chunk, bs))
        kv_tok = 2 * d["H_kv"] * d["D"] * it
        per_seq = (prefix + chunk) * kv_tok + chunk * (2 * d["H_q"] + 2 * d["H_kv"]) * d["D"] * it
        batch = max(1, budget_bytes // per_seq)
    ctx = prefix + chunk
    bps = -(-ctx // bs)
    return dict(d, workload=workload, batch=batch, q_len=chunk, prefix=prefix, ctx=ctx, block_size=bs,
                blocks_per_seq=bps, num_blocks=batch * bps)


def call(get, shp: dict, T) -> None:
    mod = get("vllm.v1.attention.ops.prefix_prefill")
    B, ql, ctx, D = shp["batch"], shp["q_len"], shp["ctx"], shp["D"]
    hq, hkv, bs, dt, nb = shp["H_q"], shp["H_kv"], shp["block_size"], shp["dtype"], shp["num_blocks"]
    tokens = B * ql
    q = T.tensor("query", [tokens, hq, D], dt, "randn")
    k = T.tensor("key", [tokens, hkv, D], dt, "randn")
    v = T.tensor("value", [tokens, hkv, D], dt, "randn")
    o = T.tensor("output", [tokens, hq, D], dt, "empty")
    kv_cache = T.tensor("kv_cache", [2, nb, bs * hkv * D], dt, "randn")
    x = 16 // kv_cache.element_size()
    k_cache = kv_cache[0].view(nb, hkv, D // x, -1, x)
    v_cache = kv_cache[1].view(nb, hkv, D, -1)
    b_loc = T.tensor("block_table", [B, shp["blocks_per_seq"]], "int32", ("block_table", nb))
    b_start_loc = T.tensor("query_start_loc", [B + 1], "int32", ("arange", 0, ql))
    b_seq_len = T.tensor("seq_lens", [B], "int32", ("const", ctx))
    k_scale = T.tensor("k_scale", [], "float32", ("const", 1.0))
    v_scale = T.tensor("v_scale", [], "float32", ("const", 1.0))
    sinks = T.tensor("sinks", [hq], "float32", "randn") if shp["sinks"] else None
    mod.context_attention_fwd(
        q=q, k=k, v=v, o=o, kv_cache_dtype="auto", k_cache=k_cache, v_cache=v_cache, b_loc=b_loc,
        b_start_loc=b_start_loc, b_seq_len=b_seq_len, max_seq_len=ctx, max_input_len=ql,
        k_scale=k_scale, v_scale=v_scale, alibi_slopes=None,
        sliding_window=shp["sliding_window"] or None, sm_scale=D ** -0.5, sinks=sinks,
    )


def flops_bytes(shp: dict, launch: dict):
    B, ql, pre, D = shp["batch"], shp["q_len"], shp["prefix"], shp["D"]
    it = _attn.itemsize(shp["dtype"])
    pairs = B * (ql * pre + ql * (ql + 1) // 2)
    nbytes = B * ((pre + ql) * 2 * shp["H_kv"] + ql * 2 * shp["H_q"]) * D * it
    return 4.0 * pairs * shp["H_q"] * D, float(nbytes)


RECIPES = (
    triton_recipe(KERNELS, Family.ATTENTION, shapes, call,
                  workloads=WORKLOADS, default_workload=DEFAULT_WORKLOAD, needs=(Need.ATTENTION,),
                  flops_bytes=flops_bytes, helpers=ATTENTION_HELPERS),
)
