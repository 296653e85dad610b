"""What the runner's host side wrote into the serving features' buffers (worker side; imports vLLM in calls).

:func:`host_contents` returns, by storage id, the contents the V2 runner's host side gave the
index and parameter buffers the sampler kernels read (per-request sampling parameters, lengths,
the batch's request slots, the grammar bitmask, admission's staged writes and UVA copies, kept
by :func:`_admit_host`), for the artifacts' buffer contents (:mod:`vkc.modeltrace.contents`).
Split out of :mod:`vkc.modeltrace.serving`, which calls it.
"""
from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

__all__ = ["host_contents"]

_STATE_TENSORS = (("sampling_states", ("temperature", "top_k", "top_p", "min_p", "seeds")),
                  ("penalties_state", ("repetition_penalty", "frequency_penalty", "presence_penalty")))


@contextlib.contextmanager
def _admit_host(state: dict[str, Any]) -> Iterator[None]:
    """Keep what admission copies host-to-device (``state["admit_host"]``: (device tensor, host
    values of its whole storage)): the staged writes' index/start/length/content lists
    (``UvaBufferPool.copy_to_uva``, ``async_tensor_h2d``) and the penalties' new-request mapping, so
    the admission kernels' buffers have the values vLLM gave them."""
    import numpy as np
    from vllm.v1.worker.gpu import buffer_utils as bu
    from vllm.v1.worker.gpu.sample import penalties as pen

    kept: list[tuple[Any, Any]] = state.setdefault("admit_host", [])
    pool_copy, h2d = bu.UvaBufferPool.copy_to_uva, bu.async_tensor_h2d

    def copy_to_uva(self: Any, x: Any) -> Any:
        out = pool_copy(self, x)
        buf = self._uva_bufs[self._curr]
        kept.append((buf._uva, np.array(buf.np, copy=True)))
        return out

    def async_h2d(data: Any, device: Any = None, dtype: Any = None, out: Any = None) -> Any:
        t = h2d(data, device=device, dtype=dtype, out=out)
        if out is None:
            kept.append((t, np.asarray(data)))
        return t

    staged_apply = bu.StagedWriteTensor.apply_write
    mirrors: dict[int, Any] = state.setdefault("staged_mirrors", {})

    def apply_write(self: Any) -> None:
        # _apply_write_kernel's effect on a host mirror of the target (zeros when vLLM made it;
        # the UVA case's host array is the target itself on a GPU host)
        writes = (list(self._staged_write_indices), list(self._staged_write_starts),
                  list(self._staged_write_contents), list(self._staged_write_cu_lens))
        staged_apply(self)
        mirror = mirrors.get(id(self))
        if mirror is None:
            mirror = mirrors[id(self)] = np.zeros(tuple(self.gpu.shape), dtype=_NP[str(self.dtype)])
        rows, starts, contents, cu = writes
        for i, (row, start) in enumerate(zip(rows, starts)):
            lo = cu[i - 1] if i else 0
            mirror.reshape(mirror.shape[0], -1)[row, start:start + cu[i] - lo] = contents[lo:cu[i]]
        kept.append((self.gpu, mirror.copy()))

    bu.UvaBufferPool.copy_to_uva = copy_to_uva  # type: ignore[method-assign]
    bu.StagedWriteTensor.apply_write = apply_write  # type: ignore[method-assign]
    bu.async_tensor_h2d = pen.async_tensor_h2d = async_h2d
    try:
        yield
    finally:
        bu.UvaBufferPool.copy_to_uva = pool_copy  # type: ignore[method-assign]
        bu.StagedWriteTensor.apply_write = staged_apply  # type: ignore[method-assign]
        bu.async_tensor_h2d = pen.async_tensor_h2d = h2d


_NP = {"torch.int32": "int32", "torch.int64": "int64", "torch.float32": "float32"}


def _runs(values: Any) -> list[list[Any]]:
    """Run-length form ``[[value, count], ...]`` of a flat host array (vectorised: the staged-write
    targets hold tens of millions of elements)."""
    import numpy as np

    a = np.asarray(values).reshape(-1)
    if a.size == 0:
        return []
    cuts = np.flatnonzero(a[1:] != a[:-1]) + 1
    starts = np.concatenate(([0], cuts))
    lengths = np.diff(np.concatenate((starts, [a.size])))
    return [[v, int(n)] for v, n in zip(a[starts].tolist(), lengths.tolist())]


