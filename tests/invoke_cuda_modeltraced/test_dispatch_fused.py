"""Dispatch rules of the fused activation / norm+RoPE ops (vkc.invoke.cuda.modeltraced.dispatch_fused).

Each case is a traced call built for one branch of the host function and the kernels vLLM's C++
launches for it on the H100 (SM 9.0); every name a rule answers must be one of the op's kernels in
the tree's op map, and every kernel of the op but the ones no call reaches must be reached by a case.
"""
from __future__ import annotations

import pytest
from dispatch_events import check_names, op_event, tensor

from vkc.invoke.cuda.modeltraced import launched_kernels
from vkc.modeltrace.records import TracedEvent

_t, _ev = tensor, op_event


def _masked(act: str, *, experts: int = 8, tokens: int = 64, d: int = 1024, gated: bool = True) -> TracedEvent:
    shape = (experts, tokens) if experts else (tokens,)
    return _ev("_C::masked_moe_activation", out=_t("bfloat16", (*shape, d)),
               input=_t("bfloat16", (*shape, 2 * d if gated else d)), valid_token_counts=_t("int32", (max(experts, 1),)),
               activation=act)


def _qk(tokens: int, hq: int, hk: int, head_dim: int, *, rotary: int | None = None, cache: str = "float32",
        **kw: object) -> TracedEvent:
    return _ev("_C::fused_qk_norm_rope", qkv=_t("bfloat16", (tokens, (hq + 2 * hk) * head_dim)), num_heads_q=hq,
               num_heads_k=hk, num_heads_v=hk, head_dim=head_dim, eps=1e-6, q_weight=_t("bfloat16", (head_dim,)),
               k_weight=_t("bfloat16", (head_dim,)), cos_sin_cache=_t(cache, (40960, rotary or head_dim)),
               is_neox=True, position_ids=_t("int64", (tokens,)), **kw)


def _v4q(tokens: int, padded: int, *, heads: int = 64, dtype: str = "bfloat16") -> TracedEvent:
    return _ev("_C::fused_deepseek_v4_qnorm_rope_kv_rope_quant_insert", q_in=_t(dtype, (tokens, heads, 512)),
               kv=_t(dtype, (tokens, 512)), k_cache=_t("uint8", (64, 256 * 584)), slot_mapping=_t("int64", (tokens,)),
               position_ids=_t("int64", (tokens,)), cos_sin_cache=_t("float32", (65536, 64)), q_head_padded=padded,
               eps=1e-6, cache_block_size=256)


def _v4kv(cache: str, width: int, *, tokens: int = 16, **kw: object) -> TracedEvent:
    return _ev("_C::fused_deepseek_v4_kv_rope_insert", kv=_t("bfloat16", (tokens, 512)),
               k_cache=_t(cache, (64, 256, width)), slot_mapping=_t("int64", (tokens,)),
               position_ids=_t("int64", (tokens,)), cos_sin_cache=_t("float32", (65536, 64)), cache_block_size=256, **kw)


def _minimax(q: int, kv: int, ranks: int, *, width: int | None = None) -> TracedEvent:
    return _ev("_C::minimax_allreduce_rms_qk", qkv=_t("bfloat16", (16, width or q + 2 * kv)),
               norm_weight_q=_t("bfloat16", (q,)), norm_weight_k=_t("bfloat16", (kv,)), workspace=_t("int64", (64,)),
               q_size=q, kv_size=kv, rank=0, nranks=ranks, eps=1e-6)


