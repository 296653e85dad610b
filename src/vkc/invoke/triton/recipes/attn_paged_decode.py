"""chunked_prefill_paged_decode (vllm/v1/attention/ops/chunked_prefill_paged_decode.py), as
the ROCm attention backend calls it, at decode (``max_query_len == 1``: only
kernel_paged_attention_2d runs).

KV cache: one buffer ``kv_cache [2, num_blocks, block_size * H_kv * D]`` split like
``PagedAttention.split_kv_cache``: key ``[num_blocks, H_kv, D // x, block_size, x]`` (5-D,
``x = 16 // itemsize``), value ``[num_blocks, H_kv, D, block_size]``.  ``num_seqs`` = 64
single-token queries, each with the longest context that fits the budget
(<= max_position_embeddings); the model's sliding window (full length W) and sinks are passed
like the backend does (``sliding_window = 1 + (W - 1)``).
"""
from __future__ import annotations

from vkc.invoke.core.dims import Need
from vkc.invoke.core.family import Family
from vkc.invoke.triton.recipes import _attn
from vkc.invoke.triton.recipes.base import ATTENTION_HELPERS, triton_recipe

KERNELS = ("vllm.v1.attention.ops.chunked_prefill_paged_decode:kernel_paged_attention_2d",)
WORKLOADS = ("decode",)
DEFAULT_WORKLOAD = "decode"
DECODE_BATCH = 64


def shapes(model: dict, workload: str, budget_bytes: int, small: bool) -> dict:
    d = _attn.dims(model, small)
    it = _attn.itemsize(d["dtype"])
    bs = _attn.BLOCK_SIZE
    batch = 3 if small else DECODE_BATCH
    kv_tok = 2 * d["H_kv"] * d["D"] * it
    # SMALL: a context longer than the window (when the model has one) so the window is exercised
    ctx = d["sliding_window"] + 2 * bs + 7 if small else _attn.fit_context(budget_bytes, batch, kv_tok, d["max_ctx"])
    bps = -(-ctx // bs)
    return dict(d, workload=workload, batch=batch, q_len=1, ctx=ctx, block_size=bs, blocks_per_seq=bps,
                num_blocks=batch * bps)


def call(get, shp: dict, T) -> None:
    mod = get("vllm.v1.attention.ops.chunked_prefill_paged_decode")
    B, ctx, D = shp["batch"], shp["ctx"], shp["D"]
    hq, hkv, bs, dt = shp["H_q"], shp["H_kv"], shp["block_size"], shp["dtype"]
    nb = shp["num_blocks"]
    q = T.tensor("query", [B, hq, D], dt, "randn")
    k = T.tensor("key", [B, hkv, D], dt, "randn")
    v = T.tensor("value", [B, hkv, D], dt, "randn")
    out = T.tensor("output", [B, hq, D], dt, "empty")
    kv_cache = T.tensor("kv_cache", [2, nb, bs * hkv * D], dt, "randn")
    x = 16 // kv_cache.element_size()
    key_cache = kv_cache[0].view(nb, hkv, D // x, -1, x)
    value_cache = kv_cache[1].view(nb, hkv, D, -1)
    block_table = T.tensor("block_table", [B, shp["blocks_per_seq"]], "int32", ("block_table", nb))
    qsl = T.tensor("query_start_loc", [B + 1], "int32", ("arange", 0, 1))
    seq_lens = T.tensor("seq_lens", [B], "int32", ("const", ctx))
    k_scale = T.tensor("k_scale", [], "float32", ("const", 1.0))
    v_scale = T.tensor("v_scale", [], "float32", ("const", 1.0))
    sinks = T.tensor("sinks", [hq], "float32", "randn") if shp["sinks"] else None
    sw = shp["sliding_window"]
    mod.chunked_prefill_paged_decode(
        query=q, key=k, value=v, output=out, kv_cache_dtype="auto",
        key_cache=key_cache, value_cache=value_cache, block_table=block_table,
        query_start_loc=qsl, seq_lens=seq_lens, max_seq_len=ctx, max_query_len=1,
        k_scale=k_scale, v_scale=v_scale, alibi_slopes=None,
        sliding_window=(1 + (sw - 1)) if sw else None, sm_scale=D ** -0.5, sinks=sinks,
    )


def flops_bytes(shp: dict, launch: dict):
    """GB/s: the kernel walks every page of each context (the window only masks scores), so it
    reads the whole KV of each sequence; FLOPs inside the window are not a useful rate here."""
    B, ctx, D = shp["batch"], shp["ctx"], shp["D"]
    it = _attn.itemsize(shp["dtype"])
    return None, float(B * ctx * 2 * shp["H_kv"] * D * it + 2 * B * shp["H_q"] * D * it)


RECIPES = (
    triton_recipe(KERNELS, Family.ATTENTION, shapes, call,
                  workloads=WORKLOADS, default_workload=DEFAULT_WORKLOAD, needs=(Need.ATTENTION,),
                  flops_bytes=flops_bytes, helpers=ATTENTION_HELPERS),
)
