"""Dispatch rules of the top-k ops (vkc.invoke.cuda.modeltraced.dispatch_topk) on the real tree.

Each case is a traced call built for one branch of the host function and the kernels vLLM's C++
launches for it on the H100 (SM 9.0, 132 SMs, 227 KiB opt-in shared memory); every name a rule
answers must be one of the op's kernels in the tree's op map, and every kernel of the op but the
ones the H100 never takes must be reached by some case.
"""
from __future__ import annotations

import pytest
from dispatch_events import check_names, op_event, tensor

from vkc.invoke.cuda.modeltraced import launched_kernels
from vkc.modeltrace.records import ScalarArg, TracedEvent

_t, _ev = tensor, op_event


def _indexer(op: str, rows: int, *, k: int = 2048, max_seq_len: int = 131072, stride: int | None = None,
             offset: int = 0, dtype: str = "float32") -> TracedEvent:
    s = stride or max_seq_len
    return _ev(op, logits=_t(dtype, (rows, s), stride=(s, 1), offset=offset), lengths=_t("int32", (rows,)),
               output=_t("int32", (rows, k)), workspace=_t("uint8", (1 << 20,)), k=k, max_seq_len=max_seq_len)


def _persistent(rows: int, **kw: object) -> TracedEvent:
    return _indexer("_C::persistent_topk", rows, **kw)  # type: ignore[arg-type]


def _coop(rows: int, **kw: object) -> TracedEvent:
    return _indexer("_C::cooperative_topk", rows, **kw)  # type: ignore[arg-type]


def _softplus(experts: int, topk: int, *, rows: int = 32, dtype: str = "float32", renormalize: bool = True,
              hashed: bool | None = True) -> TracedEvent:
    hash_args: dict[str, object] = {}
    if hashed is not None:
        hash_args = ({"input_ids": _t("int64", (rows,)), "tid2eid": _t("int64", (129280, topk))} if hashed
                     else {"input_ids": ScalarArg(None), "tid2eid": ScalarArg(None)})
    return _ev("_moe_C::topk_softplus_sqrt", topk_weights=_t("float32", (rows, topk)),
               topk_indices=_t("int32", (rows, topk)), token_expert_indices=_t("int32", (rows, topk)),
               gating_output=_t(dtype, (rows, experts)), renormalize=renormalize, routed_scaling_factor=1.5,
               bias=ScalarArg(None), **hash_args, is_padding=ScalarArg(None))


def _sigmoid(experts: int, *, rows: int = 32, dtype: str = "bfloat16") -> TracedEvent:
    return _ev("_moe_C::topk_sigmoid", topk_weights=_t("float32", (rows, 8)), topk_indices=_t("int32", (rows, 8)),
               token_expert_indices=_t("int32", (rows, 8)), gating_output=_t(dtype, (rows, experts)),
               renormalize=True, bias=ScalarArg(None), routed_scaling_factor=1.0, is_padding=ScalarArg(None))


def _grouped(experts: int, topk: int, *, rows: int = 64, n_group: int = 1, topk_group: int = 1,
             scoring_func: int = 1) -> TracedEvent:
    return _ev("_moe_C::grouped_topk", scores=_t("bfloat16", (rows, experts)), n_group=n_group,
               topk_group=topk_group, topk=topk, renormalize=True, routed_scaling_factor=1.0,
               bias=_t("float32", (experts,)), scoring_func=scoring_func)


