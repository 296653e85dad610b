"""The V2 runner's per-step input preparation and post-sampling update, worker side (imports vLLM in calls).

vLLM 0.33.0's default model runner (``vllm/v1/worker/gpu/model_runner.py``) launches, every step, around
the forward: ``prepare_inputs`` (``prepare_prefill_inputs`` when the batch prefills,
``prepare_pos_seq_lens``, ``combine_sampled_and_draft_tokens``), ``prepare_attn`` (the
``BlockTables``' ``gather_block_tables`` and ``compute_slot_mappings``) and, after sampling,
``postprocess_sampled`` (``post_update``).  :func:`prepare_and_update` runs them with vLLM's own code
over the step's real batch (the admitted requests' slots, query start offsets, computed tokens), as the
checklist feature steps ``runner-block-tables``, ``runner-admit-blocks``, ``runner-prepare-inputs``,
``runner-prepare-attn`` and ``runner-postprocess`` say (:data:`vkc.modeltrace.checklist.FEATURE_STEPS`).

They run at the end of the featured step, after the sampler (their values do not depend on where:
each reads the host state the runner left for the step), so no earlier event moves; their new storages
are numbered from :data:`RUNNER_STORAGE_OFFSET` (:class:`~vkc.modeltrace.serving.FeatureStorages` with
that offset), so no earlier storage id moves either: the forward's and the sampler's events are the
trace's without this step, exactly.  ``prepare_pos_seq_lens`` stays where ``sampler-prepare`` launches
it.  The forward keeps reading the block tables and slot mapping vkc built for it (``block-tables``):
it ran before, and its recorded launches stay as they were; the tables these kernels gather hold the
same rows (each request's blocks, then 0).  Events: ``module`` ``"sampler.prepare"`` /
``"sampler.postprocess"``, ``layer`` None.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["KV_CONFIG", "RUNNER_STORAGE_OFFSET", "capture_kv_config", "prepare_and_update"]

RUNNER_STORAGE_OFFSET = 2_000_000
KV_CONFIG: dict[str, Any] = {}          # the worker's KVCacheConfig (startup.kv_cache), for BlockTables


def capture_kv_config(kv_cache: Any) -> Any:
    """``startup.kv_cache`` that keeps the KV cache config it made (``GPUModelRunner.initialize_kv_cache``
    builds the block tables from it)."""

    def wrapped(vllm_config: Any, num_blocks: int) -> Any:
        out = kv_cache(vllm_config, num_blocks)
        KV_CONFIG["config"] = out[2]
        return out

    return wrapped


def _block_tables(state: dict[str, Any], widths: list[int]) -> Any:
    """``GPUModelRunner.initialize_kv_cache``: ``BlockTables`` with the runner's arguments, each group's
    width the one the forward's tables have (``spec.max_num_blocks_per_req`` aligned by
    ``get_block_table_width``, :func:`vkc.modeltrace.startup.block_tables`)."""
    import torch
    from vllm.v1.worker.gpu.block_table import BlockTables

    from .recorder import RECORDER
    from .release_stubs import release_kwargs

    cfg, vc = KV_CONFIG["config"], state["vllm_config"]
    sizes, enabled, sharded, reach = [], [], [], []
    for group in cfg.kv_cache_groups:
        spec = group.kv_cache_spec
        layer_spec = getattr(spec, "first_spec", spec)      # UniformTypeKVCacheSpecs: its first layer's
        sizes.append(int(spec.block_size))
        enabled.append(bool(getattr(layer_spec, "uses_slot_mapping", True)))
        sharded.append(bool(getattr(spec, "dcp_sharded", True)))
        reach.append(int(getattr(layer_spec, "num_retained_tokens", 0) or 0)
                     if type(layer_spec).__name__ == "SlidingWindowSpec" else 0)
    sc = vc.scheduler_config
    bt = BlockTables(**release_kwargs(BlockTables, {
        "block_sizes": sizes, "max_num_reqs": int(sc.max_num_seqs),
        "max_num_batched_tokens": int(sc.max_num_batched_tokens), "max_num_blocks_per_group": widths,
        "device": torch.device("meta"), "cp_size": 1, "cp_rank": 0, "cp_interleave": 1,
        "slot_mapping_enabled": enabled, "dcp_sharded": sharded, "sliding_window_reach": reach}))
    host = {"block_table_strides": [int(b.gpu.stride(0)) for b in bt.block_tables], "block_sizes_tensor": sizes,
            "slot_mapping_enabled": enabled, "dcp_sharded": sharded, "sliding_window_reach": reach}
    for i, (src, dst) in enumerate(zip(bt.block_tables, bt.input_block_tables)):
        RECORDER.name_storage(src.gpu, f"block_tables:block_table[{i}]")
        RECORDER.name_storage(dst, f"block_tables:input_block_table[{i}]")
    for n in (*host, "block_table_ptrs", "input_block_table_ptrs", "slot_mappings"):
        if isinstance(getattr(bt, n, None), torch.Tensor):
            RECORDER.name_storage(getattr(bt, n), f"block_tables:{n}")
    return {"tables": bt, "host": host, "rows": [None] * len(sizes), "reach": reach}


def _admit_blocks(state: dict[str, Any], rt: dict[str, Any], batch: Any, computed: Any, seq_lens: Any) -> None:
    """``GPUModelRunner.add_requests``: ``block_tables.append_block_ids(req_index, block_ids,
    overwrite=True)`` per request, then ``execute_model``'s ``block_tables.apply_staged_writes()``.  The
    block ids are a fresh KV cache manager's: 1, 2, ... in admission order (block 0 is the null block),
    ``cdiv(seq_len, block_size)`` per request and group (at most the group's width); a sliding-window
    group's leading blocks below the window are the null block, as its manager leaves them.  Ids past the
    KV cache's block count are reused (said in the trace's warnings).  The staged write's launch
    (``_apply_write_kernel``, traced at the sampler's admission) is not recorded again."""
    import numpy as np

    from .launches import capture_module
    from .recorder import RECORDER

    bt = rt["tables"]
    limit = max(2, int(getattr(KV_CONFIG["config"], "num_blocks", 0) or 0))
    nxt = 0
    rows = [np.zeros(tuple(t.gpu.shape), dtype=np.int32) for t in bt.block_tables]
    for i in range(batch.num_reqs):
        r = int(batch.idx_mapping_np[i])
        ids = []
        for g, t in enumerate(bt.block_tables):
            size = int(bt.block_sizes[g])
            n = min(-(-int(seq_lens[i]) // size), int(t.gpu.shape[1]))
            null = min(n, max(int(computed[i]) - rt["reach"][g], 0) // size) if rt["reach"][g] > 0 else 0
            fresh = [1 + (nxt + j) % (limit - 1) for j in range(n - null)]
            ids.append([0] * null + fresh)
            rows[g][r, :n] = ids[-1]
            nxt += n - null
        bt.append_block_ids(r, tuple(ids), overwrite=True)
    if nxt > limit - 1:
        RECORDER.warnings.append(f"the runner's block tables reuse block ids: the step's requests take {nxt} blocks, "
                                 f"the traced KV cache holds {limit - 1} besides the null block")
    tw = capture_module()
    launches, tw.STATE.launches = tw.STATE.launches, []
    try:
        bt.apply_staged_writes()
    finally:
        tw.STATE.launches = launches
    rt["rows"] = rows


def prepare_and_update(ctx: dict[str, Any], state: dict[str, Any], batch: Any, out: Any, prefill: bool,
                       verify: bool, host: Callable[[], dict[str, Any]]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The runner's per-step launches over ``batch`` (the sampled batch of :func:`~vkc.modeltrace.serving._batch`)
    and the sampler's output ``out``; returns ``(contents, pointers)``: ``host()`` (the feature's host
    contents, taken in this table) and theirs by storage id, and the address tables' targets.
    With drafts (``verify``) ``combine_sampled_and_draft_tokens`` and ``post_update`` are the ``spec``
    feature's (:mod:`vkc.modeltrace.spec`), not run twice."""
    from .recorder import RECORDER
    from .storage_tables import feature_storages

    with feature_storages(ctx, key="runner_storages", offset=RUNNER_STORAGE_OFFSET):
        if "runner" not in state:
            state["runner"] = _block_tables(state, [int(t.shape[1]) for t in ctx["block_tables"]])
        rt = state["runner"]
        rs = state["req_states"]
        computed = rs.num_computed_tokens_np[batch.idx_mapping_np]
        q = batch.query_start_loc_np[1:] - batch.query_start_loc_np[:-1]
        rt["batch_qsl"] = batch.query_start_loc_np
        _admit_blocks(state, rt, batch, computed, computed + q)
        RECORDER.stack = ["sampler.prepare"]
        rt["logits_indices"] = _prepare_inputs(state, batch, prefill, verify)
        _prepare_attn(rt, batch, rs)
        if out is not None and not verify:       # out None: the spec feature's after_sample did it
            RECORDER.stack = ["sampler.postprocess"]
            _postprocess(state, batch, out)
        RECORDER.stack = ["sampler"]
        contents, pointers = _contents(state, rt)
        return {**host(), **contents}, pointers


def _prepare_inputs(state: dict[str, Any], batch: Any, prefill: bool, verify: bool) -> Any:
    """``GPUModelRunner.prepare_inputs``: ``prepare_prefill_inputs`` (a batch with prefill), then
    (after ``prepare_pos_seq_lens``, launched by ``sampler-prepare``) ``combine_sampled_and_draft_tokens``
    with no drafts: one logit per request, ``cu_num_logits`` = 0..num_reqs; returns its logits indices."""
    from vllm.v1.worker.gpu.input_batch import combine_sampled_and_draft_tokens, prepare_prefill_inputs

    rs, buffers = state["req_states"], state["buffers"]
    if prefill:
        prepare_prefill_inputs(buffers.input_ids, rs.next_prefill_tokens, batch.idx_mapping, batch.query_start_loc,
                               rs.all_token_ids.gpu, rs.prefill_len.gpu, rs.num_computed_tokens.gpu)
    if verify:
        return None
    return combine_sampled_and_draft_tokens(buffers.input_ids, batch.idx_mapping, rs.last_sampled_tokens,
                                            batch.query_start_loc, batch.seq_lens, rs.prefill_len.gpu,
                                            rs.draft_tokens, batch.cu_num_logits, batch.num_reqs, 1)


def _prepare_attn(rt: dict[str, Any], batch: Any, rs: Any) -> None:
    """``GPUModelRunner.prepare_attn``: ``gather_block_tables(idx_mapping, num_reqs_padded,
    num_computed_tokens)`` and ``compute_slot_mappings(idx_mapping, query_start_loc, positions,
    num_tokens_padded)`` (eager: no padding).  The rows a previous, larger batch left are cleared too
    (``_num_dirty_rows``); the trace takes the steady state, the previous step's batch this one's."""
    bt = rt["tables"]
    bt._num_dirty_rows = batch.num_reqs
    bt.gather_block_tables(batch.idx_mapping, num_reqs_padded=batch.num_reqs,
                           num_computed_tokens=rs.num_computed_tokens.gpu)
    bt.compute_slot_mappings(batch.idx_mapping, batch.query_start_loc, batch.positions,
                             num_tokens_padded=batch.num_tokens)


def _postprocess(state: dict[str, Any], batch: Any, out: Any) -> None:
    """``GPUModelRunner.postprocess_sampled`` (``sample_tokens``, after the prompt logprobs): ``post_update``
    of the computed tokens, last sampled tokens, output counts and ``all_token_ids``."""
    from vllm.v1.worker.gpu.input_batch import post_update

    rs, sampler = state["req_states"], state["sampler"]
    post_update(batch.idx_mapping, rs.num_computed_tokens.gpu, rs.last_sampled_tokens,
                sampler.penalties_state.output_bin_counts, out.sampled_token_ids, out.num_sampled, out.num_rejected,
                batch.query_start_loc, rs.all_token_ids.gpu, rs.total_len.gpu, None, rs.draft_tokens)


def _contents(state: dict[str, Any], rt: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """What the runner's host side gave the block tables' buffers (the staged block ids, the per-group
    layout tensors vLLM builds with ``torch.tensor``, the per-request block counts) and what the two
    address tables point at (each group's persistent / forward block table)."""
    import numpy as np

    from .recorder import RECORDER
    from .serving_host import _runs

    bt = rt["tables"]
    out: dict[str, Any] = {}

    def put(t: Any, host: Any) -> None:
        st = RECORDER.storages.get(RECORDER._key(t))
        if st is not None:
            out[st["id"]] = {"runs": _runs(np.asarray(host).reshape(-1))}

    for t, host in zip(bt.block_tables, rt["rows"]):
        put(t.gpu, host)
    for t in bt.input_block_tables:
        put(t, np.zeros(tuple(t.shape), dtype=np.int32))        # torch.zeros_like (then gathered into)
    for name, host in rt["host"].items():
        put(getattr(bt, name), host)
    put(bt.num_blocks.gpu, bt.num_blocks.np)
    put(bt.slot_mappings, np.zeros(tuple(bt.slot_mappings.shape), dtype=np.int64))   # torch.zeros
    if rt.get("logits_indices") is not None:       # what the kernel writes: each request's last token
        qsl = np.asarray(rt["batch_qsl"])
        put(rt["logits_indices"], qsl[1:] - 1)
    rs = state["req_states"]
    if not rs.draft_tokens.numel():     # no speculation: [max_num_reqs, 0] (the spec feature puts its drafts)
        put(rs.draft_tokens, np.zeros(0, dtype=np.int64))
    put(rs.next_prefill_tokens, np.zeros(tuple(rs.next_prefill_tokens.shape),
                                                                    dtype=np.int64))
    pointers: dict[str, Any] = {}
    for table, targets in ((bt.block_table_ptrs, [b.gpu for b in bt.block_tables]),
                           (bt.input_block_table_ptrs, list(bt.input_block_tables))):
        st = RECORDER.storages.get(RECORDER._key(table))
        if st is not None:
            pointers[st["id"]] = [_target(t) for t in targets]
    return out, pointers


def _target(t: Any) -> dict[str, Any]:
    """One address-table entry (:class:`vkc.modeltrace.contents.PointerTarget`'s fields)."""
    from .recorder import RECORDER

    st = RECORDER.storages.get(RECORDER._key(t))
    return {"storage": st["id"] if st else None, "origin": st["first"] if st else None,
            "nbytes": int(t.untyped_storage().nbytes()), "offset": int(t.storage_offset()),
            "dtype": str(t.dtype).replace("torch.", ""), "shape": list(t.shape)}
