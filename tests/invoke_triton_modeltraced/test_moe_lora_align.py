"""Contents of ``_moe_C::moe_lora_align_block_size``'s outputs (the fused-MoE LoRA kernels' routing):
per LoRA slot a row of the plain alignment over the tokens under that slot; a rule for the step
whose tokens are all under one slot (the dummy-LoRA mapping with one LoRA), else a refusal."""
from __future__ import annotations

import pytest

from vkc.invoke.triton.modeltraced.inits import Refused, StepFacts, init_for
from vkc.invoke.triton.plan import InitSpec
from vkc.invoke.triton.recipes.moe import ROUTING_SEED, align_block_size, routing
from vkc.modeltrace.contents import Contents
from vkc.modeltrace.records import ScalarArg, StepSpec, StepTrace, TensorArg, TracedEvent

ALIGN = "_moe_C::moe_lora_align_block_size"
SPEC = StepSpec("decode", 4, 1024)


def _i32(base: str, shape: tuple[int, ...], producer: str) -> TensorArg:
    n = 1
    for d in shape:
        n *= d
    stride = (shape[1], 1) if len(shape) == 2 else (1,)
    return TensorArg("int32", shape, stride, 0, 4, base, 4 * n, producer)


def _align_event(M: int, k: int, E: int, L: int) -> tuple[TracedEvent, dict[str, TensorArg]]:
    s, e, _ = align_block_size(routing(M, E, k, ROUTING_SEED), 16, E)
    mpad, mblk = len(s), len(e)
    ts = {"topk_ids": _i32("ids", (M, k), "event:0"), "token_lora_mapping": _i32("map", (M,), "lora_meta:m"),
          "sorted_token_ids": _i32("sorted", (L * mpad,), "event:1"),
          "experts_ids": _i32("experts", (L * mblk,), "event:1"),
          "num_tokens_post_pad": _i32("npad", (L,), "event:1")}
    scalars = {"num_experts": E, "block_size": 16, "max_loras": L, "max_num_tokens_padded": mpad,
               "max_num_m_blocks": mblk}
    args = tuple(ts.items()) + tuple((n, ScalarArg(v)) for n, v in scalars.items())
    return TracedEvent(1, "op", ALIGN, None, None, args), ts


def _facts(ev: TracedEvent, launch: TracedEvent, mapping: list[int]) -> StepFacts:
    return StepFacts(StepTrace(SPEC, 256, (ev, launch), 0.0), 1024, 16, known={"map": Contents.of(mapping)})


def _launch(ts: dict[str, TensorArg]) -> TracedEvent:
    return TracedEvent(2, "triton", "m:_fused_moe_lora_kernel", None, None,
                       (("sorted_token_ids_ptr", ts["sorted_token_ids"]),), grid=(1,))


def test_the_row_of_the_one_slot_every_token_is_under_is_the_aligned_routing():
    ev, ts = _align_event(4, 2, 8, 2)
    launch = _launch(ts)
    facts = _facts(ev, launch, [1, 1, 1, 1])
    s, e, total = align_block_size(routing(4, 8, 2, ROUTING_SEED), 16, 8)
    got = init_for("sorted_token_ids_ptr", ts["sorted_token_ids"], launch, facts)
    assert got == InitSpec("values", ([8] * len(s) + s,))               # slot 0's row: padding
    assert init_for("expert_ids_ptr", ts["experts_ids"], launch, facts) == InitSpec("values", ([-1] * len(e) + e,))
    assert init_for("num_tokens_post_padded_ptr", ts["num_tokens_post_pad"], launch, facts) == \
        InitSpec("values", ([0, total],))


def test_tokens_under_several_slots_are_refused():
    ev, ts = _align_event(4, 2, 8, 2)
    launch = _launch(ts)
    with pytest.raises(Refused, match=r"LoRA slots \[0, 1\]"):
        init_for("sorted_token_ids_ptr", ts["sorted_token_ids"], launch, _facts(ev, launch, [0, 1, 0, 1]))


def test_an_unknown_mapping_is_refused():
    ev, ts = _align_event(4, 2, 8, 1)
    launch = _launch(ts)
    facts = StepFacts(StepTrace(SPEC, 256, (ev, launch), 0.0), 1024, 16)
    with pytest.raises(Refused, match="mapping's contents are unknown"):
        init_for("sorted_token_ids_ptr", ts["sorted_token_ids"], launch, facts)
