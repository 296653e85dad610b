"""What Qwen4-Exp's QSA metadata kernel leaves: ``vllm/models/qwen4_exp/common/qsa_cache.py:
_build_qsa_metadata_kernel`` (launched by ``build_qsa_metadata_triton`` over the step's
``query_start_loc``/``seq_lens``/``slot_mapping`` and the QSA cache group's block table).

Per token ``t < num_tokens`` of request ``r`` (the last query start at or before ``t``; ``mapped`` is
``t < num_mapped_tokens``), with ``lp = seq_len - query_len + t - query_start``:

* ``token_to_req_ptr``: ``r`` (0 where unmapped);
* ``logical_positions_ptr``: ``lp`` (-1 where unmapped);
* ``visible_blocks_ptr``: ``max(0, min((lp + 1) // compress_ratio, seq_len // compress_ratio))``;
* ``slot_mapping_ptr``: with ``circular_buffer_size > 0`` the request's ring ``physical_block *
  circular_buffer_size + lp % circular_buffer_size`` for its last ``circular_buffer_size`` tokens, else
  -1; with ``compress_ratio != 1`` ``physical_block * storage_block_size + (lp // compress_ratio) %
  storage_block_size`` where ``(lp + 1) % compress_ratio == 0`` and the logical block is inside the
  table, else -1.  ``physical_block`` is the block table's entry, a block id the KV-cache manager
  handed out (runtime contents): here block ``1 + (r * columns + logical_block) % (num_blocks - 1)``,
  inside the cache and never the null block 0 (vLLM's ``physical_block > 0`` test), distinct per
  request and logical block while they fit;
* ``k_work_metadata_ptr`` (rows of 2): work item ``w < total_work`` is ``(request, w - request's first
  item)``, each request with queries owning ``max(seq_len // cr - (seq_len - query_len) // cr, 1)``
  items, then ``(-1, -1)`` up to ``max_num_work``.

Buffer entries past ``num_tokens`` are left as found: 0 here.
"""
from __future__ import annotations

from vkc.invoke.triton.plan import InitSpec
from vkc.modeltrace.records import TensorArg, TracedEvent

from .initbase import Refused, StepView, int_scalars, lengths, padded
from .produced_slots import BlockIds

__all__ = ["qsa_metadata_contents"]

KERNEL = "vllm.models.qwen4_exp.common.qsa_cache:_build_qsa_metadata_kernel"
OUTPUTS = ("token_to_req_ptr", "logical_positions_ptr", "visible_blocks_ptr", "slot_mapping_ptr",
           "k_work_metadata_ptr")


def _tokens(facts: StepView, sc: dict[str, int]) -> list[tuple[int, int, int, int]]:
    """(request, lp, seq_len, query_end) of each token below num_tokens; request -1 where unmapped."""
    q, ctx = lengths(facts.spec)
    rows: list[tuple[int, int, int, int]] = []
    start = 0
    for r, (n, c) in enumerate(zip(q, ctx)):
        rows += [(r, c - n + i, c, start + n) for i in range(n)]
        start += n
    mapped = min(sc["num_mapped_tokens"], len(rows))
    return rows[:mapped] + [(-1, -1, 0, 0)] * max(0, sc["num_tokens"] - mapped)


def _slot(r: int, lp: int, t: int, qend: int, sc: dict[str, int], block: BlockIds) -> int:
    cbs, cr, sbs = sc.get("circular_buffer_size", 0), sc["compress_ratio"], sc["storage_block_size"]
    cols = sc["num_block_table_columns"]
    if r < 0 or lp < 0 or cols <= 0:
        return -1
    if cbs > 0:
        if t + cbs < qend:
            return -1
        return block(r, 0) * cbs + lp % cbs
    pos = lp // cr
    if (lp + 1) % cr or pos // sbs >= cols:
        return -1
    return block(r, pos // sbs) * sbs + pos % sbs


def _work(facts: StepView, sc: dict[str, int]) -> list[int]:
    q, ctx = lengths(facts.spec)
    cr, cap = sc["compress_ratio"], sc["max_num_work"]
    items = [(r, w) for r, (n, c) in enumerate(zip(q, ctx)) if n > 0
             for w in range(max(c // cr - (c - n) // cr, 1))]
    items = items[:cap] + [(-1, -1)] * max(0, cap - len(items))
    return [x for pair in items for x in pair]


def qsa_metadata_contents(a: TensorArg, ev: TracedEvent, param: str | None, facts: StepView) -> InitSpec | None:
    """What ``_build_qsa_metadata_kernel`` (``ev``) leaves in its output ``param``, or None."""
    if ev.name != KERNEL or param not in OUTPUTS:
        return None
    sc = int_scalars(ev)
    a = dict(ev.tensors()).get(param, a)
    try:
        if param == "k_work_metadata_ptr":
            return padded(_work(facts, sc), a, 0)
        toks = _tokens(facts, sc)
        if param == "token_to_req_ptr":
            return padded([max(r, 0) for r, _lp, _c, _e in toks], a, 0)
        if param == "logical_positions_ptr":
            return padded([lp for _r, lp, _c, _e in toks], a, 0)
        if param == "visible_blocks_ptr":
            cr = sc["compress_ratio"]
            return padded([max(0, min((lp + 1) // cr, c // cr)) for _r, lp, c, _e in toks], a, 0)
        if sc.get("circular_buffer_size", 0) <= 0 and sc["compress_ratio"] == 1:
            return None          # the kernel does not store slots: the caller uses the common slot mapping
        block = BlockIds(facts.num_blocks)
        return padded([_slot(r, lp, t, e, sc, block) for t, (r, lp, _c, e) in enumerate(toks)], a, 0)
    except KeyError as e:
        raise Refused(f"_build_qsa_metadata_kernel: the launch lacks the scalar {e.args[0]}") from None
