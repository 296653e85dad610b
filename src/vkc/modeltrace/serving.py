"""Serving features of the traced step, worker side: vLLM's own sampler after the model forward.

Runs only inside the model-trace worker (imports vLLM).  What it mirrors (each a checklist
feature step, :data:`vkc.modeltrace.checklist.FEATURE_STEPS`, fingerprinted):

* ``vllm/v1/worker/gpu/model_runner.py: GPUModelRunner.load_model`` -- the V2 model runner (0.33.0's
  default, ``VllmConfig.use_v2_model_runner``) builds ``RequestState``, ``InputBuffers`` and
  ``Sampler`` with these arguments;
* ``GPUModelRunner.add_requests`` -- ``req_states.add_request`` + ``sampler.add_request`` per new
  request, then ``apply_staged_writes`` (the penalties' prompt ``bincount``, the staged-write kernel);
* ``GPUModelRunner._dummy_sampler_run`` -- ``InputBatch.make_dummy(num_reqs, num_tokens, ...)`` and
  ``sampler(logits, input_batch)``, the batch vLLM itself samples during its warm-up;
* ``vllm/v1/worker/gpu/buffer_utils.py: UvaBuffer.__init__`` -- on an H100 host pinned memory is
  available and a UVA buffer is a device view of it: here a CPU array plus a ``meta`` view.

The sampling parameters are a documented mix (:mod:`vkc.modeltrace.mixes`; by default
:data:`SERVING_MIX`, the same for every request; ``state["mix"]`` names another, whose extra runner
steps are :mod:`vkc.modeltrace.mix_worker`'s).  With ``bitmask`` the step first applies ``StructuredOutputsWorker.apply_grammar_bitmask``
(``GPUModelRunner.sample``'s order), every request under a grammar.  Events go to the step's event
list with ``layer`` None and ``module`` ``"sampler"`` (the per-step sampling), ``"sampler.bitmask"``
or ``"sampler.admit"`` (request admission: recorded in the prefill step, where vLLM admits the
requests it prefills; a decode step's requests were admitted steps before).  :func:`host_contents`
(:mod:`vkc.modeltrace.serving_host`) returns what the runner's host side wrote into the index and parameter buffers (per-request
sampling parameters, lengths, the batch's request slots, the grammar bitmask), by storage id, for
the artifacts' buffer contents (:mod:`vkc.modeltrace.contents`).
"""
from __future__ import annotations

from typing import Any

from .mixes import DEFAULT_MIX, SERVING_MIX, sampling_params
from .serving_host import _STATE_TENSORS, _admit_host, host_contents
from .storage_tables import FEATURE_STORAGE_OFFSET, FeatureStorages, feature_storages

__all__ = ["FEATURE_STORAGE_OFFSET", "SERVING_MIX", "FeatureStorages", "feature_storages", "host_contents",
           "run_features", "sampler_state"]


def _uva_like_h100() -> None:
    """``UvaBuffer.__init__`` as on a GPU host (pinned CPU memory + its device view), and
    ``is_uva_available()`` as a CUDA platform with pinned memory answers it."""
    import torch
    from vllm.v1.worker.gpu import buffer_utils as bu

    def uva_init(self: Any, size: Any, dtype: Any) -> None:
        self.cpu = torch.zeros(size, dtype=dtype, device="cpu")      # pinned on a GPU host
        self.np = self.cpu.numpy()
        self._uva = torch.empty(self.cpu.shape, dtype=dtype, device="meta")   # its device view

    bu.UvaBuffer.__init__ = uva_init  # type: ignore[method-assign]
    bu.is_uva_available = lambda: True


