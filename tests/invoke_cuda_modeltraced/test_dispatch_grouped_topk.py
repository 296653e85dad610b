"""Which grouped-top-k kernel a router call launches (DeepSeek-V3: invokeNoAuxTc's multi-group branch)."""
from __future__ import annotations

from vkc.invoke.cuda.modeltraced import call_launches, launched_kernels
from vkc.modeltrace.records import ScalarArg, TensorArg, TracedEvent


def _call(experts: int, n_group: int, topk_group: int, topk: int) -> TracedEvent:
    scores = TensorArg("bfloat16", (64, experts), (experts, 1), 0, 2, "s1", 2 * 64 * experts, "event:3")
    return TracedEvent(index=4, kind="op", name="_moe_C::grouped_topk", layer=3, module="model.layers.3.mlp.gate",
                       args=(("scores", scores), ("n_group", ScalarArg(n_group)), ("topk_group", ScalarArg(topk_group)),
                             ("topk", ScalarArg(topk))))


def test_deepseek_v3_takes_the_small_expert_count_kernel():
    ev = _call(256, 8, 4, 8)
    assert launched_kernels(ev) == {"grouped_topk_fused_small_expert_count_kernel"}
    assert call_launches("csrc/moe/grouped_topk_kernels.cu:grouped_topk_fused_kernel", ev) is False


def test_too_many_experts_per_group_takes_the_general_kernel():
    assert launched_kernels(_call(512, 8, 4, 8)) == {"grouped_topk_fused_kernel"}


def test_one_group_takes_single_group_topk():
    # scoring_func left at the schema's default 0: the softmax-bias tiers, 384 experts in the 512 / 8 one
    assert launched_kernels(_call(384, 1, 1, 8)) == {"single_group_topk_block_kernel"}
