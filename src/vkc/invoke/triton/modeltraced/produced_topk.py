"""What MiniMax-M3's Triton index top-k kernels leave (``vllm/models/minimax_m3/common/ops/index_topk.py``).

The block scores they sort come from the step's activations (random contents here), except the blocks the
score kernels force in: ``_decode_index_score_kernel`` ("Force-select init (1e30) and local (1e29 ...)
blocks") and ``_topk_index_kernel`` itself (``MASK_INIT``/``MASK_LOCAL`` False: init blocks 1e30, local
blocks 1e29).  So each rule keeps what the code fixes -- how many entries are valid, their range, the
forced blocks first, the -1 / 0 sentinels -- and takes the rest of the selection as distinct random blocks
of the valid range (any set some scores select):

* ``_topk_index_merge_kernel`` ``ti_final_ptr`` (decode): row (head, token) holds ``min(topk, num_blocks)``
  distinct 0-indexed blocks below ``num_blocks = cdiv(max(seq_len - decode_query_len + q_offset + 1, 0),
  block_size)``, then -1 (``tl.where(off_t < tl.minimum(topk, num_blocks), topk_idx_final, -1)``);
* ``_topk_index_kernel`` ``ti_ptr`` (prefill): row (head, query token ``i`` of sequence ``b``) holds
  ``min(topk, valid_blocks)`` blocks below ``valid_blocks = (prefix_len + i + block_size) // block_size``,
  then -1 (``store_mask & valid_mask``), the sequence's queries ``cu_seqlens`` (the step's query lengths)
  and ``prefix_lens`` (its context before them);
* ``_topk_index_partial_kernel`` ``ti_partial_ptr`` (decode): chunk ``c``'s row holds the chunk's blocks
  ``[c * chunk_blocks, min((c + 1) * chunk_blocks, num_blocks))`` 1-indexed ("1-indexed global,
  0=invalid"), at most ``BLOCK_SIZE_T`` of them, then 0 -- inlined values (seeded shuffle).

Rows of the persistent output the launch does not cover (tokens past the step's) are -1.
"""
from __future__ import annotations

import random

from vkc.invoke.triton.plan import InitSpec, Value
from vkc.modeltrace.records import TensorArg, TracedEvent

from .initbase import Refused, StepView, int_scalars, lengths, numel, padded

__all__ = ["index_topk_contents"]

INDEX_TOPK = "vllm.models.minimax_m3.common.ops.index_topk:"
SHUFFLE_SEED = 20240917      # the partial rows' non-forced blocks: a fixed shuffle (vkc's choice)


def _forced(ev: TracedEvent, facts: StepView, scores: str = "s_ptr") -> tuple[int, int]:
    """(init_blocks, local_blocks) the scores of ``ev`` force in: the decode score kernel's arguments."""
    s = dict(ev.args).get(scores)
    src = facts.event(s.producer) if isinstance(s, TensorArg) else None
    if src is None or not src.name.endswith(":_decode_index_score_kernel"):
        return 0, 0
    sc = int_scalars(src)
    return sc.get("init_blocks", 0), sc.get("local_blocks", 0)


