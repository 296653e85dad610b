"""Recorded op-job captures (``data/*.json``: the worker's answers, recorded with
``python tests/testtrace_cuda/record_captures.py``) turned into :class:`OpCallCapture` records, and
the public entry's choices, without running vLLM."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from vkc.modeltrace.records import ScalarArg, TensorArg
from vkc.records import SourceTree
from vkc.testtrace import Capture, OpCallCapture, TestJob, VllmTest, mode_of, op_call_of, op_calls_for, opcalls
from vkc.testtrace.harness import variants
from vkc.testtrace.trace import job_key

DATA = Path(__file__).parent / "data"
RMS = "csrc/layernorm_kernels.cu:rms_norm_kernel"
FLASH = "csrc/cache_kernels.cu:reshape_and_cache_flash_kernel"
ACT = "csrc/activation_kernels.cu:act_and_mul_kernel"


def capture(name: str) -> Capture:
    return Capture.from_json(json.loads((DATA / f"{name}.json").read_text()))


def test_a_size_of_the_tests_own_makes_it_vllm_sized():
    """hidden_size came from the model but num_tokens=7 is the test's: not the model's step."""
    call = op_call_of(capture("rms_norm"))
    assert (call.kernel, call.op, call.mode) == (RMS, "_C::rms_norm", "vllm-sized")
    assert call.mapped == {"hidden_size": "4096", "dtype": "bfloat16"}
    assert call.source.startswith("vllm-sized: tests/kernels/core/test_layernorm.py::test_rms_norm[")
    assert call.source.endswith("(from the model and workload: hidden_size=4096; the test's own sizes: num_tokens=7)")
    assert call.provenance_source == call.source.removeprefix("vllm-sized: ")


def test_test_traced_capture():
    cap = capture("rms_norm")
    cap = dataclasses.replace(cap, mapped=dict(cap.mapped, num_tokens="64"), params=dict(cap.params, num_tokens="64"))
    call = op_call_of(cap)
    assert call.mode == "test-traced"
    assert call.source.startswith("test-traced: tests/kernels/core/test_layernorm.py::test_rms_norm[")
    assert call.source.endswith("(from the model and workload: hidden_size=4096, num_tokens=64)")
    assert call.provenance_source == call.source.removeprefix("test-traced: ")
    args = dict(call.event.args)
    assert [n for n, _a in call.event.args] == ["result", "input", "weight", "epsilon"]
    assert args["input"] == TensorArg("bfloat16", (7, 4096), (4096, 1), 0, 2, "s1", 7 * 4096 * 2, "test")
    assert args["epsilon"] == ScalarArg(1e-6) and call.event.kind == "op"
    assert call.event.extra["written"] == ["result"] and call.event.extra["schema"].startswith("rms_norm(Tensor! result, Tensor input")
    assert call.contents == {} and call.launches is None


def test_vllm_sized_capture_with_an_uninitialised_output():
    call = op_call_of(capture("act_and_mul"))
    assert (call.op, call.mode) == ("_C::silu_and_mul", "vllm-sized")
    assert call.source.endswith("(the test's own sizes; none maps from the model)")
    producers = {n: t.producer for n, t in call.event.tensors()}
    assert producers == {"result": "uninit", "input": "test"}      # torch.empty output: no contents
    assert call.contents == {}


def test_index_contents_are_the_tests_own():
    call = op_call_of(capture("reshape_and_cache_flash"))
    args = dict(call.event.args)
    sm, kc, key = args["slot_mapping"], args["key_cache"], args["key"]
    assert call.mode == "vllm-sized" and call.mapped["num_heads"] == "32" and call.mapped["head_size"] == "128"
    assert "the test's own sizes: block_size=8, num_blocks=1024, num_tokens=42" in call.source
    assert set(call.contents) == {sm.base}                  # the one integer storage
    slots = call.contents[sm.base].values()
    assert len(slots) == sm.shape[0] == key.shape[0] and len(set(slots)) == len(slots)
    assert all(0 <= s < kc.shape[0] * kc.shape[1] for s in slots)
    assert args["key"].base == args["value"].base            # views of one storage keep one id
    assert args["kv_cache_dtype"] == ScalarArg("auto")


def test_noop_storages_get_no_contents():
    cap = capture("noop_input")
    call = op_call_of(cap)
    noop = [(n, t) for n, t in call.event.tensors() if t.producer.startswith("noop:")]
    assert noop, "the recorded capture takes a storage an earlier stand-in made"
    assert all(t.base not in call.contents for _n, t in noop)


def test_a_failed_job_gives_no_record(monkeypatch):
    failed = capture("failed")
    assert not failed.ok and failed.op_call is None and failed.category and "Traceback" not in failed.reason
    with pytest.raises(AssertionError):
        op_call_of(failed)


def test_json_round_trip():
    for name in ("rms_norm", "act_and_mul", "reshape_and_cache_flash"):
        call = op_call_of(capture(name))
        again = OpCallCapture.from_json(json.loads(json.dumps(call.to_json())))
        assert again == call


def test_entry_filters_and_switch(monkeypatch):
    tree = SourceTree(Path("/nonexistent"), "0.33.0", "test")
    other = op_call_of(capture("rms_norm"))
    monkeypatch.setattr(opcalls, "_index", lambda t: ({"_C::rms_norm": (RMS,)}, ()))
    answers = {RMS: [capture("failed"), capture("rms_norm")]}
    monkeypatch.setattr(opcalls, "op_captures", lambda t, ks, dims, max_tests: {k: answers[k] for k in ks})
    monkeypatch.setenv("VKC_TEST_TRACE", "0")
    assert op_calls_for(tree, "rms_norm_kernel", {}) == ()          # the source turned off
    monkeypatch.setenv("VKC_TEST_TRACE", "1")
    assert op_calls_for(tree, RMS, {}) == (other,)
    # a call vkc's dispatch rules say launches another kernel of the op is left out
    monkeypatch.setattr("vkc.invoke.cuda.modeltraced.dispatch.call_launches", lambda *a, **k: False)
    assert op_calls_for(tree, RMS, {}) == ()


def test_mode_follows_the_triton_rule():
    base = capture("rms_norm")
    assert mode_of(base) == "vllm-sized"                                                   # num_tokens=7 is its own
    assert mode_of(dataclasses.replace(base, mapped=dict(base.mapped, num_tokens="64"))) == "test-traced"
    assert mode_of(Capture(True, "t", RMS, mapped={"dtype": "bfloat16"})) == "vllm-sized"   # dtype is no size


@pytest.mark.sdist
def test_op_jobs_are_keyed_apart_from_triton_jobs(vllm_tree):
    t = VllmTest("tests/kernels/core/test_layernorm.py", "test_rms_norm", 1)
    triton, cuda = TestJob(t, RMS), TestJob(t, RMS, ops=("_C::rms_norm",))
    assert "ops" not in triton.request("0") and cuda.request("0")["ops"] == ["_C::rms_norm"]
    assert job_key(vllm_tree, triton) != job_key(vllm_tree, cuda)


def test_variants_flags_first_never_sizes():
    @pytest.mark.parametrize("hidden_size", [8, 768])
    @pytest.mark.parametrize("width", [0, 7, 83])
    @pytest.mark.parametrize("add_residual", [False, True])
    def fn(add_residual, width, hidden_size):
        pass

    assert variants(fn) == [{0: 1}, {1: 2}]        # add_residual=True, then width=83 (never 0, never hidden)

    @pytest.mark.parametrize("num_tokens", [7, 83])
    def batch(num_tokens):
        pass

    assert variants(batch) == []                   # the workload's step sets num_tokens
