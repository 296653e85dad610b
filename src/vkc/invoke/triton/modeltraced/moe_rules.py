"""Fused-MoE routing contents (a rule of :func:`vkc.invoke.triton.modeltraced.inits.init_for`): what
``_moe_C::moe_align_block_size``, ``_moe_C::moe_lora_align_block_size`` and the top-k router ops leave, laid out
as :mod:`vkc.invoke.triton.recipes.moe` lays them (one seeded top-k routing), and the ``torch.full`` of
``num_tokens_post_padded`` on vLLM's naive-assignment path."""
from __future__ import annotations

from vkc.invoke.triton.plan import InitSpec
from vkc.invoke.triton.recipes.moe import align_block_size
from vkc.modeltrace.records import TensorArg, TracedEvent

from .initbase import MOE_LORA_ALIGN, Refused, RoutingFacts, padded
from .initbase import role_of as base_role_of
from .lora_align import moe_lora_align

__all__ = ["MOE_ALIGN", "RESULT_NAMES", "TOPK_OPS", "moe_contents", "naive_post_padded", "role_of", "topk_dims"]

MOE_ALIGN = "_moe_C::moe_align_block_size"
TOPK_OPS = ("_moe_C::topk_softmax", "_moe_C::topk_sigmoid", "_moe_C::grouped_topk")


# Ops whose results (not written arguments) are the routing: the schema names no result, so the
# names are the C++ function's return order (csrc/moe/grouped_topk_kernels.cu: grouped_topk returns
# {topk_values, topk_indices})
RESULT_NAMES = {"_moe_C::grouped_topk": ("topk_weights", "topk_ids")}


def _named_tensors(ev: TracedEvent) -> list[tuple[str, TensorArg]]:
    names = RESULT_NAMES.get(ev.name, ())
    return ev.tensors() + [(n, t) for n, t in zip(names, ev.outputs)]


def role_of(ev: TracedEvent, a: TensorArg) -> str | None:
    """Which argument (or named result) of the producing op the storage is (same base)."""
    return base_role_of(ev, a, RESULT_NAMES.get(ev.name, ()))


def topk_dims(ev: TracedEvent) -> tuple[int, int, int]:
    """(tokens M, experts E, top_k) of a top-k router op."""
    args = dict(_named_tensors(ev))
    ids = args.get("topk_indices") or args.get("topk_ids")
    gate = args.get("gating_output") or args.get("scores")
    if ids is None or gate is None or len(ids.shape) != 2:
        raise Refused(f"{ev.name}: cannot read the routing shape (topk ids / gating output)")
    return ids.shape[0], gate.shape[-1], ids.shape[1]


def moe_contents(a: TensorArg, ev: TracedEvent, facts: RoutingFacts) -> InitSpec | None:
    """The routing tables a fused-MoE op left in ``a``'s storage (one seeded routing, so the sorted ids,
    expert ids and top-k ids agree), or None for another op."""
    role = role_of(ev, a)
    if ev.name == MOE_ALIGN:
        args = dict(ev.args)
        ids = dict(ev.tensors()).get("topk_ids")
        E = getattr(args.get("num_experts"), "value", None)
        bs = getattr(args.get("block_size"), "value", None)
        if ids is None or not isinstance(E, int) or not isinstance(bs, int) or len(ids.shape) != 2:
            raise Refused(f"{MOE_ALIGN}: cannot read topk_ids / num_experts / block_size")
        M, k = ids.shape
        s, e, total = align_block_size(facts.route(M, E, k), bs, E)
        if role == "sorted_token_ids":
            return padded(s, a, M * k)
        if role == "experts_ids":
            return padded(e, a, -1)
        if role == "num_tokens_post_pad":
            return padded([total], a, 0)
        raise Refused(f"{MOE_ALIGN}: unknown output {role!r}")
    if ev.name == MOE_LORA_ALIGN:
        return moe_lora_align(role, a, ev, facts)
    if ev.name in TOPK_OPS:
        M, E, k = topk_dims(ev)
        if role in ("topk_indices", "topk_ids"):
            return padded([x for row in facts.route(M, E, k) for x in row], a, 0)
        if role == "topk_weights":
            return InitSpec("const", (round(1.0 / k, 8),))
        if role == "token_expert_indices":
            return padded(list(range(M * k)), a, 0)
        raise Refused(f"{ev.name}: unknown output {role!r}")
    return None


def naive_post_padded(param: str, launch: TracedEvent) -> InitSpec | None:
    """vLLM's naive block assignment (``sorted_token_ids is None``): ``torch.full((1,),
    topk_ids.numel() * BLOCK_SIZE_M)`` (fused_moe.py, ``_prepare_expert_assignment``), i.e. EM."""
    args = dict(launch.args)
    if param != "num_tokens_post_padded_ptr" or not launch.constexprs.get("naive_block_assignment"):
        return None
    em = getattr(args.get("EM"), "value", None)
    return InitSpec("values", ([int(em)],)) if isinstance(em, int) else None