def _rows(a: TensorArg, per_token: list[tuple[int, int, int]], heads: int) -> InitSpec:
    """A ``[heads, tokens, topk]`` view's rows in storage order (``topk_rows``), rows it does not cover -1."""
    if len(a.shape) != 3 or a.stride[-1] != 1:
        raise Refused(f"top-k table of shape {a.shape} stride {a.stride}: a [heads, tokens, topk] view expected")
    k = a.shape[-1]
    sh, sn = a.stride[0], a.stride[1]
    if a.offset % k or sh % k or sn % k:
        raise Refused(f"top-k table rows of {k} do not tile its storage (stride {a.stride}, offset {a.offset})")
    spec: dict[int, Value] = {}
    for h in range(min(heads, a.shape[0])):
        for n, (length, head, tail) in enumerate(per_token[:a.shape[1]]):
            spec[(a.offset + h * sh + n * sn) // k] = [length, head, tail] if head or tail else length
    rows: list[Value] = [spec.get(r, 0) for r in range(max(spec) + 1)] if spec else []
    return InitSpec("topk_rows", (k, rows, k))


def _decode_rows(ev: TracedEvent, facts: StepView, sc: dict[str, int]) -> list[int]:
    """num_blocks of each flattened query token (the decode kernels' ``kv_len`` clamp)."""
    _q, ctx = lengths(facts.spec)
    dq, bs = sc.get("decode_query_len", 1), sc["block_size"]
    tokens = ev.grid[0] if ev.grid else len(ctx) * dq
    out = []
    for b in range(tokens):
        req, qo = divmod(b, dq)
        kv = max((ctx[req] if req < len(ctx) else 0) - dq + qo + 1, 0)
        out.append(-(-kv // bs))
    return out


def _merge_final(a: TensorArg, ev: TracedEvent, facts: StepView) -> InitSpec:
    sc = int_scalars(ev)
    part = dict(ev.args).get("ti_partial_ptr")
    pev = facts.event(part.producer) if isinstance(part, TensorArg) else None
    init, local = _forced(pev, facts) if pev is not None else (0, 0)
    per = [(nb, min(init, nb), min(local, nb)) for nb in _decode_rows(ev, facts, sc)]
    return _rows(a, per, (ev.grid or (1, 1))[1])


def _prefill_final(a: TensorArg, ev: TracedEvent, facts: StepView) -> InitSpec:
    sc = int_scalars(ev)
    q, ctx = lengths(facts.spec)
    bs, si = sc["block_size"], sc.get("sample_interval", 1)
    # MASK_INIT / MASK_LOCAL push those blocks down (score - 1e29 / - 1e28) instead of forcing them in
    init = 0 if ev.constexprs.get("MASK_INIT") else sc.get("init_blocks", 0)
    local = 0 if ev.constexprs.get("MASK_LOCAL") else sc.get("local_blocks", 0)
    per = []
    for n, c in zip(q, ctx):
        for i in range(-(-n // si)):
            vb = (c - n + i * si + bs) // bs
            per.append((vb, min(init, vb), min(local, vb)))
    return _rows(a, per, (ev.grid or (1, 1, 1))[2])


def _partial(a: TensorArg, ev: TracedEvent, facts: StepView) -> InitSpec:
    sc = int_scalars(ev)
    if len(a.shape) != 4 or a.offset != 0:
        raise Refused(f"_topk_index_partial_kernel ti_partial_ptr of shape {a.shape}: [chunks, heads, tokens, T]")
    chunks, heads, tokens, width = a.shape
    st = a.stride
    init, local = _forced(ev, facts)
    cb = sc["chunk_blocks"]
    rng = random.Random(SHUFFLE_SEED)
    out = [0] * numel(a)
    nbs = _decode_rows(ev, facts, sc)
    for b in range(min(tokens, len(nbs))):
        nb = nbs[b]
        for c in range(chunks):
            ids = list(range(c * cb, min(c * cb + cb, nb)))
            forced = [x for x in ids if x < init or x >= nb - local]
            rest = [x for x in ids if x not in forced]
            for h in range(heads):
                rng.shuffle(rest)
                row = sorted(forced, key=lambda x: x >= init) + rest
                for t, x in enumerate(row[:width]):
                    out[c * st[0] + h * st[1] + b * st[2] + t * st[3]] = x + 1
    return padded(out, a, 0)


def index_topk_contents(a: TensorArg, ev: TracedEvent, param: str | None, facts: StepView) -> InitSpec | None:
    """The rows MiniMax-M3's index top-k kernel ``ev`` leaves in ``a`` (its ``param``), or None."""
    if not ev.name.startswith(INDEX_TOPK):
        return None
    leaf = ev.name.rsplit(":", 1)[-1]
    a = dict(ev.tensors()).get(param or "", a)      # the kernel's own view of the storage
    try:
        if leaf == "_topk_index_merge_kernel" and param == "ti_final_ptr":
            return _merge_final(a, ev, facts)
        if leaf == "_topk_index_kernel" and param == "ti_ptr":
            return _prefill_final(a, ev, facts)
        if leaf == "_topk_index_partial_kernel" and param == "ti_partial_ptr":
            return _partial(a, ev, facts)
    except KeyError as e:
        raise Refused(f"{leaf}: the launch lacks the scalar {e.args[0]}") from None
    return None
