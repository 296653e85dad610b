"""The serving-feature sources traced for real (vLLM 0.33.0's V2-runner sampler on meta tensors).

One worker process per source (cached under ``$VKC_CACHE_DIR/modeltraces/``): the kernels each
source's FULL steps launch in the sampler modules, and the host contents the runner wrote into a
mix's per-request buffers (the artifacts' buffer contents).
"""
from __future__ import annotations

import pytest

from vkc.invoke.triton.modeltraced.session import FULL_STEPS, model_trace_for
from vkc.modelcfg import load_model

pytestmark = [pytest.mark.sdist, pytest.mark.heavy]  # real vLLM traces in worker subprocesses

LLAMA = "meta-llama/Llama-3.1-8B-Instruct"
G = "vllm.v1.worker.gpu."
EXPECT = {
    f"{LLAMA}@sampling=mixed": {"decode": {"sample.bad_words:_bad_words_kernel", "sample.logit_bias:_bias_kernel",
                                           "sample.min_p:_min_p_kernel", "sample.logprob:_topk_log_softmax_kernel",
                                           "sample.logprob:_ranks_kernel", "sample.logprob:_fill_logprob_token_ids_kernel"},
                                "prefill": {"sample.prompt_logprob:_prompt_logprobs_token_ids_kernel"}},
    f"{LLAMA}@speculative=ngram": {"decode": {"input_batch:_post_update_kernel",
                                              "spec_decode.ngram.speculator:_ngram_scan_kernel",
                                              "spec_decode.ngram.speculator:_ngram_finalize_kernel"}},
    f"{LLAMA}@speculative=ngram-block,sampling=mixed": {
        "decode": {"spec_decode.rejection_sampler_utils:_compute_cumulative_log_p_kernel",
                   "spec_decode.rejection_sampler:_flatten_sampled_kernel"}},
    f"{LLAMA}@watermark=gumbel": {"decode": {"sample.watermark:_repeated_context_mask_kernel"}},
    f"{LLAMA}@return-sampling-mask=true,compute-nans=true": {
        "decode": {"sample.output:_compact_sampling_mask_kernel", "metrics.logits:_num_nans_kernel"}},
    # drafter models (vkc.modeltrace.spec_draft): DeepSeek-V3's MTP layer, a separate Llama-3.1-8B draft model
    "deepseek-ai/DeepSeek-V3@speculative=mtp": {
        "decode": {"spec_decode.target_dependent_ar.speculator:_prepare_prefill_inputs_kernel",
                   "spec_decode.target_dependent_ar.speculator:_prepare_decode_inputs_kernel",
                   "spec_decode.target_dependent_ar.speculator:_update_draft_inputs_kernel"}},
    "meta-llama/Llama-3.1-70B-Instruct@speculative=draft-model,draft-model=meta-llama/Llama-3.1-8B-Instruct": {
        "decode": {"spec_decode.standalone_ar.speculator:_prepare_prefill_inputs_kernel"}},
    "Qwen/Qwen3-8B@reasoning-parser=qwen3,sampling=thinking": {
        "decode": {"sample.thinking_budget:_update_committed_marker_cache_kernel",
                   "sample.thinking_budget:_thinking_budget_kernel"}},
}


@pytest.fixture(autouse=True)
def _offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


def _step(trace, workload):
    return next(s for s in trace.steps if s.spec == FULL_STEPS[workload])


@pytest.mark.parametrize("source", sorted(EXPECT))
def test_source_launches_its_kernels(vllm_tree, source):
    trace = model_trace_for(vllm_tree, load_model(source))
    assert not [w for w in trace.warnings if "not traced" in w or "UNVERIFIED" in w]
    for workload, kernels in EXPECT[source].items():
        got = {e.name for e in _step(trace, workload).events if e.kind == "triton"}
        assert {G + k for k in kernels} <= got, sorted({G + k for k in kernels} - got)


def test_mixed_buffers_hold_the_mix_token_ids(vllm_tree):
    trace = model_trace_for(vllm_tree, load_model(f"{LLAMA}@sampling=mixed"))
    step = _step(trace, "decode")
    contents = trace.notes["features"]["steps"][step.spec.id]["runner"]["contents"]
    bad = next(e for e in step.events if e.name.endswith("_bad_words_kernel"))
    tokens = contents[dict(bad.args)["bad_word_token_ids_ptr"].base]["runs"]
    assert {v for v, _ in tokens} == {0, 300, 301, 302}
    bias = next(e for e in step.events if e.name.endswith("_bias_kernel"))
    values = contents[dict(bias.args)["bias_ptr"].base]["runs"]
    assert {v for v, _ in values} == {0.0, 2.0, -1.5}
    assert trace.notes["features"]["sampling_mix"] == "mixed"