def sampler_state(vllm_config: Any, mix: str = DEFAULT_MIX) -> dict[str, Any]:
    """The V2 runner's request state, input buffers and sampler (``GPUModelRunner.load_model``),
    for requests of sampling mix ``mix``."""
    import numpy as np
    import torch
    from vllm.config import set_current_vllm_config
    from vllm.v1.worker.gpu.input_batch import InputBuffers
    from vllm.v1.worker.gpu.sample.sampler import Sampler
    from vllm.v1.worker.gpu.states import RequestState

    from vkc.modeltrace.release_stubs import release_kwargs

    _uva_like_h100()
    np.random.seed(0)       # SamplingStates draws a seed per request without one: same trace every run
    mc, sc, spec = vllm_config.model_config, vllm_config.scheduler_config, vllm_config.speculative_config
    steps = int(vllm_config.num_speculative_tokens or 0)     # GPUModelRunner.num_speculative_steps
    dev = torch.device("meta")
    with set_current_vllm_config(vllm_config):
        # load_model's arguments, as far as the release's classes take them (release_kwargs; issue 14)
        req_states = RequestState(**release_kwargs(RequestState, {
            "max_num_reqs": sc.max_num_seqs, "max_model_len": mc.max_model_len,
            "max_num_batched_tokens": sc.max_num_batched_tokens, "num_speculative_steps": steps,
            "vocab_size": mc.get_vocab_size(), "device": dev, "num_prefill_lookahead": 1,
            "use_dense_all_token_ids": spec is not None and spec.use_ngram()}))
        buffers = InputBuffers(max_num_reqs=sc.max_num_seqs, max_num_tokens=sc.max_num_batched_tokens, device=dev)
        kwargs = {"max_num_reqs": sc.max_num_seqs, "vocab_size": mc.get_vocab_size(), "device": dev,
                  "req_states": req_states, "logprobs_mode": mc.logprobs_mode, "num_speculative_tokens": steps + 1,
                  "use_fp64_gumbel": getattr(mc, "use_fp64_gumbel", False),
                  "enable_trace_replay": getattr(mc, "enable_trace_replay", False),
                  "return_sampling_mask": getattr(mc, "return_sampling_mask", False), "custom_logits_processors": ()}
        if getattr(vllm_config, "watermark_config", None) is None:
            sampler = Sampler(**release_kwargs(Sampler, {"vllm_config": vllm_config, **kwargs}))
        else:                           # --watermark-config: vLLM's watermarking sampler
            from .watermark import watermark_sampler

            sampler = watermark_sampler(vllm_config, **kwargs)
        rejection = None
        if spec is not None:
            from vllm.v1.worker.gpu.spec_decode.rejection_sampler import RejectionSampler

            rejection = RejectionSampler(sampler, spec, dev, watermark_key=None)
    _name_state(sampler, req_states, buffers)
    from .mix_worker import name_mix_state, prompt_logprobs_worker

    if mix != DEFAULT_MIX:
        name_mix_state(sampler)
    return {"req_states": req_states, "buffers": buffers, "sampler": sampler, "use_v2": _use_v2(vllm_config),
            "use_flashinfer": bool(sampler.use_flashinfer), "rejection_sampler": rejection,
            "decode_query_len": steps + 1, "mix": mix, "prompt_logprobs_worker": prompt_logprobs_worker(vllm_config)}


def _use_v2(vllm_config: Any) -> bool:
    try:
        return bool(vllm_config.use_v2_model_runner)
    except Exception:  # noqa: BLE001 -- reported, not fatal
        return False


def _name_state(sampler: Any, req_states: Any, buffers: Any) -> None:
    """Producers the artifacts can read: per-request sampling parameters and the runner's buffers."""
    from vkc.modeltrace.recorder import RECORDER

    for holder, names in _STATE_TENSORS:
        obj = getattr(sampler, holder)
        for n in names:
            for buf in getattr(obj, n).pool._uva_bufs:
                RECORDER.name_storage(buf._uva, f"sampling_params:{n}")
    RECORDER.name_storage(sampler.penalties_state.prompt_bin_mask, "sampler_state:prompt_bin_mask")
    RECORDER.name_storage(sampler.penalties_state.output_bin_counts, "sampler_state:output_bin_counts")
    RECORDER.name_storage(req_states.all_token_ids.gpu, "request_state:all_token_ids")
    for n in ("prompt_len", "prefill_len"):
        for buf in getattr(req_states, n).pool._uva_bufs:
            RECORDER.name_storage(buf._uva, f"request_state:{n}")
    for n in ("input_ids", "positions", "query_start_loc", "seq_lens", "is_padding"):
        RECORDER.name_storage(getattr(buffers, n), f"input_buffers:{n}")


def _admit(state: dict[str, Any], num_reqs: int, prompt_len: int, computed: int) -> None:
    """``GPUModelRunner.add_requests`` for ``num_reqs`` requests of ``prompt_len`` prompt tokens,
    request ``i`` with its mix's sampling parameters (:func:`vkc.modeltrace.mixes.sampling_params`)."""
    from .mix_worker import add_request
    from .release_stubs import release_kwargs
    from .watermark import resolve_watermarking

    rs, sampler = state["req_states"], state["sampler"]
    for req_id in sorted(rs.req_id_to_index):           # the previous step's requests finish
        rs.remove_request(req_id)
    vocab = state["vllm_config"].model_config.get_vocab_size()
    for i in range(num_reqs):
        req_id = f"req-{i}"
        params = resolve_watermarking(state["vllm_config"], sampling_params(state["mix"], i, vocab, 256))
        rs.add_request(req_id=req_id, prompt_len=prompt_len, all_token_ids=[0] * prompt_len,
                       num_computed_tokens=computed, max_tokens=256)
        sampler.add_request(**release_kwargs(sampler.add_request, {
            "req_idx": rs.req_id_to_index[req_id], "prompt_len": prompt_len, "sampling_params": params}))
        add_request(state, req_id, params)
    with _admit_host(state):
        rs.apply_staged_writes()
        sampler.apply_staged_writes()


