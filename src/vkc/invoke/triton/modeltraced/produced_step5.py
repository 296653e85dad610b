"""Step5's sparse-indexer metadata: what its metadata kernels leave for the sparse attention that reads it.

Each row (a query token, or a (token, KV group) pair) gets its *current region* ``position >> 3`` (a region is
8 tokens) and, where the step selects every region (short contexts need no scores), the region list
``_emit_all_regions`` writes: ``K + 1`` entries, left-padded with -1, then ``0 .. current`` (``col - (K -
current)`` where that is ``>= 0``).  Rules, cited (``vllm/models/step5/nvidia/ops/``):

* ``sparse_indexer_scores.py: _direct_scores`` (decode) -- row ``r`` is token ``r // ROW_GROUPS`` of request
  ``token // QUERY_LEN``; ``active = slot >= 0`` (vkc's slot mappings have no -1), ``position = seq_len -
  (QUERY_LEN - 1 - token % QUERY_LEN) - 1``; it stores ``Active``, ``Positions``, ``Current = position >> 3``,
  ``Lengths = current + 1``, ``TopKLengths = current`` (``if worker == 0``);
* ``sparse_indexer.py: _all_regions(Current, Output, K, BLOCK)`` -- row ``r``'s region list of its ``Current``
  (an earlier rule's output);
* ``prefill_indexer_metadata.py: _prepare_prefill_indexer`` (prefill) -- row ``r``'s ``position`` is
  ``Positions[r * POSITION_STRIDE]`` (host values vLLM copied, the trace's known contents); ``Current``,
  ``Lengths``, ``TopKLengths`` as above, and without ``NEED_SCORES`` the region list into ``Selected`` (``REGIONS``
  regions per row).  With ``NEED_SCORES`` ``Selected`` is the top-k's, not this kernel's: no rule.
* ``csa_tail_ring.py: _ring_metadata_kernel`` (the CSA tail ring's builder) -- token ``t`` of request ``r``:
  ``base = block * ROWS_PER_BLOCK`` with ``block = block_table[r, 0]`` (a block id the KV-cache manager
  handed out: :class:`.produced_slots.BlockIds`, never the null block, so ``valid``), ``slot = base + pos %
  CAPACITY`` where ``pos >= seq_len - CAPACITY``, else -1; tokens past the scheduled ones -1 in both.

Anything else about these kernels answers None (the caller refuses the launch with the reason).
"""
from __future__ import annotations

from vkc.invoke.triton.plan import InitSpec, Value
from vkc.modeltrace.contents import Contents
from vkc.modeltrace.records import TensorArg, TracedEvent

from .initbase import Refused, StepView, int_scalars, lengths, numel, padded
from .produced_slots import BlockIds

__all__ = ["step5_contents"]

_DIRECT, _ALL, _PREP, _RING = "_direct_scores", "_all_regions", "_prepare_prefill_indexer", "_ring_metadata_kernel"
_STEP5 = "vllm.models.step5."
_ROW_OUTPUTS = ("Current", "Lengths", "TopKLengths")


def _regions(currents: list[int], k: int, a: TensorArg) -> InitSpec:
    """``region_rows`` of ``k + 1`` entries for rows of these current regions (the view must start the storage)."""
    if a.offset != 0 or len(currents) * (k + 1) > numel(a):
        raise Refused(f"{len(currents)} region rows of {k + 1} do not fit the traced buffer at offset {a.offset}")
    runs = Contents.of(list(currents)).runs          # the currents run-length encoded, as known contents are
    values: list[Value] = [v for v, _n in runs]
    counts: list[Value] = [n for _v, n in runs]
    return InitSpec("region_rows", (k + 1, values, counts))