CASES: list[tuple[str, TracedEvent, set[str] | None]] = [
    # grouped_topk: single_group_topk's tiers, block kernel at >= 256 experts and <= 1024 tokens
    ("grouped-kimi-k2-decode", _grouped(384, 8), {"single_group_topk_block_kernel"}),
    ("grouped-256-prefill", _grouped(256, 8, rows=8192), {"single_group_topk_warp_kernel"}),
    ("grouped-128-decode", _grouped(128, 8), {"single_group_topk_warp_kernel"}),
    ("grouped-tuned-896", _grouped(896, 16, rows=8192), {"single_group_topk_block_kernel"}),
    ("grouped-softmax-160", _grouped(160, 8, scoring_func=0), {"single_group_topk_warp_kernel"}),
    ("grouped-sigmoid-160-top22", _grouped(160, 22, rows=8192), {"single_group_topk_warp_kernel"}),
    ("grouped-top12-tier-512-22", _grouped(128, 12), {"single_group_topk_warp_kernel"}),
    ("grouped-top24-no-tier", _grouped(128, 24), {"grouped_topk_fused_kernel"}),
    ("grouped-deepseek-v3", _grouped(256, 8, n_group=8, topk_group=4), {"grouped_topk_fused_small_expert_count_kernel"}),
    ("grouped-64-groups", _grouped(1024, 8, n_group=32, topk_group=4), {"grouped_topk_fused_kernel"}),
    ("grouped-bad-scoring", _grouped(256, 8, scoring_func=2), set()),

    # persistent_topk: sampled for > 64 rows of long rows, FilteredTopK for > 32 rows, else persistent
    ("sampled", _persistent(128), {"sampled_topk_kernel"}),
    ("sampled-k512-needs-98304", _persistent(128, k=512, max_seq_len=98304), {"sampled_topk_kernel"}),
    ("filtered-k512-short", _persistent(128, k=512, max_seq_len=65536), {"FilteredTopKUnifiedKernel"}),
    ("filtered-many-rows-short", _persistent(65, max_seq_len=32768), {"FilteredTopKUnifiedKernel"}),
    ("filtered-33-rows", _persistent(33), {"FilteredTopKUnifiedKernel"}),
    ("persistent-32-rows", _persistent(32), {"persistent_topk_kernel"}),
    ("persistent-decode", _persistent(4), {"persistent_topk_kernel"}),
    ("persistent-unaligned", _persistent(2, offset=1), {"persistent_topk_kernel"}),
    # a row of 4M logits over 2 rows: 496 CTAs of 8472 elements > 2 x 132 resident: FilteredTopK fallback
    ("fallback-filtered", _persistent(2, max_seq_len=4194304), {"FilteredTopKUnifiedKernel"}),
    # 177 CTAs: resident or not by the occupancy query (1 or 2 blocks per SM)
    ("occupancy-unknown", _persistent(2, max_seq_len=1500000), None),
    # no radix pass (max_seq_len <= 32768): the barrier is never waited on, no fallback
    ("short-rows-wide-stride", _persistent(2, max_seq_len=32768, stride=4194304), {"persistent_topk_kernel"}),
    ("persistent-bad-k", _persistent(4, k=256), set()),
    ("persistent-bf16", _persistent(4, dtype="bfloat16"), set()),
    ("persistent-no-max-seq-len", _ev("_C::persistent_topk", logits=_t("float32", (4, 1024)), k=2048), None),
    # cooperative_topk on SM 9.0: no 16-CTA clusters
    ("coop-4-rows", _coop(4), {"cooperative_topk_cs8"}),
    ("coop-8-rows", _coop(8), {"cooperative_topk_cs8"}),
    ("coop-9-rows", _coop(9), {"cooperative_topk_cs4"}),
    ("coop-33-rows", _coop(33), {"cooperative_topk_cs4"}),
    ("coop-34-rows", _coop(34), {"cooperative_topk_cs2"}),
    ("coop-64-rows", _coop(64, k=512), {"cooperative_topk_cs2"}),
    ("coop-65-rows", _coop(65), set()),
    ("coop-odd-stride", _coop(8, max_seq_len=4097), set()),
    # topk_softplus_sqrt: DeepSeek-V4's hash layers (fp32 gate, top-6, renormalize, 256/384 experts)
    ("dsv4-hash-256", _softplus(256, 6), {"dsv4HashTopkSoftplusSqrt"}),
    ("dsv4-hash-384", _softplus(384, 6), {"dsv4HashTopkSoftplusSqrt"}),
    ("dsv4-hash-no-rows", _softplus(256, 6, rows=0), set()),
    ("hash-bf16-gate", _softplus(256, 6, dtype="bfloat16"), {"topkGatingSoftplusSqrt"}),
    ("hash-top8", _softplus(256, 8), {"topkGatingSoftplusSqrt"}),
    ("hash-no-renormalize", _softplus(256, 6, renormalize=False), {"topkGatingSoftplusSqrt"}),
    ("no-hash", _softplus(256, 6, hashed=False), {"topkGatingSoftplusSqrt"}),
    ("no-hash-448", _softplus(448, 6, hashed=False), {"topkGatingSoftplusSqrt"}),
    ("experts-not-in-switch", _softplus(100, 6, hashed=False), set()),
    ("tid2eid-not-recorded", _softplus(256, 6, hashed=None), None),     # ``Tensor? tid2eid``: no default
    # topk_sigmoid: the fused kernel for the switch's expert counts (352 for sigmoid only)
    ("sigmoid-256", _sigmoid(256), {"topkGating"}),
    ("sigmoid-352", _sigmoid(352), {"topkGating"}),
    ("sigmoid-576", _sigmoid(576), {"topkGating"}),
    ("sigmoid-160", _sigmoid(160), {"moeSigmoid", "moeTopK"}),
    ("sigmoid-fp8-gate", _sigmoid(256, dtype="float8_e4m3fn"), set()),
]

# kernels the op map lists that no call launches on the H100: 16-CTA clusters need SM 10.0+,
# top_k_per_row_decode is persistent_topk's fallback below 128 KiB of shared memory; topk_sigmoid
# shares topk_softmax's launcher, whose softmax fallback it never takes
H100_NEVER = {("_C::cooperative_topk", "cooperative_topk_cs16"), ("_C::persistent_topk", "topKPerRowDecode"),
              ("_moe_C::topk_sigmoid", "moeSoftmax")}


@pytest.mark.parametrize(("case", "ev", "want"), CASES, ids=[c[0] for c in CASES])
def test_rule(case, ev, want):
    got = launched_kernels(ev)
    assert (None if got is None else set(got)) == want


def test_every_answer_is_a_kernel_of_the_op_and_every_kernel_is_reached(vllm_tree):
    check_names(vllm_tree, CASES, H100_NEVER)
