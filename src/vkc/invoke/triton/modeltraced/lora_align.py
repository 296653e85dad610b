"""Contents of ``_moe_C::moe_lora_align_block_size``'s outputs, the routing of vLLM's fused-MoE LoRA
kernels (a rule of :func:`vkc.invoke.triton.modeltraced.inits.init_for`)."""
from __future__ import annotations

from vkc.invoke.triton.plan import InitSpec
from vkc.invoke.triton.recipes.moe import align_block_size
from vkc.modeltrace.records import TensorArg, TracedEvent

from .initbase import MOE_LORA_ALIGN, Refused, RoutingFacts
from .initbase import padded as _padded

__all__ = ["moe_lora_align"]


def moe_lora_align(role: str | None, a: TensorArg, ev: TracedEvent, facts: RoutingFacts) -> InitSpec:
    """``moe_lora_align_block_size`` (csrc/moe/moe_align_sum_kernels.cu): per LoRA slot ``l``, row ``l``
    of ``sorted_token_ids`` (``max_num_tokens_padded`` wide), ``experts_ids`` (``max_num_m_blocks``) and
    ``num_tokens_post_pad[l]`` are moe_align_block_size over the tokens ``token_lora_mapping`` puts
    under ``l``.  A rule for a step whose tokens are all under one slot (vLLM's dummy-LoRA mapping with
    one LoRA, the mapping's known contents): that row the step's routing aligned, the other rows padding."""
    args = dict(ev.args)
    t = dict(ev.tensors())
    ids, mapping = t.get("topk_ids"), t.get("token_lora_mapping")
    dims = [getattr(args.get(n), "value", None) for n in ("num_experts", "block_size", "max_loras",
                                                          "max_num_tokens_padded", "max_num_m_blocks")]
    if ids is None or mapping is None or len(ids.shape) != 2 or not all(isinstance(d, int) for d in dims):
        raise Refused(f"{MOE_LORA_ALIGN}: cannot read topk_ids / token_lora_mapping / its sizes")
    E, bs, L, mpad, mblk = (int(d) for d in dims)   # type: ignore[arg-type]
    M, k = ids.shape
    known = facts.known.get(mapping.base)
    if known is None or len(mapping.shape) != 1 or mapping.stride[0] != 1:
        raise Refused(f"{MOE_LORA_ALIGN}: the token -> LoRA slot mapping's contents are unknown")
    slots = set(known.values()[mapping.offset:mapping.offset + M])
    lid = next(iter(slots)) if len(slots) == 1 else None
    if not isinstance(lid, int) or not 0 <= lid < L:
        raise Refused(f"{MOE_LORA_ALIGN}: tokens under LoRA slots {sorted(slots)} (a rule covers one slot of {L})")
    s, e, total = align_block_size(facts.route(M, E, k), bs, E)
    if len(s) > mpad or len(e) > mblk:
        raise Refused(f"{MOE_LORA_ALIGN}: the aligned routing ({len(s)} ids) exceeds max_num_tokens_padded {mpad}")
    if role == "sorted_token_ids":
        rows = [M * k] * (L * mpad)
        rows[lid * mpad:lid * mpad + len(s)] = s
        return _padded(rows, a, M * k)
    if role == "experts_ids":
        blocks = [-1] * (L * mblk)
        blocks[lid * mblk:lid * mblk + len(e)] = e
        return _padded(blocks, a, -1)
    if role == "num_tokens_post_pad":
        return _padded([total if i == lid else 0 for i in range(L)], a, 0)
    raise Refused(f"{MOE_LORA_ALIGN}: unknown output {role!r}")