def _direct_positions(ev: TracedEvent, facts: StepView) -> list[int] | None:
    sc, args = int_scalars(ev), dict(ev.tensors())
    seq, cur = args.get("SeqLens"), args.get("Current")
    if seq is None or cur is None or seq.producer != "metadata:seq_lens" or not cur.shape:
        return None
    ql, groups = sc.get("QUERY_LEN"), sc.get("ROW_GROUPS")
    _q, ctx = lengths(facts.spec)
    if not ql or not groups or cur.shape[0] % groups or (cur.shape[0] // groups) != ql * len(ctx):
        return None
    out = []
    for row in range(cur.shape[0]):
        token = row // groups
        out.append(ctx[token // ql] - (ql - 1 - token % ql) - 1)
    return out


def _prep_positions(ev: TracedEvent, facts: StepView) -> list[int] | None:
    sc, args = int_scalars(ev), dict(ev.tensors())
    pos, rows, stride = args.get("Positions"), sc.get("ROWS"), sc.get("POSITION_STRIDE")
    if pos is None or rows is None or stride is None:
        return None
    known = facts.known.get(pos.base)
    if known is None:
        return None
    values = known.values()
    picked = values[pos.offset: pos.offset + rows * stride: stride]
    if len(picked) != rows or not all(isinstance(v, int) for v in picked):
        return None
    return [int(v) for v in picked]


def _positions(ev: TracedEvent, facts: StepView) -> list[int] | None:
    leaf = ev.name.rsplit(":", 1)[-1]
    if not ev.name.startswith(_STEP5):
        return None
    if leaf == _DIRECT:
        return _direct_positions(ev, facts)
    if leaf == _PREP:
        return _prep_positions(ev, facts)
    return None


def _row_values(name: str, positions: list[int]) -> list[int]:
    current = [p >> 3 for p in positions]
    return {"Positions": positions, "Active": [1] * len(positions), "Current": current,
            "Lengths": [c + 1 for c in current], "TopKLengths": current}[name]


def _ring(ev: TracedEvent, param: str, facts: StepView) -> list[int] | None:
    sc = int_scalars(ev)
    cap, rows, n = sc.get("CAPACITY"), sc.get("ROWS_PER_BLOCK"), sc.get("num_tokens")
    q, ctx = lengths(facts.spec)
    if cap is None or rows is None or n is None or sc.get("num_actual_tokens") != sum(q) or sc.get("num_reqs") != len(q):
        return None
    block = BlockIds(facts.num_blocks)
    out: list[int] = []
    for r, (nq, c) in enumerate(zip(q, ctx)):
        base = block(r, 0) * rows
        for pos in range(c - nq, c):
            out.append(base if param == "base_ptr" else (base + pos % cap if pos >= c - cap else -1))
    return out[:n] + [-1] * max(0, n - len(out))


def step5_contents(a: TensorArg, ev: TracedEvent, param: str | None, facts: StepView) -> InitSpec | None:
    """The contents a Step5 indexer-metadata launch ``ev`` leaves in its argument ``param``, or None."""
    if ev.kind != "triton" or not ev.name.startswith(_STEP5) or param is None:
        return None
    leaf, own = ev.name.rsplit(":", 1)[-1], dict(ev.tensors()).get(param, a)
    if leaf == _RING and param in ("base_ptr", "slot_mapping_ptr"):
        values = _ring(ev, param, facts)
        return None if values is None else padded(values, own, -1)
    if leaf == _ALL and param == "Output":
        cur = dict(ev.tensors()).get("Current")
        src = facts.event(cur.producer) if cur is not None else None
        positions = _positions(src, facts) if src is not None else None
        k = int_scalars(ev).get("K")
        if positions is None or k is None:
            return None
        return _regions([p >> 3 for p in positions], k, own)
    if leaf == _DIRECT and param in ("Positions", "Active", *_ROW_OUTPUTS):
        positions = _direct_positions(ev, facts)
        return None if positions is None else padded(_row_values(param, positions), own, 0)
    if leaf == _PREP and param in (*_ROW_OUTPUTS, "Selected"):
        positions = _prep_positions(ev, facts)
        if positions is None:
            return None
        if param != "Selected":
            return padded(_row_values(param, positions), own, 0)
        sc = int_scalars(ev)
        if ev.constexprs.get("NEED_SCORES") is not False or "REGIONS" not in sc:
            return None
        return _regions([p >> 3 for p in positions], sc["REGIONS"], own)
    return None
