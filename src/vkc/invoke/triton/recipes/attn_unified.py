"""unified_attention (vllm/v1/attention/ops/triton_unified_attention.py), as the Triton
attention backend (v1/attention/backends/triton_attn.py) calls it.

KV cache: one buffer ``kv_cache [num_blocks, block_size, H_kv, 2*D]`` split on the last
dim into key/value views (the backend's ``kv_cache.transpose(1, 2).split(hs, -1)`` of its
logical (B, H, N, 2*hs) cache); block tables index pages of it.  Split-K scratch buffers
(``softmax_segm_*``) are sized like the backend's metadata builder (16 segments,
``seq_threshold_3D = 128 // H_kv`` rows).

decode: ``num_seqs = seq_threshold_3D`` single-token queries (the largest batch that
takes the 3D split-KV path, as the backend does at small batch), each with the longest
context that fits the budget (<= max_position_embeddings).
prefill: sequences of ``min(2048, max_ctx)`` new tokens each (no cached prefix), as many as
fit the budget; the 2D path.
"""
from __future__ import annotations

from vkc.invoke.core.dims import Need
from vkc.invoke.core.family import Family
from vkc.invoke.triton.recipes import _attn
from vkc.invoke.triton.recipes.base import ATTENTION_HELPERS, round_down, triton_recipe

KERNELS = ("vllm.v1.attention.ops.triton_unified_attention:kernel_unified_attention",)
WORKLOADS = ("decode", "prefill")
DEFAULT_WORKLOAD = "decode"

MIN_LAUNCH_GRID_SIZE_2D = 128
NUM_PAR_SOFTMAX_SEGMENTS = 16
PREFILL_LEN = 2048


def shapes(model: dict, workload: str, budget_bytes: int, small: bool) -> dict:
    d = _attn.dims(model, small)
    it = _attn.itemsize(d["dtype"])
    bs = _attn.BLOCK_SIZE
    threshold = max(1, MIN_LAUNCH_GRID_SIZE_2D // d["H_kv"])
    kv_tok = 2 * d["H_kv"] * d["D"] * it
    if workload == "decode":
        batch = 2 if small else threshold
        q_len = 1
        if small:
            ctx = 3 * bs + 5
        else:
            ctx = _attn.fit_context(budget_bytes, batch, kv_tok, d["max_ctx"])
    else:
        q_len = 24 if small else min(PREFILL_LEN, round_down(d["max_ctx"], bs))
        per_seq = q_len * (kv_tok + 2 * d["H_q"] * d["D"] * it)
        batch = 2 if small else max(1, budget_bytes // per_seq)
        ctx = q_len
    blocks_per_seq = -(-ctx // bs)
    return dict(d, workload=workload, batch=batch, q_len=q_len, ctx=ctx, block_size=bs,
                num_blocks=batch * blocks_per_seq, blocks_per_seq=blocks_per_seq,
                seq_threshold_3D=threshold, num_segments=NUM_PAR_SOFTMAX_SEGMENTS,
                segm_rows=threshold)


def call(get, shp: dict, T) -> None:
    mod = get("vllm.v1.attention.ops.triton_unified_attention")
    B, ql, ctx, D = shp["batch"], shp["q_len"], shp["ctx"], shp["D"]
    hq, hkv, bs, dt = shp["H_q"], shp["H_kv"], shp["block_size"], shp["dtype"]
    tokens = B * ql
    q = T.tensor("query", [tokens, hq, D], dt, "randn")
    out = T.tensor("output", [tokens, hq, D], dt, "empty")
    kv_cache = T.tensor("kv_cache", [shp["num_blocks"], bs, hkv, 2 * D], dt, "randn")
    key_cache, value_cache = kv_cache.split(D, dim=-1)
    block_table = T.tensor("block_table", [B, shp["blocks_per_seq"]], "int32", ("block_table", shp["num_blocks"]))
    cu_seqlens_q = T.tensor("query_start_loc", [B + 1], "int32", ("arange", 0, ql))
    seqused_k = T.tensor("seq_lens", [B], "int32", ("const", ctx))
    k_scale = T.tensor("k_scale", [1], "float32", ("const", 1.0))
    v_scale = T.tensor("v_scale", [1], "float32", ("const", 1.0))
    rows, nseg = shp["segm_rows"], shp["num_segments"]
    hpad = 1 << (D - 1).bit_length()
    segm_out = T.tensor("softmax_segm_output", [rows, hq, nseg, hpad], "float32", "scratch")
    segm_max = T.tensor("softmax_segm_max", [rows, hq, nseg], "float32", "scratch")
    segm_expsum = T.tensor("softmax_segm_expsum", [rows, hq, nseg], "float32", "scratch")
    sinks = T.tensor("sinks", [hq], "float32", "randn") if shp["sinks"] else None
    sw = shp["sliding_window"]
    window = (sw - 1, 0) if sw else (-1, -1)
    mod.unified_attention(
        q=q, k=key_cache, v=value_cache, out=out,
        cu_seqlens_q=cu_seqlens_q, max_seqlen_q=ql, seqused_k=seqused_k, max_seqlen_k=ctx,
        softmax_scale=D ** -0.5, causal=True, window_size=window, block_table=block_table,
        softcap=0.0, q_descale=None,
        k_descale=k_scale.expand(B, hkv), v_descale=v_scale.expand(B, hkv),
        seq_threshold_3D=shp["seq_threshold_3D"], num_par_softmax_segments=nseg,
        softmax_segm_output=segm_out, softmax_segm_max=segm_max, softmax_segm_expsum=segm_expsum,
        sinks=sinks,
    )


def flops_bytes(shp: dict, launch: dict):
    """Attention FLOPs (causal, window-limited) and bytes of Q/O + the KV actually read."""
    B, ql, ctx, D = shp["batch"], shp["q_len"], shp["ctx"], shp["D"]
    it = _attn.itemsize(shp["dtype"])
    span = min(ctx, shp["sliding_window"]) if shp["sliding_window"] else ctx
    if ql == 1:
        pairs = B * span
    else:   # causal prefill without a prefix: query i sees min(i + 1, span) keys
        pairs = B * (span * (span + 1) // 2 + max(ql - span, 0) * span) if span < ql else B * ql * (ql + 1) // 2
    flops = 4.0 * pairs * shp["H_q"] * D
    kv = B * (span if ql == 1 else ctx) * 2 * shp["H_kv"] * D * it
    return flops, float(2 * B * ql * shp["H_q"] * D * it + kv)


RECIPES = (
    triton_recipe(KERNELS, Family.ATTENTION, shapes, call,
                  workloads=WORKLOADS, default_workload=DEFAULT_WORKLOAD, needs=(Need.ATTENTION,),
                  flops_bytes=flops_bytes, helpers=ATTENTION_HELPERS),
)
