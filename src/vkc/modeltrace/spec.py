"""Speculative decoding in the traced step, worker side (feature ``spec``; imports vLLM).

n-gram speculation with :data:`NUM_SPECULATIVE_TOKENS` draft tokens per sequence, as
``--speculative-config`` :data:`SPEC_CONFIG` sets it up (mirrored, each a checklist feature step):

* the engine config gets ``speculative_config`` (``EngineArgs.create_engine_config``);
* a decode step verifies ``1 + k`` tokens per sequence: the forward runs ``b * (1 + k)`` tokens
  (query length ``1 + k``, the attention metadata built from it as for any step) and
  ``compute_logits`` every one of them (``GPUModelRunner.prepare_inputs``: ``cu_num_logits`` steps of
  ``1 + k``, ``expand_idx_mapping``, ``combine_sampled_and_draft_tokens`` -- recorded, module
  ``"sampler.spec"``);
* the logits go through vLLM's ``RejectionSampler`` (module ``"sampler"``), not the plain sampler
  (``GPUModelRunner.sample`` with ``num_draft_tokens > 0``).

Prefill steps have no drafts: their forward and sampling are the plain ones.  After sampling, every
step runs the tail of ``GPUModelRunner.sample_tokens`` (:func:`after_sample`): ``postprocess_sampled``
and the n-gram drafter's ``propose`` (vLLM's GPU n-gram speculator, no model forward).
``speculative=ngram-block`` (:data:`SPEC_CONFIGS`) verifies the drafts as a block.
"""
from __future__ import annotations

from typing import Any

__all__ = ["DEFAULT_SPEC", "NUM_SPECULATIVE_TOKENS", "SPEC_CONFIG", "SPEC_CONFIGS", "after_sample", "install",
           "spec_batch"]

NUM_SPECULATIVE_TOKENS = 3
SPEC_CONFIG: dict[str, Any] = {"method": "ngram", "num_speculative_tokens": NUM_SPECULATIVE_TOKENS,
                               "prompt_lookup_min": 2, "prompt_lookup_max": 5}
DEFAULT_SPEC = "ngram"
# variant value (speculative=NAME) -> --speculative-config; "ngram-block": the same drafts verified as a
# block (rejection_sample_method="block", Sun et al.) instead of token by token
SPEC_CONFIGS: dict[str, dict[str, Any]] = {
    "ngram": SPEC_CONFIG,
    "ngram-block": {**SPEC_CONFIG, "rejection_sample_method": "block"},
    # multi-token prediction with the target's own MTP layers (vkc.modeltrace.spec_draft): MTPSpeculator
    "mtp": {"method": "mtp", "num_speculative_tokens": NUM_SPECULATIVE_TOKENS},
    # a separate draft model (its config the request's draft_config, written beside the target's): StandaloneAR
    "draft-model": {"method": "draft_model", "num_speculative_tokens": NUM_SPECULATIVE_TOKENS},
}


def install(name: str = DEFAULT_SPEC, draft_config: dict[str, Any] | None = None) -> None:
    """Before the worker starts: the engine config with speculation ``SPEC_CONFIGS[name]``, decode
    steps of ``1 + k`` tokens."""
    from vkc.modeltrace import startup, worker

    real_config = startup.engine_config

    def engine_config(model_dir: str, opts: dict[str, Any]) -> Any:
        from vllm.engine import arg_utils

        real_args = arg_utils.EngineArgs

        spec = dict(SPEC_CONFIGS[name])
        if draft_config is not None:        # --speculative-config's model: a directory with the drafter's config
            from vkc.modeltrace.spec_draft import draft_dir

            spec["model"] = draft_dir(draft_config)

        def with_spec(**kw: Any) -> Any:
            return real_args(**kw, speculative_config=spec)

        arg_utils.EngineArgs = with_spec  # type: ignore[misc,assignment]
        try:
            return real_config(model_dir, opts)
        finally:
            arg_utils.EngineArgs = real_args  # type: ignore[misc]

    startup.engine_config = engine_config  # type: ignore[assignment]
    from vkc.modeltrace.spec_draft import DRAFT_METHODS, install_draft

    if SPEC_CONFIGS[name]["method"] in DRAFT_METHODS:
        install_draft()
    real_metadata = worker._metadata

    def metadata(step: dict[str, Any], block_size: int) -> dict[str, Any]:
        if step["workload"] != "decode":
            return real_metadata(step, block_size)
        return _verify_metadata(step, block_size)

    worker._metadata = metadata  # type: ignore[assignment]


