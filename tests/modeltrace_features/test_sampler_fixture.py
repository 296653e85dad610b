"""The sampler feature from a recorded trace (no vLLM run).

Fixture: ``tests/data/modeltrace/llama-3.1-8b-instruct.sampler.trace.json``, the ``trace_model``
cache file of Llama-3.1-8B-Instruct (2 of 32 layers) traced with ``features=("bitmask", "sampler")``
at the default steps (decode 64 x 4096, prefill 4 x 2048), next to the plain fixture of the same model.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from vkc.modeltrace.features import features_of
from vkc.modeltrace.records import StepSpec, TensorArg, trace_from_json, trace_to_json
from vkc.modeltrace.render import header, kernel_rows, render_json, render_table

DATA = Path(__file__).resolve().parents[1] / "data" / "modeltrace"
SAMPLER = DATA / "llama-3.1-8b-instruct.sampler.trace.json"
PLAIN = DATA / "llama-3.1-8b-instruct.trace.json"
DECODE = StepSpec("decode", 64, ctx=4096)
PREFILL = StepSpec("prefill", 4, prompt_len=2048)
VOCAB = 128256
H100_SMS = 132

PEN = "vllm.v1.worker.gpu.sample.penalties:_penalties_kernel"
TEMP = "vllm.v1.worker.gpu.sample.gumbel:_temperature_kernel"
TOPK = "vllm.v1.sample.ops.topk_topp_triton:_topk_topp_kernel"
GUMBEL = "vllm.v1.worker.gpu.sample.gumbel:_gumbel_sample_kernel"
NUM_SAMPLED = "vllm.v1.worker.gpu.input_batch:_get_num_sampled_and_rejected_kernel"
BINCOUNT = "vllm.v1.worker.gpu.sample.penalties:_bincount_kernel"
WRITE = "vllm.v1.worker.gpu.buffer_utils:_apply_write_kernel"
BITMASK = "vllm.v1.worker.gpu.structured_outputs:_apply_grammar_bitmask_kernel"
PER_STEP = (PEN, TEMP, TOPK, GUMBEL, NUM_SAMPLED)


def _trace(path=SAMPLER):
    return trace_from_json(json.loads(path.read_text()))


def _sampler_events(step, module="sampler"):
    return [e for e in step.events if e.module == module]


def _one(step, name):
    evs = [e for e in step.events if e.name == name]
    assert len(evs) == 1, (name, len(evs))
    return evs[0]


def _cdiv(a, b):
    return -(-a // b)


def test_header_records_the_features():
    t = _trace()
    assert features_of(t) == ("bitmask", "sampler")
    note = t.notes["features"]
    assert note["sampling_params"] == {"temperature": 0.7, "top_p": 0.9, "top_k": 50, "repetition_penalty": 1.1,
                                       "frequency_penalty": 0.2, "presence_penalty": 0.0}
    assert {s["runner"]["model_runner"] for s in note["steps"].values()} == {"v2"}
    assert {s["runner"]["fused_sampler"] for s in note["steps"].values()} == {"none"}
    h = header(t, DECODE)
    assert h["features"] == ["bitmask", "sampler"] and "FlashInfer" in h["features_note"]
    assert features_of(_trace(PLAIN)) == () and "features" not in header(_trace(PLAIN), DECODE)


@pytest.mark.parametrize("spec", [DECODE, PREFILL], ids=lambda s: s.id)
def test_sampler_kernels_at_the_step_shapes(spec):
    step = _trace().step(spec)
    trit = [e for e in _sampler_events(step) if e.kind == "triton"]
    assert [e.name for e in trit] == list(PER_STEP)         # vLLM's pipeline order
    assert all(e.layer is None for e in step.events if (e.module or "").startswith("sampler"))
    b = spec.batch
    for name in (PEN, TEMP, TOPK):
        logits = next(t for n, t in _one(step, name).tensors() if n in ("logits_ptr", "LOGITS"))
        assert (logits.shape, logits.dtype) == ((b, VOCAB), "float32")       # the fp32 copy vLLM samples
        assert logits.producer.startswith("event:")
    pen = _one(step, PEN)
    assert pen.grid == (b, _cdiv(VOCAB, pen.constexprs["BLOCK_SIZE"]))
    assert _one(step, TEMP).grid == (b, _cdiv(VOCAB, _one(step, TEMP).constexprs["BLOCK_SIZE"]))
    topk = _one(step, TOPK)
    assert topk.grid == (min(H100_SMS, b),) and topk.constexprs["TOPK_ENABLED"] and topk.constexprs["TOPP_ENABLED"]
    assert topk.constexprs["BLOCK_SIZE"] == 8192 and topk.num_warps == 8     # vLLM's GPU tiles, not its CPU ones
    g = _one(step, GUMBEL)
    assert g.grid == (b, _cdiv(VOCAB, g.constexprs["BLOCK_SIZE"]))
    assert dict(g.args)["local_argmax_ptr"].shape == (b, g.grid[1])
    assert _one(step, NUM_SAMPLED).grid == (b,)


def test_sampler_reads_the_forward_logits_and_the_sampling_params():
    step = _trace().step(DECODE)
    lm_head = [e for e in step.events if e.name == "aten::mm" and e.layer is None][-1]
    out = lm_head.outputs[0]
    assert out.shape == (64, VOCAB)
    copy = next(e for e in _sampler_events(step) if e.name == "aten::copy_" and e.tensors()[0][1].shape == (64, VOCAB))
    assert dict(copy.args)["src"].base == out.base          # the fp32 copy of the step's own logits
    pen = dict(_one(step, PEN).args)
    for arg, param in (("repetition_penalty_ptr", "repetition_penalty"), ("frequency_penalty_ptr", "frequency_penalty")):
        assert pen[arg].producer == f"sampling_params:{param}"
    assert pen["expanded_idx_mapping_ptr"].producer == "metadata:idx_mapping"
    temp = dict(_one(step, TEMP).args)["temperature_ptr"]
    assert temp.producer == "sampling_params:temperature" and temp.shape == (256,)   # max_num_seqs slots


def test_admission_is_recorded_in_prefill_only():
    t = _trace()
    assert _sampler_events(t.step(DECODE), "sampler.admit") == []
    admit = [e.name for e in _sampler_events(t.step(PREFILL), "sampler.admit") if e.kind == "triton"]
    assert admit == [WRITE, WRITE, WRITE, BINCOUNT]
    bc = _one(t.step(PREFILL), BINCOUNT)
    assert bc.grid[0] == 4 and dict(bc.args)["all_token_ids_ptr"].producer == "request_state:all_token_ids"


def _common(ev):
    """What both fixtures record of an event (the plain one predates some recorder fields)."""
    def arg(a):
        if isinstance(a, TensorArg):
            return (a.dtype, a.shape, a.stride, a.offset, a.base, a.base_nbytes, a.producer)
        if isinstance(a, tuple):
            return tuple(arg(x) for x in a)
        return repr(a.value)
    return (ev.index, ev.kind, ev.name, ev.layer, ev.module, tuple((n, arg(a)) for n, a in ev.args),
            tuple(arg(o) for o in ev.outputs), ev.grid, dict(ev.constexprs), ev.num_warps, ev.num_stages)


@pytest.mark.parametrize("spec", [DECODE, PREFILL], ids=lambda s: s.id)
def test_forward_events_are_the_plain_traces(spec):
    feat, plain = _trace().step(spec), _trace(PLAIN).step(spec)
    forward = [e for e in feat.events if not (e.module or "").startswith("sampler")]
    assert len(forward) == len(plain.events) and len(feat.events) > len(forward)
    assert [_common(e) for e in forward] == [_common(e) for e in plain.events]
    assert list(feat.events[:len(forward)]) == forward                # the sampler comes after the forward
    feature_bases = {t.base for e in feat.events[len(forward):] for _n, t in e.tensors()
                     if not t.producer.startswith(("event:", "weight:", "input:"))}
    assert feature_bases and all(int(b[1:]) >= 1_000_000 for b in feature_bases if b not in
                                 {t.base for e in forward for _n, t in e.tensors()})


def test_rows_and_table_show_the_sampler():
    t = _trace()
    rows = [r for r in kernel_rows(t, DECODE) if r.layer_type == "sampler"]
    assert {r.name for r in rows if r.kind == "triton"} == set(PER_STEP)
    assert all(r.calls == 1 for r in rows)
    text = render_table(t, DECODE, width=220)
    assert "serving features: bitmask, sampler" in text and "│ sampler " in text and "│ sampler.bitmask " in text
    doc = json.loads(render_json(t, DECODE))
    assert {*PER_STEP, BITMASK} <= set(doc["tree_kernels"]) and doc["header"]["features"] == ["bitmask", "sampler"]


def test_fixture_round_trips():
    d = json.loads(SAMPLER.read_text())
    assert json.loads(json.dumps(trace_to_json(trace_from_json(d)), sort_keys=True)) == d


def _lm_head_logits(step):
    return [e for e in step.events if e.name == "aten::mm" and e.layer is None][-1].outputs[0]


@pytest.mark.parametrize("spec", [DECODE, PREFILL], ids=lambda s: s.id)
def test_grammar_bitmask_on_the_forward_logits(spec):
    step = _trace().step(spec)
    bm = _one(step, BITMASK)
    assert bm.module == "sampler.bitmask" and bm.layer is None
    assert step.events.index(bm) < step.events.index(_one(step, PEN))       # before sampling, as vLLM
    b = spec.batch
    assert bm.grid == (b, _cdiv(VOCAB, bm.constexprs["BLOCK_SIZE"]))
    args = dict(bm.args)
    logits = args["logits_ptr"]
    assert (logits.shape, logits.dtype, logits.base) == ((b, VOCAB), "bfloat16", _lm_head_logits(step).base)
    mask = args["bitmask_ptr"]
    assert (mask.shape, mask.dtype) == ((b, _cdiv(VOCAB, 32)), "int32") and mask.base_nbytes == 256 * 4008 * 4
    assert args["cu_num_logits_ptr"].shape == (b + 1,)


def _contents(t, spec):
    return t.notes["features"]["steps"][spec.id]["runner"]["contents"]


def _values(entry):
    return [v for v, n in entry["runs"] for _ in range(n)]


@pytest.mark.parametrize("spec", [DECODE, PREFILL], ids=lambda s: s.id)
def test_host_contents_of_the_index_and_parameter_buffers(spec):
    t = _trace()
    step, contents = t.step(spec), _contents(t, spec)
    pen = dict(_one(step, PEN).args)
    slots = _values(contents[pen["expanded_idx_mapping_ptr"].base])
    assert len(slots) == spec.batch and len(set(slots)) == spec.batch and all(0 <= x < 256 for x in slots)
    temp = dict(_one(step, TEMP).args)["temperature_ptr"]
    temps = _values(contents[temp.base])
    assert len(temps) == temp.base_nbytes // 4 == 256
    assert {round(temps[i], 4) for i in slots} == {0.7}
    rep = _values(contents[pen["repetition_penalty_ptr"].base])
    assert {round(rep[i], 4) for i in slots} == {1.1}
    topk = dict(_one(step, TOPK).args)
    # top-k is gathered per request before the kernel (sampling_states.top_k.gpu[expanded_idx_mapping])
    assert topk["K"].producer.startswith("event:")
