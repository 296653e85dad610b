"""Known contents of the featured step's index and parameter buffers (recorded fixture, no vLLM)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from vkc.modeltrace.contents import Contents, step_contents
from vkc.modeltrace.records import StepSpec, trace_from_json

DATA = Path(__file__).resolve().parents[1] / "data" / "modeltrace"
DECODE = StepSpec("decode", 64, ctx=4096)
PREFILL = StepSpec("prefill", 4, prompt_len=2048)
SAMPLER_KERNELS = ("_penalties_kernel", "_temperature_kernel", "_topk_topp_kernel", "_gumbel_sample_kernel",
                   "_get_num_sampled_and_rejected_kernel", "_apply_grammar_bitmask_kernel",
                   "_prepare_pos_seq_lens_kernel")
OUTPUTS = {"local_argmax_ptr", "local_max_ptr", "num_rejected_ptr", "BUFFER", "pos_ptr", "seq_lens_ptr"}


def _trace(name="llama-3.1-8b-instruct.sampler.trace.json"):
    return trace_from_json(json.loads((DATA / name).read_text()))


def _launch(step, short):
    return next(e for e in step.events if e.kind == "triton" and e.name.endswith(":" + short))


def test_runs():
    c = Contents.of([3, 3, 1, 3])
    assert c.runs == ((3, 2), (1, 1), (3, 1)) and c.numel == 4 and c.values() == [3, 3, 1, 3] and c.const is None
    assert Contents.of([0] * 5).const == 0


@pytest.mark.parametrize("spec", [DECODE, PREFILL], ids=lambda s: s.id)
def test_every_integer_argument_of_the_sampler_kernels_is_known(spec):
    t = _trace()
    step, known = t.step(spec), step_contents(t, spec)
    missing = []
    for short in SAMPLER_KERNELS:
        ev = _launch(step, short)
        for n, a in ev.tensors():
            if n in OUTPUTS or not a.dtype.startswith(("int", "uint")):
                continue
            if a.base not in known:
                missing.append(f"{short}.{n} ({a.producer})")
    assert missing == []

@pytest.mark.parametrize("spec", [DECODE, PREFILL], ids=lambda s: s.id)
def test_values_are_vllms(spec):
    t = _trace()
    step, known = t.step(spec), step_contents(t, spec)
    b = spec.batch
    pen = dict(_launch(step, "_penalties_kernel").args)
    slots = known[pen["expanded_idx_mapping_ptr"].base].values()
    assert len(slots) == b and len(set(slots)) == b and all(0 <= s < 256 for s in slots)
    topk = dict(_launch(step, "_topk_topp_kernel").args)
    assert known[topk["K"].base].values() == [50] * b                  # top_k.gpu[expanded_idx_mapping]
    assert [round(p, 4) for p in known[topk["P"].base].values()] == [0.9] * b
    tokens = known[pen["token_ids_ptr"].base].values()
    assert tokens == [0] * b                                            # input_ids[logits_indices]
    ns = dict(_launch(step, "_get_num_sampled_and_rejected_kernel").args)
    assert known[ns["num_sampled_ptr"].base].values() == [1] * b        # seq_lens.new_ones(num_reqs)
    assert known[ns["cu_num_logits_ptr"].base].values() == list(range(b + 1))
    ctx = spec.ctx if spec.workload == "decode" else spec.prompt_len
    seq = known[ns["seq_lens_ptr"].base].values()
    assert seq[:b] == [ctx] * b and set(seq[b:]) <= {0}                 # prepare_pos_seq_lens: computed + q
    pos_t = dict(_launch(step, "_prepare_pos_seq_lens_kernel").args)["pos_ptr"]
    pos = known[pos_t.base].values()
    n_tok = b * (1 if spec.workload == "decode" else spec.prompt_len)
    assert pos[:n_tok] == ([ctx - 1] * b if spec.workload == "decode" else list(range(ctx)) * b)
    prefill_len = known[ns["prefill_len_ptr"].base].values()
    expect = spec.ctx - 1 if spec.workload == "decode" else spec.prompt_len
    assert {prefill_len[s] for s in slots} == {expect}
    counts = known[pen["output_bin_counts_ptr"].base]
    assert counts.const == 0 and counts.numel == 256 * 128256
    bm = dict(_launch(step, "_apply_grammar_bitmask_kernel").args)
    mask = known[bm["bitmask_ptr"].base]
    assert mask.runs == ((-1, b * 4008), (0, (256 - b) * 4008))         # every token allowed, b rows
    assert known[bm["logits_indices_ptr"].base].values()[:b] == list(range(b))


def test_a_plain_trace_has_no_contents():
    t = _trace("llama-3.1-8b-instruct.trace.json")
    assert step_contents(t, DECODE) == {}