CASES: list[tuple[str, TracedEvent, set[str] | None]] = [
    ("masked-silu", _masked("silu"), {"masked_act_and_mul_kernel"}),
    ("masked-silu-flat", _masked("silu", experts=0), {"masked_act_and_mul_kernel"}),
    ("masked-gelu-tanh", _masked("gelu_tanh"), {"masked_act_and_mul_kernel"}),
    ("masked-swigluoai-uninterleave", _masked("swigluoai_uninterleave"), {"masked_act_and_mul_kernel"}),
    ("masked-situ", _masked("situ"), {"masked_situ_and_mul_kernel"}),
    ("masked-swigluoai", _masked("swigluoai"), {"masked_swigluoai_and_mul_kernel"}),
    ("masked-swiglustep", _masked("swiglustep"), {"masked_swiglustep_and_mul_kernel"}),
    ("masked-relu2-no-mul", _masked("relu2_no_mul", gated=False), {"masked_activation_kernel"}),
    ("masked-unknown", _masked("tanh"), set()),
    ("masked-no-tokens", _masked("silu", tokens=0), set()),
    # fused_qk_norm_rope on SM 9.0: 1 token-head per warp below 10240 (q+k) head-tokens (4096 at head_dim 256)
    ("qk-decode", _qk(32, 32, 8, 128), {"fusedQKNormRopeKernel"}),
    ("qk-prefill-4-per-warp", _qk(256, 32, 8, 128), {"fusedQKNormRopeKernelNTokenHeads"}),
    ("qk-prefill-8-per-warp", _qk(2048, 32, 8, 128), {"fusedQKNormRopeKernelNTokenHeads"}),
    ("qk-head256-2-per-warp", _qk(128, 32, 8, 256), {"fusedQKNormRopeKernelNTokenHeads"}),
    ("qk-head256-below-4096", _qk(100, 32, 8, 256), {"fusedQKNormRopeKernel"}),
    # rotary_dim 36 x 2 bytes (bf16 cache) is not a multiple of 16: the base kernel; x 4 bytes (fp32) is
    ("qk-partial-rotary-fallback", _qk(2048, 32, 8, 128, rotary=36, cache="bfloat16"), {"fusedQKNormRopeKernel"}),
    ("qk-partial-rotary-fp32-cache", _qk(2048, 32, 8, 128, rotary=36), {"fusedQKNormRopeKernelNTokenHeads"}),
    ("qk-bf16-cache", _qk(2048, 32, 8, 128, rotary=64, cache="bfloat16"), {"fusedQKNormRopeKernelNTokenHeads"}),
    ("qk-forced-1", _qk(2048, 32, 8, 128, forced_token_heads_per_warp=1), {"fusedQKNormRopeKernel"}),
    ("qk-forced-2", _qk(8, 32, 8, 128, forced_token_heads_per_warp=2), {"fusedQKNormRopeKernelNTokenHeads"}),
    ("qk-forced-3", _qk(8, 32, 8, 128, forced_token_heads_per_warp=3), set()),
    ("qk-head-dim-96", _qk(8, 32, 8, 96), set()),
    # DeepSeek-V4: the reduced grid from NUM_TOKEN_CUTOFF (1024) rows with Q heads to iterate
    ("v4-decode", _v4q(64, 64), {"fusedDeepseekV4QNormRopeKVRopeQuantInsertKernel"}),
    ("v4-1023-rows", _v4q(1023, 128, heads=128), {"fusedDeepseekV4QNormRopeKVRopeQuantInsertKernel"}),
    ("v4-prefill", _v4q(1024, 64, heads=64), {"fusedDeepseekV4QNormRopeKVRopeQuantInsertKernelReducedGrid"}),
    ("v4-kv-only-prefill", _v4q(4096, 0), {"fusedDeepseekV4QNormRopeKVRopeQuantInsertKernel"}),
    ("v4-padded-48", _v4q(64, 48, heads=40), set()),
    ("v4-padded-below-heads", _v4q(64, 32, heads=64), set()),
    ("v4-fp32-q", _v4q(64, 64, dtype="float32"), set()),
    ("v4kv-packed", _v4kv("uint8", 584), {"fusedDeepseekV4QNormRopeKVRopeQuantInsertKernel"}),
    ("v4kv-packed-mxfp8", _v4kv("uint8", 528, kv_mxfp8=True), {"fusedDeepseekV4QNormRopeKVRopeQuantInsertKernel"}),
    ("v4kv-packed-wrong-width", _v4kv("uint8", 528), set()),
    ("v4kv-fp8", _v4kv("float8_e4m3fn", 512, fp8_scale=_t("float32", (1,))), {"fusedDeepseekV4FullCacheKernel"}),
    ("v4kv-bf16", _v4kv("bfloat16", 512), {"fusedDeepseekV4FullCacheKernel"}),
    ("v4kv-no-slots", _v4kv("uint8", 584, tokens=0), set()),
    # MiniMax-M2's all-reduce + QK RMS norm: float4 kernel at its full 6144 / 1024 widths
    ("minimax-m2-tp8", _minimax(768, 128, 8), {"minimax_reduce_qk_rms_kernel_lamport_float4"}),
    ("minimax-m2-tp4", _minimax(1536, 256, 4), {"minimax_reduce_qk_rms_kernel_lamport_float4"}),
    ("minimax-other-widths", _minimax(1024, 128, 8), {"minimax_reduce_rms_kernel_lamport"}),
    ("minimax-3-ranks", _minimax(2048, 128, 3), set()),
    ("minimax-width-mismatch", _minimax(768, 128, 8, width=1000), set()),
]

# kernels the op map lists that the op never launches: masked_moe_activation's scan reaches
# swigluoai_and_mul (the unmasked op's launcher) by name; the KV-only insert never takes the
# reduced grid (zero Q heads)
NEVER = {("_C::masked_moe_activation", "swigluoai_and_mul_kernel"),
         ("_C::fused_deepseek_v4_kv_rope_insert", "fusedDeepseekV4QNormRopeKVRopeQuantInsertKernelReducedGrid")}


@pytest.mark.parametrize(("case", "ev", "want"), CASES, ids=[c[0] for c in CASES])
def test_rule(case, ev, want):
    got = launched_kernels(ev)
    assert (None if got is None else set(got)) == want


def test_every_answer_is_a_kernel_of_the_op_and_every_kernel_is_reached(vllm_tree):
    check_names(vllm_tree, CASES, NEVER)
