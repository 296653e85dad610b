"""Which kernels a traced ``_moe_C::moe_lora_align_block_size`` call launches (the small-batch kernel for
fewer than 1024 top-k ids and at most 64 experts, else align + count-and-sort), on the real tree."""
from __future__ import annotations

from vkc.index import build_index
from vkc.invoke.cuda.modeltraced import launched_kernels, op_kernel_map
from vkc.modeltrace.records import ScalarArg, TensorArg, TracedEvent

_OP = "_moe_C::moe_lora_align_block_size"


def _call(tokens: int, topk: int, experts: int, *, block_size: int = 16) -> TracedEvent:
    ids = TensorArg("int32", (tokens, topk), (topk, 1), 0, 4, "s1", 4 * tokens * topk, "event:3")
    mapping = TensorArg("int32", (tokens,), (1,), 0, 4, "s2", 4 * tokens, "metadata:token_lora_mapping")
    return TracedEvent(index=4, kind="op", name=_OP, layer=1, module="model.layers.1.mlp.experts",
                       args=(("topk_ids", ids), ("token_lora_mapping", mapping), ("num_experts", ScalarArg(experts)),
                             ("block_size", ScalarArg(block_size)), ("max_loras", ScalarArg(4))))


def test_small_batch_few_experts_takes_the_small_batch_kernel():
    assert launched_kernels(_call(64, 8, 64)) == {"moe_lora_align_block_size_small_batch_expert_kernel"}


def test_1024_ids_or_more_than_64_experts_take_align_and_sort():
    both = {"moe_lora_align_block_size_kernel", "lora_count_and_sort_expert_tokens_kernel"}
    assert launched_kernels(_call(128, 8, 64)) == both          # 1024 ids: not < 1024
    assert launched_kernels(_call(16, 8, 128)) == both


def test_checks_that_fail_launch_nothing_and_unrecorded_is_unknown():
    assert launched_kernels(_call(16, 8, 1024)) == set()       # padded_num_experts must be < 1024
    assert launched_kernels(_call(16, 8, 64, block_size=0)) == set()
    ev = _call(16, 8, 64)
    unknown = TracedEvent(index=4, kind="op", name=_OP, layer=1, module=None, args=ev.args[:2])
    assert launched_kernels(unknown) is None


def test_every_kernel_of_the_op_is_answered(vllm_tree):
    kernels = {k.rsplit(":", 1)[-1] for k in op_kernel_map(build_index(vllm_tree))[_OP].kernels}
    answered = set(launched_kernels(_call(64, 8, 64)) or ()) | set(launched_kernels(_call(16, 8, 128)) or ())
    assert answered == kernels