def _batch(state: dict[str, Any], num_reqs: int, tokens: int) -> Any:
    """``InputBatch.make_dummy`` (the batch of ``_dummy_sampler_run``) with the request slots of the
    admitted requests, as ``GPUModelRunner.prepare_inputs`` maps them (``req_id_to_index``)."""
    import dataclasses

    import numpy as np
    import torch
    from vllm.v1.worker.gpu.input_batch import InputBatch, prepare_pos_seq_lens

    from vkc.modeltrace.recorder import RECORDER

    batch = InputBatch.make_dummy(num_reqs, tokens, state["buffers"])
    rs = state["req_states"]
    idx_np = np.fromiter((rs.req_id_to_index[f"req-{i}"] for i in range(num_reqs)), dtype=np.intp, count=num_reqs)
    idx = torch.empty(num_reqs, dtype=torch.int64, device="meta")
    RECORDER.name_storage(idx, "metadata:idx_mapping")
    # positions and seq_lens of the real step (make_dummy's are a profiling run's): as prepare_inputs
    RECORDER.stack = ["sampler.prepare"]
    prepare_pos_seq_lens(idx, batch.query_start_loc, rs.num_computed_tokens.gpu, state["buffers"].positions,
                         state["buffers"].seq_lens)
    RECORDER.stack = ["sampler"]
    state["idx_mapping"], state["idx_mapping_np"] = idx, idx_np
    state["batch"] = dataclasses.replace(batch, req_ids=[f"req-{i}" for i in range(num_reqs)], idx_mapping=idx,
                                         idx_mapping_np=idx_np, expanded_idx_mapping=idx,
                                         prefill_len_np=rs.prefill_len.np[idx_np],     # host arrays, as prepare_inputs
                                         num_computed_prefill_tokens_np=rs.num_computed_prefill_tokens[idx_np])
    return state["batch"]


def _bitmask_worker(state: dict[str, Any]) -> Any:
    """``GPUModelRunner.load_model``'s ``StructuredOutputsWorker`` (decode query length 1)."""
    import torch
    from vllm.v1.worker.gpu.structured_outputs import StructuredOutputsWorker

    from vkc.modeltrace.recorder import RECORDER
    from vkc.modeltrace.release_stubs import release_kwargs

    if "bitmask_worker" not in state:
        vc = state["vllm_config"]
        q = int(state["decode_query_len"])
        # the arguments load_model passes, as far as the release's worker takes them (issue 14): 0.25.0's
        # takes no mask_stride, 0.30.0 - 0.32.0's a num_bonus_tokens (the model state's new sampled tokens
        # per step: 1 without drafts); an argument vkc cannot answer fails the feature, loudly
        known = {"max_num_logits": vc.scheduler_config.max_num_seqs * q,
                 "vocab_size": vc.model_config.get_vocab_size(), "device": torch.device("meta"),
                 "mask_stride": q, "num_bonus_tokens": 1}
        w = StructuredOutputsWorker(**release_kwargs(StructuredOutputsWorker, known))
        RECORDER.name_storage(w.grammar_bitmask, "structured_output:grammar_bitmask")
        RECORDER.name_storage(w.logits_indices, "structured_output:logits_indices")
        state["bitmask_worker"] = w
    return state["bitmask_worker"]


def _apply_bitmask(state: dict[str, Any], logits: Any, batch: Any) -> None:
    """``GPUModelRunner.sample``: ``apply_grammar_bitmask`` on the logits, every request under a
    grammar (:data:`BITMASK_MIX`); the host bitmask is the grammar's (any bits: here all allowed)."""
    import numpy as np
    from vllm.utils.math_utils import cdiv

    w = _bitmask_worker(state)
    n = batch.num_reqs
    q = int(getattr(w, "mask_stride", 1))      # 0.25.0's worker has one logit row per request
    bitmask = np.full((n * q, cdiv(logits.shape[-1], 32)), -1, dtype=np.int32)
    w.apply_grammar_bitmask(logits, batch, list(batch.req_ids), bitmask)
    # the host arrays it copied to the device: the bitmask rows and each row's logit (req * stride + pos)
    state["bitmask_host"] = (w, bitmask, list(range(n * q)))


