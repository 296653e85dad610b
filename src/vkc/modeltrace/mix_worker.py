"""Sampling mixes in the traced step, worker side (imports vLLM): what a mix's requests switch on.

:mod:`vkc.modeltrace.serving` admits every request with its mix's ``SamplingParams``
(:func:`vkc.modeltrace.mixes.sampling_params`); the ``Sampler`` then launches what the requests ask
for, through vLLM's own code (logit bias, min-p, bad words, logprobs).  This module adds what the
runner does beyond the sampler for a mix (each a checklist step, ``FEATURE_STEPS["sampling"]``):

* ``GPUModelRunner.load_model`` builds a ``PromptLogprobsWorker``; ``add_requests`` adds every
  request to it; ``sample_tokens`` calls ``compute_prompt_logprobs(model.compute_logits,
  hidden_states, input_batch, all_token_ids, num_computed_tokens, prompt_len)`` after sampling
  (module ``"sampler.prompt_logprobs"``; it launches only when a request of a prefill step asks for
  prompt logprobs);
* the logits processors' and the logprob state's per-request buffers are named
  (``sampling_params:<attr>``) for a non-default mix, so the artifacts' producers say what they hold;
  their contents come from admission's staged writes and UVA copies, as for the default mix.
"""
from __future__ import annotations

from typing import Any

__all__ = ["add_request", "name_mix_state", "prompt_logprobs", "prompt_logprobs_worker"]

# the Sampler's per-request state holders a mix can use (attribute -> what it holds)
_HOLDERS = ("logit_bias_state", "bad_words_state", "logprob_token_ids_state")


def _processors(sampler: Any) -> dict[str, Any]:
    """The sampler's state holders by name: its logits processors (by class) and the logprob state."""
    from vllm.v1.worker.gpu.sample.bad_words import BadWordsState
    from vllm.v1.worker.gpu.sample.logit_bias import LogitBiasState

    out: dict[str, Any] = {"logprob_token_ids_state": sampler.logprob_token_ids_state}
    for p in sampler.logits_processors:
        if isinstance(p, LogitBiasState):
            out["logit_bias_state"] = p
        elif isinstance(p, BadWordsState):
            out["bad_words_state"] = p
    return out


def name_mix_state(sampler: Any) -> None:
    """Name the per-request buffers of the logit-bias, bad-words and logprob-token-id states."""
    from vllm.v1.worker.gpu.buffer_utils import StagedWriteTensor, UvaBackedTensor

    from vkc.modeltrace.recorder import RECORDER

    holders = _processors(sampler)
    for holder in _HOLDERS:
        obj = holders[holder]
        for attr, v in sorted(vars(obj).items()):
            if isinstance(v, UvaBackedTensor):
                for buf in v.pool._uva_bufs:
                    RECORDER.name_storage(buf._uva, f"sampling_params:{attr}")
            elif isinstance(v, StagedWriteTensor):
                RECORDER.name_storage(v.gpu, f"sampling_params:{attr}")
    RECORDER.name_storage(sampler.req_states.total_len.gpu, "request_state:total_len")   # bad words read it


def prompt_logprobs_worker(vllm_config: Any) -> Any:
    """``GPUModelRunner.load_model``'s ``PromptLogprobsWorker``."""
    import torch
    from vllm.v1.worker.gpu.sample.prompt_logprob import PromptLogprobsWorker

    from vkc.modeltrace.release_stubs import release_kwargs

    known = {"max_num_reqs": vllm_config.scheduler_config.max_num_seqs, "device": torch.device("meta"),
             "logprobs_mode": vllm_config.model_config.logprobs_mode}
    return PromptLogprobsWorker(**release_kwargs(PromptLogprobsWorker, known))


def add_request(state: dict[str, Any], req_id: str, params: Any) -> None:
    """``add_requests``: the request's prompt-logprob options (a finished request's state removed first)."""
    w = state["prompt_logprobs_worker"]
    w.remove_request(req_id)
    w.add_request(req_id, state["req_states"].req_id_to_index[req_id], params)


def prompt_logprobs(state: dict[str, Any], batch: Any, hidden: Any, compute_logits: Any) -> int:
    """``sample_tokens``' ``compute_prompt_logprobs`` over the step's hidden states; the number of
    requests it returned prompt logprobs for (0: nothing launched)."""
    rs = state["req_states"]
    out = state["prompt_logprobs_worker"].compute_prompt_logprobs(
        compute_logits, hidden, batch, rs.all_token_ids.gpu, rs.num_computed_tokens.gpu, rs.prompt_len.np)
    return len(out)
