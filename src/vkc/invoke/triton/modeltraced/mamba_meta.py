"""Contents of the Mamba2 prefill chunk metadata, as vLLM's builder makes them.

``vllm/v1/attention/backends/mamba_attn.py`` (``BaseMambaAttentionMetadataBuilder._compute_chunk_metadata``,
no checkpoints): chunks hold tokens of one sequence only and end on multiples of ``chunk_size`` of the
sequence's absolute positions; ``cu_chunk_seqlen_p`` is the chunks' start offsets plus the total,
``seq_idx_p`` each chunk's sequence, ``last_chunk_indices_p`` each sequence's last chunk.  The chunk
size is not in the metadata: it is the one (of the powers of two) that gives the step's traced chunk
count, and a step where two chunk sizes would give different tables is refused.
"""
from __future__ import annotations

from collections.abc import Sequence

from vkc.modeltrace.records import StepTrace

__all__ = ["FIELDS", "chunk_tables", "mamba_chunk_field"]

FIELDS = ("cu_chunk_seqlen_p", "seq_idx_p", "last_chunk_indices_p")
_CANDIDATES = tuple(2 ** k for k in range(3, 13))      # 8 .. 4096


def chunk_tables(chunk: int, q: Sequence[int], computed: Sequence[int]) -> tuple[list[int], list[int], list[int]]:
    """(cu_chunk_seqlen, seq_idx, last_chunk_indices) of vLLM's chunking for prefill query lengths ``q``
    after ``computed`` tokens per sequence."""
    cu: list[int] = []
    seq: list[int] = []
    last: list[int] = []
    pos = 0
    for i, (new, done) in enumerate(zip(q, computed)):
        if done % chunk:
            seq.append(i)
            cu.append(pos)
            n = min(-(-done // chunk) * chunk - done, new)
            pos += n
            new -= n
        for _ in range(-(-new // chunk)):
            seq.append(i)
            cu.append(pos)
            n = min(chunk, new)
            pos += n
            new -= n
        last.append(len(cu) - 1)
    cu.append(pos)
    return cu, seq, last


def _traced_chunks(step: StepTrace) -> int | None:
    """The step's chunk count: the length of a traced ``seq_idx_p`` (or ``cu_chunk_seqlen_p`` minus one)."""
    for ev in step.events:
        for _n, t in ev.tensors():
            if t.producer == "metadata:seq_idx_p" and t.shape:
                return t.shape[-1]
            if t.producer == "metadata:cu_chunk_seqlen_p" and t.shape:
                return t.shape[0] - 1
    return None


def mamba_chunk_field(field: str, step: StepTrace, q: Sequence[int], ctx: Sequence[int]) -> list[int] | str:
    """The values of ``field`` (one of :data:`FIELDS`), or the reason there are none."""
    chunks = _traced_chunks(step)
    if chunks is None:
        return "the step traced no chunk table to take the chunk count from"
    computed = [c - n for n, c in zip(q, ctx)]
    tables = {tuple(map(tuple, chunk_tables(c, q, computed))) for c in _CANDIDATES
              if len(chunk_tables(c, q, computed)[1]) == chunks}
    if len(tables) != 1:
        return (f"{len(tables)} different chunk tables give the traced {chunks} chunks" if tables else
                f"no power-of-two chunk size gives the traced {chunks} chunks")
    cu, seq, last = (list(x) for x in next(iter(tables)))
    return {"cu_chunk_seqlen_p": cu, "seq_idx_p": seq, "last_chunk_indices_p": last}[field]