def run_features(state: dict[str, Any], step: dict[str, Any], logits: Any, features: tuple[str, ...],
                 forward: tuple[Any, Any] | None = None,
                 ctx: dict[str, Any] | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
    """Admit the step's requests (recorded in a prefill step), then, as ``GPUModelRunner.sample``
    does, apply the grammar bitmask (``bitmask``) and sample (``sampler``) the step's ``logits``,
    then (``sample_tokens``) the prompt logprobs over ``forward`` = (hidden states, the model's
    ``compute_logits``); last, the runner's own per-step launches (:mod:`vkc.modeltrace.runner_prepare`,
    with the worker's ``ctx``); returns (contents, pointers): :func:`host_contents` and the runner
    steps' buffers by storage id, and the address tables' targets."""
    from vllm.config import set_current_vllm_config

    from vkc.modeltrace.launches import capture_module
    from vkc.modeltrace.recorder import RECORDER, make_dispatch_mode

    tw = capture_module()
    b = int(step["batch"])
    prefill = step["workload"] == "prefill"
    verify = not prefill and state.get("rejection_sampler") is not None     # decode with drafts
    q = 1 if not verify else int(state["decode_query_len"])
    # a decode step's context (ctx) ends with its q new tokens: the rest is computed (all prompt)
    prompt = int(step["prompt_len"]) if prefill else max(1, int(step["ctx"]) - q)
    tokens = b * (prompt if prefill else q)
    launches = tw.STATE.launches
    with set_current_vllm_config(state["vllm_config"]), make_dispatch_mode():
        try:
            RECORDER.active = prefill
            RECORDER.stack = ["sampler.admit"]
            if not prefill:             # admitted steps before: its launches are not this step's
                tw.STATE.launches = []
            _admit(state, b, prompt, 0 if prefill else prompt)
            tw.STATE.launches = launches
            RECORDER.active = True
            RECORDER.stack = ["sampler"]
            batch = _batch(state, b, tokens)
            if verify:
                from vkc.modeltrace.spec import spec_batch

                RECORDER.stack = ["sampler.spec"]
                batch = spec_batch(state, batch)
                RECORDER.stack = ["sampler"]
            if "bitmask" in features:
                RECORDER.stack = ["sampler.bitmask"]
                _apply_bitmask(state, logits, batch)
                RECORDER.stack = ["sampler"]
            out = None
            if verify:
                out = state["rejection_sampler"](logits, batch)
            elif "sampler" in features or "spec" in features or "watermark" in features:
                out = state["sampler"](logits, batch)
            if "spec" in features and out is not None:     # sample_tokens' tail: postprocess, the drafter
                from .spec import after_sample

                RECORDER.stack = ["sampler.propose"]
                after_sample(state, batch, out, ctx, forward[0] if forward is not None else None)
                RECORDER.stack = ["sampler"]
            if forward is not None:
                from .mix_worker import prompt_logprobs

                RECORDER.stack = ["sampler.prompt_logprobs"]
                prompt_logprobs(state, batch, *forward)
                RECORDER.stack = ["sampler"]
            # the spec feature's after_sample ran postprocess_sampled already
            return _runner_steps(ctx, state, step, batch, out if "spec" not in features else None, prefill, verify)
        finally:
            tw.STATE.launches = launches
            RECORDER.active = False
            RECORDER.stack = []


def _runner_steps(ctx: dict[str, Any] | None, state: dict[str, Any], step: dict[str, Any], batch: Any, out: Any,
                  prefill: bool, verify: bool) -> tuple[dict[str, Any], dict[str, Any]]:
    """:func:`vkc.modeltrace.runner_prepare.prepare_and_update`, then :func:`host_contents` (inside its
    storage table: a runner buffer first read there, ``last_sampled_tokens``, is found); where it fails (a
    release or model whose runner it cannot mirror) its events are dropped, the sampler's stay, and the
    trace's warnings say so."""
    from vkc.modeltrace.recorder import RECORDER

    from .runner_prepare import KV_CONFIG, prepare_and_update

    def host() -> dict[str, Any]:
        return host_contents(state, state["idx_mapping_np"])

    if ctx is None or "config" not in KV_CONFIG:
        return host(), {}
    n = len(RECORDER.events)
    try:
        return prepare_and_update(ctx, state, batch, out, prefill, verify, host)
    except Exception as e:  # noqa: BLE001 -- reported, the rest of the step stands
        del RECORDER.events[n:]
        RECORDER.warnings.append(f"the runner's per-step launches (prepare_inputs, prepare_attn, postprocess_sampled) "
                                 f"not traced in step {step['id']}: {type(e).__name__}: {e}".splitlines()[0][:400])
        return host(), {}