def _verify_metadata(step: dict[str, Any], block_size: int) -> dict[str, Any]:
    """The worker's step metadata for a decode step verifying ``k`` drafts: ``1 + k`` query tokens
    per sequence, every one of them sampled (``logits_indices`` over all tokens)."""
    import torch

    b, q, ctx = int(step["batch"]), 1 + NUM_SPECULATIVE_TOKENS, int(step["ctx"])
    tokens = b * q
    blocks_per_seq = -(-ctx // block_size)
    meta = torch.device("meta")
    return {"num_reqs": b, "num_tokens": tokens, "q": q, "ctx": ctx, "blocks": b * blocks_per_seq,
            "query_start_loc": torch.empty(b + 1, dtype=torch.int32, device=meta),
            "query_start_loc_cpu": torch.arange(0, tokens + 1, q, dtype=torch.int32),
            "seq_lens": torch.empty(b, dtype=torch.int32, device=meta),
            "seq_lens_cpu_upper_bound": torch.full((b,), ctx, dtype=torch.int32),
            "slot_mapping": torch.empty(tokens, dtype=torch.int64, device=meta),
            "positions": torch.empty(tokens, dtype=torch.int64, device=meta),
            "input_ids": torch.empty(tokens, dtype=torch.int32, device=meta),
            "logits_indices": torch.empty(tokens, dtype=torch.int64, device=meta)}


def spec_batch(state: dict[str, Any], batch: Any) -> Any:
    """``GPUModelRunner.prepare_inputs``'s draft branch over a ``make_dummy`` batch of ``1 + k``
    tokens per request: ``cu_num_logits``, the expanded request mapping, the logits indices."""
    import dataclasses

    import numpy as np
    import torch
    from vllm.utils.torch_utils import async_tensor_h2d
    from vllm.v1.worker.gpu.input_batch import combine_sampled_and_draft_tokens, expand_idx_mapping

    from vkc.modeltrace.recorder import RECORDER

    k = NUM_SPECULATIVE_TOKENS
    n = batch.num_reqs
    drafts = np.full(n, k, dtype=np.int32)
    cu_np = np.zeros(n + 1, dtype=np.int32)
    np.cumsum(drafts + 1, out=cu_np[1:])
    total = int(cu_np[-1])
    cu = async_tensor_h2d(cu_np, device=torch.device("meta"))
    RECORDER.name_storage(cu, "metadata:cu_num_logits")
    expanded, local_pos = expand_idx_mapping(batch.idx_mapping, total, cu, k + 1)
    rs = state["req_states"]
    logits_indices = combine_sampled_and_draft_tokens(
        batch.input_ids, batch.idx_mapping, rs.last_sampled_tokens, batch.query_start_loc, batch.seq_lens,
        rs.prefill_len.gpu, rs.draft_tokens, cu, total, 1)
    # what the two kernels write, from the host arrays they read (the artifacts' buffer contents)
    qsl = batch.query_start_loc_np
    state["spec_host"] = {
        "cu_num_logits": (cu, cu_np),
        "expanded_idx_mapping": (expanded, np.repeat(batch.idx_mapping_np, drafts + 1)),
        "expanded_local_pos": (local_pos, np.concatenate([np.arange(d + 1) for d in drafts])),
        "logits_indices": (logits_indices, np.concatenate([np.arange(qsl[i + 1] - d - 1, qsl[i + 1])
                                                           for i, d in enumerate(drafts)]))}
    return dataclasses.replace(batch, expanded_idx_mapping=expanded, expanded_local_pos=local_pos,
                               num_draft_tokens=int(drafts.sum()), num_draft_tokens_per_req=drafts,
                               logits_indices=logits_indices, cu_num_logits=cu, cu_num_logits_np=cu_np)


def after_sample(state: dict[str, Any], batch: Any, out: Any, ctx: dict[str, Any] | None = None,
                 hidden: Any = None) -> None:
    """The tail of ``GPUModelRunner.sample_tokens`` after sampling, in every step of a speculative
    trace: ``postprocess_sampled`` (``post_update``: computed tokens, last sampled tokens, output
    counts, all_token_ids) and the drafter's ``propose`` (``init_speculator``'s
    ``NgramGPUSpeculator``: the n-gram scan over each request's tokens), whose drafts go to
    ``req_states.draft_tokens`` (module ``"sampler.propose"``)."""
    import torch
    from vllm.v1.worker.gpu.input_batch import post_update
    from vllm.v1.worker.gpu.spec_decode import init_speculator

    from vkc.modeltrace.spec_draft import DRAFT

    rs, sampler = state["req_states"], state["sampler"]
    if "speculator" not in state and "speculator" not in DRAFT:
        state["speculator"] = init_speculator(state["vllm_config"], torch.device("meta"), rs)
    post_update(batch.idx_mapping, rs.num_computed_tokens.gpu, rs.last_sampled_tokens,
                sampler.penalties_state.output_bin_counts, out.sampled_token_ids, out.num_sampled, out.num_rejected,
                batch.query_start_loc, rs.all_token_ids.gpu, rs.total_len.gpu, None, rs.draft_tokens)
    if "speculator" in DRAFT:           # a drafter model (vkc.modeltrace.spec_draft)
        from vkc.modeltrace.spec_draft import propose

        assert ctx is not None and hidden is not None
        rs.draft_tokens[batch.idx_mapping] = propose(state, ctx, batch, out, hidden, NUM_SPECULATIVE_TOKENS)
        return
    drafts = state["speculator"].propose(
        batch, None, None, None, None, out.num_sampled, out.num_rejected, rs.last_sampled_tokens,
        rs.next_prefill_tokens, sampler.sampling_states.temperature.gpu, sampler.sampling_states.seeds.gpu,
        num_speculative_tokens=NUM_SPECULATIVE_TOKENS)
    rs.draft_tokens[batch.idx_mapping] = drafts
