"""decode_attention_fwd (vllm/v1/attention/ops/triton_decode_attention.py), grouped path
(GQA with H_q > H_kv, and MLA as the Triton MLA backend calls it).

GQA: ``k_buffer/v_buffer [num_blocks, page, H_kv, D]`` (two buffers).
MLA (model has kv_lora_rank): one latent cache ``[num_blocks, page, kv_lora_rank + rope]``,
``k_buffer = cache.unsqueeze(2)``, ``v_buffer = k_buffer[..., :kv_lora_rank]``; q has
``kv_lora_rank + qk_rope_head_dim`` dims; ``num_kv_splits`` as TritonMLAImpl computes it
(``_compute_num_kv_splits(max_seq_len, sm_count=132)``).
decode: 64 single-token requests with the longest context fitting the budget.
Models with H_q == H_kv (MHA, no MLA) take the non-grouped kernel ``_fwd_kernel_stage1``; it has
its own record, which says "not this model" (exit 12) for every other model before tracing.
"""
from __future__ import annotations

from vkc.errors import NotApplicableError
from vkc.invoke.core.dims import Need
from vkc.invoke.core.family import Family
from vkc.invoke.triton.recipes import _attn
from vkc.invoke.triton.recipes.base import ATTENTION_HELPERS, triton_recipe

K_GROUPED = "vllm.v1.attention.ops.triton_decode_attention:_fwd_grouped_kernel_stage1"
K_STAGE2 = "vllm.v1.attention.ops.triton_decode_attention:_fwd_kernel_stage2"
K_NORMAL = "vllm.v1.attention.ops.triton_decode_attention:_fwd_kernel_stage1"
KERNELS = (K_GROUPED, K_STAGE2, K_NORMAL)
WORKLOADS = ("decode",)
DEFAULT_WORKLOAD = "decode"
DECODE_BATCH = 64
PAGE = 16
MIN_WORK_PER_SPLIT = 512          # fallbacks if TritonMLAImpl's helper cannot be imported
SPLIT_OCCUPANCY_MULTIPLIER = 2


