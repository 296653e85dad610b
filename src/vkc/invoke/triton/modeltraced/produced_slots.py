"""Slot mappings vLLM's metadata kernels compute from a block table: ``block * block_size + offset``.

The offsets and the PAD (-1) entries follow from the step's positions; the block is the request's
block-table entry, a block id the KV-cache manager handed out (runtime contents, and the generated
example fills its own table at random): :class:`BlockIds` picks one inside the cache and never the null
block 0, distinct per (request, logical block) while they fit.  Rules:

* ``vllm/v1/attention/backends/mla/compressor_utils.py: CompressedSlotMappingKernel.kernel``
  ``compressed_slot_mapping_ptr``: token at position ``pos`` of request ``r`` is valid where ``(pos + 1)
  % COMPRESS_RATIO == 0`` and its own slot is not ``PAD_ID`` (vkc's slot mappings never are); then
  ``p = pos // COMPRESS_RATIO`` (``dcp_world_size`` 1: ``local_pos == pos``) and the slot
  ``block_table[r, p // block_size] * block_size + p % block_size``, else ``PAD_ID``;
* ``vllm/v1/attention/backends/mla/indexer.py: _kpool_tail_slot_mapping_kernel`` ``out_ptr``: every
  token of request ``r`` maps into the request's one circular tail block, ``own_block * kpool + pos %
  kpool`` (``own_block = block_table[r, 0]``, never the null block for a scheduled request); tokens past
  ``num_actual_tokens`` copy ``slot_mapping`` (refused: the steps here have none).
"""
from __future__ import annotations

from vkc.invoke.triton.plan import InitSpec
from vkc.modeltrace.records import TensorArg, TracedEvent

from .initbase import Refused, StepView, int_scalars, lengths, padded

__all__ = ["BlockIds", "slot_mapping_contents"]

COMPRESSED = "vllm.v1.attention.backends.mla.compressor_utils:CompressedSlotMappingKernel.kernel"
KPOOL_TAIL = "vllm.v1.attention.backends.mla.indexer:_kpool_tail_slot_mapping_kernel"


class BlockIds:
    """Block ids for (request, logical block) pairs: in ``[1, num_blocks)``, the next unused one per new
    pair (so distinct while ``num_blocks - 1`` allow, then reused in turn), the same one for a pair again."""

    def __init__(self, num_blocks: int) -> None:
        self.span = max(1, num_blocks - 1)
        self.ids: dict[tuple[int, int], int] = {}

    def __call__(self, req: int, logical: int) -> int:
        return self.ids.setdefault((req, logical), 1 + len(self.ids) % self.span)


def _compressed(ev: TracedEvent, facts: StepView) -> list[int]:
    sc = int_scalars(ev)
    if sc.get("dcp_world_size", 1) != 1:
        raise Refused("CompressedSlotMappingKernel under decode context parallelism (dcp_world_size > 1)")
    cr, bs, pad = sc["COMPRESS_RATIO"], sc["block_size"], sc.get("PAD_ID", -1)
    block = BlockIds(facts.num_blocks)
    q, ctx = lengths(facts.spec)
    out = []
    for r, (n, c) in enumerate(zip(q, ctx)):
        for pos in range(c - n, c):
            p = pos // cr
            ok = (pos + 1) % cr == 0
            out.append(block(r, p // bs) * bs + p % bs if ok else pad)
    return out


def _kpool_tail(ev: TracedEvent, facts: StepView) -> list[int]:
    sc = int_scalars(ev)
    if sc["num_tokens"] > sc["num_actual_tokens"]:
        raise Refused("_kpool_tail_slot_mapping_kernel pads tokens past num_actual_tokens with slot_mapping")
    kpool = sc["kpool"]
    q, ctx = lengths(facts.spec)
    block = BlockIds(facts.num_blocks)
    return [block(r, 0) * kpool + pos % kpool
            for r, (n, c) in enumerate(zip(q, ctx)) for pos in range(c - n, c)][:sc["num_actual_tokens"]]


def slot_mapping_contents(a: TensorArg, ev: TracedEvent, param: str | None, facts: StepView) -> InitSpec | None:
    """The slots a metadata kernel ``ev`` leaves in its output ``param``, or None."""
    rule = {(COMPRESSED, "compressed_slot_mapping_ptr"): _compressed, (KPOOL_TAIL, "out_ptr"): _kpool_tail}.get(
        (ev.name, param or ""))
    if rule is None:
        return None
    a = dict(ev.tensors()).get(param or "", a)
    try:
        return padded(rule(ev, facts), a, 0)
    except KeyError as e:
        raise Refused(f"{ev.name.rsplit(':', 1)[-1]}: the launch lacks the scalar {e.args[0]}") from None
