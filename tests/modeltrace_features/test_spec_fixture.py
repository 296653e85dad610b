"""Speculative decoding (n-gram, 3 drafts) from a recorded trace (no vLLM run).

Fixture: ``tests/data/modeltrace/llama-3.1-8b-instruct.spec.trace.json``, Llama-3.1-8B-Instruct (2 of
32 layers) traced with ``features=("sampler", "spec")`` at decode 64 x 4096 and prefill 4 x 2048.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from vkc.modeltrace.contents import step_contents
from vkc.modeltrace.features import features_of
from vkc.modeltrace.records import StepSpec, trace_from_json
from vkc.modeltrace.render import header

from .test_sampler_fixture import _common

DATA = Path(__file__).resolve().parents[1] / "data" / "modeltrace"
DECODE = StepSpec("decode", 64, ctx=4096)
PREFILL = StepSpec("prefill", 4, prompt_len=2048)
K = 3
VOCAB = 128256
ATTN = "vllm.v1.attention.ops.triton_unified_attention:kernel_unified_attention"
RS = "vllm.v1.worker.gpu.spec_decode.rejection_sampler_utils:"
VERIFY = ["vllm.v1.worker.gpu.spec_decode.rejection_sampler:_gather_draft_sampled_kernel",
          "vllm.v1.worker.gpu.sample.penalties:_penalties_kernel",
          "vllm.v1.worker.gpu.sample.gumbel:_temperature_kernel",
          "vllm.v1.sample.ops.topk_topp_triton:_topk_topp_kernel",
          RS + "_compute_local_logits_stats_kernel", RS + "_rejection_kernel", RS + "_resample_kernel",
          RS + "_insert_resampled_kernel",
          "vllm.v1.worker.gpu.input_batch:_get_num_sampled_and_rejected_kernel"]
PREPARE = ["vllm.v1.worker.gpu.input_batch:_expand_idx_mapping_kernel",
           "vllm.v1.worker.gpu.input_batch:_combine_sampled_and_draft_tokens_kernel"]


def _trace(name="llama-3.1-8b-instruct.spec.trace.json"):
    return trace_from_json(json.loads((DATA / name).read_text()))


def _triton(step, module):
    return [e for e in step.events if e.kind == "triton" and e.module == module]


def test_header():
    t = _trace()
    assert features_of(t) == ("sampler", "spec")
    assert "speculative decoding: n-gram, 3 draft tokens" in header(t, DECODE)["features_note"]


def test_decode_forward_verifies_four_tokens_per_sequence():
    step = _trace().step(DECODE)
    b = DECODE.batch
    assert step.num_tokens == b * (1 + K)
    attn = next(e for e in step.events if e.name == ATTN and e.layer == 0)
    assert dict(attn.args)["query_ptr"].shape == (b * (1 + K), 32, 128)
    assert attn.constexprs["BLOCK_Q"] == 4
    plain = next(e for e in _trace("llama-3.1-8b-instruct.trace.json").step(DECODE).events if e.name == ATTN)
    assert attn.grid != plain.grid                 # the step's own shape, not the q=1 one
    lm_head = [e for e in step.events if e.name == "aten::mm" and e.layer is None][-1]
    assert lm_head.outputs[0].shape == (b * (1 + K), VOCAB)


def test_draft_input_preparation_and_rejection_sampler():
    t = _trace()
    step = t.step(DECODE)
    b = DECODE.batch
    prep = _triton(step, "sampler.spec")
    assert [e.name for e in prep] == PREPARE and all(e.grid == (b,) for e in prep)
    ver = _triton(step, "sampler")
    assert [e.name for e in ver] == VERIFY
    by = {e.name: e for e in ver}
    rej = by[RS + "_rejection_kernel"]
    assert rej.grid == (b,) and dict(rej.args)["sampled_ptr"].shape == (b, 1 + K)
    pen = by[VERIFY[1]]
    assert pen.grid == (b * (1 + K), -(-VOCAB // pen.constexprs["BLOCK_SIZE"]))
    assert dict(pen.args)["logits_ptr"].shape == (b * (1 + K), VOCAB)
    assert by[VERIFY[3]].grid == (132,)            # min(num SMs, 256 rows)
    res = by[RS + "_resample_kernel"]
    assert res.grid == (b, -(-VOCAB // res.constexprs["BLOCK_SIZE"]))
    assert [e.name for e in _triton(step, "sampler") if "gumbel_sample" in e.name] == []   # not the plain sampler
    known = step_contents(t, DECODE)
    cu = dict(by[VERIFY[-1]].args)["cu_num_logits_ptr"]
    assert known[cu.base].values() == list(range(0, b * (1 + K) + 1, 1 + K))


def test_prefill_is_the_plain_sampler_and_forward():
    spec_step = _trace().step(PREFILL)
    plain = _trace("llama-3.1-8b-instruct.trace.json").step(PREFILL)
    names = [e.name for e in _triton(spec_step, "sampler")]
    assert names[-2:] == ["vllm.v1.worker.gpu.sample.gumbel:_gumbel_sample_kernel",
                          "vllm.v1.worker.gpu.input_batch:_get_num_sampled_and_rejected_kernel"]
    forward = [e for e in spec_step.events if not (e.module or "").startswith("sampler")]
    assert [_common(e) for e in forward] == [_common(e) for e in plain.events]


@pytest.mark.parametrize("spec", [DECODE, PREFILL], ids=lambda s: s.id)
def test_layers_are_none_for_feature_events(spec):
    step = _trace().step(spec)
    assert all(e.layer is None for e in step.events if (e.module or "").startswith("sampler"))


def test_index_contents_of_the_verification_path():
    """Every integer argument has vLLM's values except what the rejection kernels themselves
    compute from the logits (argmaxes, accepted counts, sampled tokens)."""
    t = _trace()
    step, known = t.step(DECODE), step_contents(t, DECODE)
    unknown = {(e.name.split(":")[-1], n) for e in step.events
               if e.kind == "triton" and (e.module or "").startswith("sampler")
               for n, a in e.tensors() if a.dtype.startswith(("int", "uint")) and a.base not in known}
    from_logits = {"target_local_argmax_ptr", "sampled_ptr", "rejected_steps_ptr", "rejected_step_ptr",
                   "resampled_local_argmax_ptr", "num_sampled_ptr", "num_rejected_ptr"}
    assert unknown and {n for _k, n in unknown} <= from_logits, sorted(unknown)
    gather = dict(next(e for e in step.events if e.name == VERIFY[0]).args)
    b = DECODE.batch
    assert known[gather["pos_ptr"].base].values() == [DECODE.ctx - 1 - K + j for _ in range(b) for j in range(1 + K)]
    assert known[gather["draft_sampled_ptr"].base].values() == [0] * (b * (1 + K))   # the (zero) drafts
    exp = dict(next(e for e in step.events if e.name == PREPARE[0]).args)
    slots = known[exp["idx_mapping_ptr"].base].values()
    assert known[exp["expanded_idx_mapping_ptr"].base].values() == [s for s in slots for _ in range(1 + K)]
    assert known[exp["expanded_local_pos_ptr"].base].values() == list(range(1 + K)) * b