def host_contents(state: dict[str, Any], idx_np: Any) -> dict[str, Any]:
    """The contents the runner's host side wrote into the feature's index and parameter buffers,
    by storage id (``{"runs": [[value, count], ...]}`` over the whole storage): the per-request
    sampling parameters and lengths (the UVA buffers' host arrays), the batch's request slots."""
    import numpy as np

    from vkc.modeltrace.recorder import RECORDER

    def put(t: Any, host: Any, out: dict[str, Any], runs: list[list[Any]] | None = None) -> None:
        st = RECORDER.storages.get(RECORDER._key(t))
        if st is not None:
            out[st["id"]] = {"runs": runs if runs is not None else _runs(np.asarray(host).reshape(-1))}

    out: dict[str, Any] = {}
    # admission's copies first: the buffers the sampler reads later are put again below, as they are now
    for t, host in state.pop("admit_host", []):
        put(t, host, out)
    sampler, rs = state["sampler"], state["req_states"]
    for holder, names in _STATE_TENSORS:
        for n in names:
            for buf in getattr(getattr(sampler, holder), n).pool._uva_bufs:
                put(buf._uva, buf.np, out)
    for n in ("prompt_len", "prefill_len"):
        for buf in getattr(rs, n).pool._uva_bufs:
            put(buf._uva, buf.np, out)
    if "idx_mapping" in state:
        put(state["idx_mapping"], idx_np, out)
    if "batch" in state:
        _batch_contents(state, put, out)
    for t, host in state.pop("spec_host", {}).values():
        put(t, host, out)
    if "bitmask_host" in state:
        w, bitmask, mapping = state.pop("bitmask_host")
        rows, width = bitmask.shape
        put(w.grammar_bitmask, None, out, [[-1, rows * width], [0, int(w.grammar_bitmask.numel()) - rows * width]])
        put(w.logits_indices, None, out, _sparse_runs(int(w.logits_indices.numel()), dict(enumerate(mapping))))
    return dict(sorted(out.items()))


def _batch_contents(state: dict[str, Any], put: Any, out: dict[str, Any]) -> None:
    """The batch's device tensors from the host arrays ``InputBatch.make_dummy`` made them from
    (its padding included: the whole buffer); the penalties' prompt statistics as ``bincount``
    leaves them for the admitted prompts (all token id 0, no output tokens yet)."""
    import numpy as np

    batch, buffers, pen = state["batch"], state["buffers"], state["sampler"].penalties_state
    n, tokens = batch.num_reqs, batch.num_tokens
    qsl = np.full(buffers.query_start_loc.shape[0], tokens, dtype=np.int64)
    qsl[: n + 1] = batch.query_start_loc_np
    put(buffers.query_start_loc, qsl, out)
    # _prepare_pos_seq_lens_kernel: seq_len = num_computed + query length (0 past the batch),
    # position = num_computed + offset in the query
    computed = state["req_states"].num_computed_tokens_np[state["idx_mapping_np"]].astype(np.int64)
    q = np.diff(batch.query_start_loc_np).astype(np.int64)
    seq = np.zeros(buffers.seq_lens.shape[0], dtype=np.int64)
    seq[:n] = computed + q
    put(buffers.seq_lens, seq, out)
    pos = np.zeros(buffers.positions.shape[0], dtype=np.int64)
    for i in range(n):
        lo = int(batch.query_start_loc_np[i])
        pos[lo:lo + int(q[i])] = computed[i] + np.arange(int(q[i]))
    put(buffers.positions, pos, out)
    rs = state["req_states"]
    put(rs.num_computed_tokens.gpu, rs.num_computed_tokens_np, out)
    put(rs.last_sampled_tokens, None, out, [[0, int(rs.last_sampled_tokens.numel())]])   # torch.zeros
    if rs.draft_tokens.numel():
        put(rs.draft_tokens, None, out, [[0, int(rs.draft_tokens.numel())]])
    put(batch.cu_num_logits, batch.cu_num_logits_np, out)
    put(batch.expanded_local_pos, np.zeros(batch.expanded_local_pos.shape[0], dtype=np.int64), out)
    put(buffers.input_ids, np.zeros(buffers.input_ids.shape[0], dtype=np.int64), out)   # make_dummy's zero_()
    put(batch.logits_indices, batch.query_start_loc_np[1:] - 1, out)
    width = int(pen.prompt_bin_mask.shape[1])
    put(pen.prompt_bin_mask, None, out, _sparse_runs(pen.prompt_bin_mask.numel(),     # token 0: word 0, bit 0
                                                     {int(r) * width: 1 for r in state["idx_mapping_np"]}))
    put(pen.output_bin_counts, None, out, [[0, int(pen.output_bin_counts.numel())]])


def _sparse_runs(numel: int, values: dict[int, Any], default: Any = 0) -> list[list[Any]]:
    """Runs of a ``numel``-element buffer of ``default`` with ``values`` at the given flat indices."""
    out: list[list[Any]] = []
    pos = 0
    for i in sorted(values):
        if i > pos:
            out.append([default, i - pos])
        if out and out[-1][0] == values[i]:
            out[-1][1] += 1
        else:
            out.append([values[i], 1])
        pos = i + 1
    if numel > pos:
        out.append([default, numel - pos])
    return out