def shapes(model: dict, workload: str, budget_bytes: int, small: bool) -> dict:
    d = _attn.dims(model, small)
    it = _attn.itemsize(d["dtype"])
    batch = 2 if small else DECODE_BATCH
    if d["mla"]:
        lk = d["kv_lora_rank"] + d["qk_rope_head_dim"]
        kv_tok = lk * it
        scale_dim = d["qk_nope_head_dim"] + d["qk_rope_head_dim"]
    else:
        lk = d["D"]
        kv_tok = 2 * d["H_kv"] * d["D"] * it
        scale_dim = d["D"]
    ctx = 40 if small else _attn.fit_context(budget_bytes, batch, kv_tok, d["max_ctx"], block=PAGE)
    dv = d["kv_lora_rank"] if d["mla"] else d["D"]
    # the fp32 split-KV scratch attn_logits [B, H_q, splits(ctx), Dv + 1] counts too
    while not small and ctx > PAGE and batch * ctx * kv_tok + batch * d["H_q"] * _splits(ctx) * (dv + 1) * 4 > budget_bytes:
        ctx = max(PAGE, (ctx * 9 // 10) // PAGE * PAGE)
    bps = -(-ctx // PAGE)
    return dict(d, workload=workload, batch=batch, ctx=ctx, page=PAGE, blocks_per_seq=bps,
                num_blocks=batch * bps, Lk=lk, sm_scale=scale_dim ** -0.5)


def _splits(ctx: int, sm_count: int = 132) -> int:
    """TritonMLAImpl's _compute_num_kv_splits (for sizing only; the trace calls the real one)."""
    ideal = 1 << max(0, (max(1, ctx // MIN_WORK_PER_SPLIT) - 1).bit_length())
    return min(ideal, sm_count * SPLIT_OCCUPANCY_MULTIPLIER)


def _num_kv_splits(get, max_seq_len: int) -> int:
    from vllm.platforms import current_platform

    try:
        m = get("vllm.v1.attention.backends.mla.triton_mla")
        return int(m._compute_num_kv_splits(max_seq_len, current_platform.num_compute_units()))
    except Exception:  # noqa: BLE001
        import triton

        ideal = triton.next_power_of_2(max(1, max_seq_len // MIN_WORK_PER_SPLIT))
        return min(ideal, current_platform.num_compute_units() * SPLIT_OCCUPANCY_MULTIPLIER)


def call(get, shp: dict, T) -> None:
    mod = get("vllm.v1.attention.ops.triton_decode_attention")
    B, ctx, hq, dt, nb, page = shp["batch"], shp["ctx"], shp["H_q"], shp["dtype"], shp["num_blocks"], shp["page"]
    splits = _num_kv_splits(get, ctx)
    block_table = T.tensor("block_table", [B, shp["blocks_per_seq"]], "int32", ("block_table", nb))
    seq_lens = T.tensor("seq_lens", [B], "int32", ("const", ctx))
    k_scale = T.tensor("k_scale", [], "float32", ("const", 1.0))
    if shp["mla"]:
        r = shp["kv_lora_rank"]
        q = T.tensor("q", [B, hq, shp["Lk"]], dt, "randn")
        cache = T.tensor("kv_c_and_k_pe_cache", [nb, page, shp["Lk"]], dt, "randn")
        k_buf = cache.unsqueeze(2)
        v_buf = k_buf[..., :r]
        dv = r
        v_scale = k_scale
    else:
        D, hkv = shp["D"], shp["H_kv"]
        q = T.tensor("q", [B, hq, D], dt, "randn")
        k_buf = T.tensor("k_buffer", [nb, page, hkv, D], dt, "randn")
        v_buf = T.tensor("v_buffer", [nb, page, hkv, D], dt, "randn")
        dv = D
        v_scale = T.tensor("v_scale", [], "float32", ("const", 1.0))
    o = T.tensor("o", [B, hq, dv], dt, "zeros")
    lse = T.tensor("lse", [B, hq], dt, "zeros")
    attn_logits = T.tensor("attn_logits", [B, hq, splits, dv + 1], "float32", "empty")
    mod.decode_attention_fwd(q, k_buf, v_buf, o, lse, block_table, seq_lens, attn_logits, splits,
                             shp["sm_scale"], page, k_scale=k_scale, v_scale=v_scale, is_mla=shp["mla"])


def flops_bytes(shp: dict, launch: dict):
    B, ctx = shp["batch"], shp["ctx"]
    it = _attn.itemsize(shp["dtype"])
    if shp["mla"]:
        kv = B * ctx * shp["Lk"] * it
        flops = 2.0 * B * ctx * shp["H_q"] * (shp["Lk"] + shp["kv_lora_rank"])
    else:
        kv = B * ctx * 2 * shp["H_kv"] * shp["D"] * it
        flops = 4.0 * B * ctx * shp["H_q"] * shp["D"]
    return flops, float(kv)


def shapes_mha(model: dict, workload: str, budget_bytes: int, small: bool) -> dict:
    """:func:`shapes` for the non-grouped kernel, which vLLM runs only for MHA without MLA."""
    d = _attn.dims(model, small)
    if d["mla"] or d["H_q"] != d["H_kv"]:
        what = "MLA" if d["mla"] else f"H_q={d['H_q']} != H_kv={d['H_kv']}"
        raise NotApplicableError(
            f"_fwd_kernel_stage1 is decode attention's non-grouped kernel, which vLLM runs only when "
            f"H_q == H_kv without MLA; model {model.get('model_id', '?')} has {what} "
            "(its decode runs _fwd_grouped_kernel_stage1)",
            hint="collect _fwd_grouped_kernel_stage1 for this model, or use a multi-head-attention model "
                 "(num_key_value_heads == num_attention_heads)")
    return shapes(model, workload, budget_bytes, small)


RECIPES = (
    triton_recipe((K_GROUPED, K_STAGE2), Family.ATTENTION, shapes, call,
                  workloads=WORKLOADS, default_workload=DEFAULT_WORKLOAD, needs=(Need.ATTENTION,),
                  flops_bytes=flops_bytes, helpers=ATTENTION_HELPERS),
    triton_recipe((K_NORMAL,), Family.ATTENTION, shapes_mha, call,
                  workloads=WORKLOADS, default_workload=DEFAULT_WORKLOAD, needs=(Need.ATTENTION,),
                  flops_bytes=flops_bytes, helpers=ATTENTION_HELPERS),
)
