"""End to end: vLLM 0.33.0's sampler traced after Llama's forward (one worker process, slow)."""
from __future__ import annotations

import pytest

from vkc.modeltrace.features import features_of, with_features

pytestmark = [pytest.mark.sdist, pytest.mark.slow]

PER_STEP = ["vllm.v1.worker.gpu.sample.penalties:_penalties_kernel",
            "vllm.v1.worker.gpu.sample.gumbel:_temperature_kernel",
            "vllm.v1.sample.ops.topk_topp_triton:_topk_topp_kernel",
            "vllm.v1.worker.gpu.sample.gumbel:_gumbel_sample_kernel",
            "vllm.v1.worker.gpu.input_batch:_get_num_sampled_and_rejected_kernel"]


def test_sampler_trace_matches_the_plain_forward(vllm_tree):
    from vkc.modelcfg import load_model
    from vkc.modeltrace import trace_model
    from vkc.modeltrace.records import StepSpec, TraceOptions, _event_to

    DECODE = StepSpec("decode", 64, ctx=4096)
    # the plain model-trace tests' options (tests/modeltrace/conftest.py): that trace is cached and shared
    DEFAULT_OPTIONS = TraceOptions((DECODE, StepSpec("prefill", 4, prompt_len=2048)))

    model = load_model("meta-llama/Llama-3.1-8B-Instruct")
    plain = trace_model(vllm_tree, model, DEFAULT_OPTIONS)
    feat = trace_model(vllm_tree, model, with_features(DEFAULT_OPTIONS, ["sampler"]), use_cache=False)
    assert features_of(feat) == ("sampler",) and features_of(feat.options) == ("sampler",)
    assert feat.fingerprint_status == "known" and not [w for w in feat.warnings if "UNVERIFIED" in w]
    for p, f in zip(plain.steps, feat.steps):
        forward = [e for e in f.events if not (e.module or "").startswith("sampler")]
        assert [_event_to(e) for e in forward] == [_event_to(e) for e in p.events]    # exactly, ids included
    step = feat.step(DECODE)
    names = [e.name for e in step.events if e.module == "sampler" and e.kind == "triton"]
    assert names == PER_STEP
    assert {e.grid for e in step.events if e.name == PER_STEP[0]} == {(64, 16)}


def test_spec_decode_trace(vllm_tree):
    """n-gram speculation, 3 drafts: decode verifies 4 tokens per sequence through vLLM's RejectionSampler."""
    from vkc.modelcfg import load_model
    from vkc.modeltrace import trace_model
    from vkc.modeltrace.records import StepSpec, TraceOptions

    decode = StepSpec("decode", 8, ctx=256)
    t = trace_model(vllm_tree, load_model("meta-llama/Llama-3.1-8B-Instruct"),
                    with_features(TraceOptions((decode,)), ["spec"]), use_cache=False)
    step = t.step(decode)
    assert step.num_tokens == 8 * 4
    names = [e.name.split(":")[-1] for e in step.events if e.kind == "triton" and (e.module or "").startswith("sampler")]
    assert names[:4] == ["_prepare_pos_seq_lens_kernel", "_expand_idx_mapping_kernel",
                         "_combine_sampled_and_draft_tokens_kernel", "_gather_draft_sampled_kernel"]
    assert "_rejection_kernel" in names and "_gumbel_sample_kernel" not in names
    assert t.fingerprint_status == "known"
