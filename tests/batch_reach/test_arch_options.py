"""Architecture sources: the ``kda-prefill-backend`` serving key (vLLM's ``--kda-prefill-backend``) and
the optional SMALL steps of a model-traced trace (a failed SMALL step leaves the FULL steps standing);
no vLLM run."""
from __future__ import annotations

import dataclasses
import json
import types
from pathlib import Path

import pytest

from vkc.errors import InvocationError, ModelError
from vkc.invoke.triton.modeltraced import session
from vkc.modelcfg import load_model
from vkc.modelcfg.fetch import fetch_config
from vkc.modelcfg.variants import SERVING_KEYS, parse_variant
from vkc.modeltrace import trace as trace_mod
from vkc.modeltrace.features import with_features
from vkc.modeltrace.layers import plan_layers
from vkc.modeltrace.records import StepSpec, TraceOptions, trace_from_json, trace_to_json

GLM = "defaults:Glm5NextForCausalLM"
KDA = f"{GLM}@kda-prefill-backend=triton"
QWEN4 = "defaults:Qwen4ExpForCausalLM"
DATA = Path(__file__).resolve().parents[1] / "data" / "modeltrace"


@pytest.fixture(autouse=True)
def _offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


# ----------------------------------------------------------------------------- kda-prefill-backend


def test_kda_prefill_backend_takes_only_the_in_tree_triton_prefill():
    assert SERVING_KEYS["kda-prefill-backend"] == ("triton",)
    v = parse_variant(KDA)
    assert v is not None and v.defaults == "Glm5NextForCausalLM" and v.option("kda-prefill-backend") == "triton"


@pytest.mark.parametrize("value", ["flashkda", "flashinfer", "fused", "auto", "Triton"])
def test_other_kda_prefill_backends_are_model_errors(value):
    with pytest.raises(ModelError) as e:
        load_model(f"{GLM}@kda-prefill-backend={value}")
    assert "kda-prefill-backend=triton" in e.value.hint


def test_the_kda_key_sets_the_trace_option_and_nothing_else():
    plain = session.trace_options(load_model(GLM))
    assert plain.kda_prefill_backend is None
    assert session.trace_options(load_model(KDA)) == dataclasses.replace(plain, kda_prefill_backend="triton")
    assert fetch_config(KDA).config == fetch_config(GLM).config          # the config is the architecture's


def test_the_kda_option_is_in_the_worker_options_and_the_key_only_when_set():
    cfg = dict(fetch_config(GLM).config)
    opts = TraceOptions((StepSpec("prefill", 1, prompt_len=16),))
    plain = trace_mod._worker_options(opts, plan_layers(cfg))
    assert "kda_prefill_backend" not in plain                             # other traces keep their keys
    kda = dataclasses.replace(opts, kda_prefill_backend="triton")
    assert trace_mod._worker_options(kda, plan_layers(cfg)) == {**plain, "kda_prefill_backend": "triton"}
    tree = types.SimpleNamespace(root="/t", sha256="0" * 64, version="0.33.0")
    assert trace_mod.cache_key(tree, cfg, kda) != trace_mod.cache_key(tree, cfg, opts)


def test_the_kda_option_survives_features_and_the_json_form():
    opts = TraceOptions((StepSpec("decode", 8, ctx=128),), kda_prefill_backend="triton")
    assert with_features(opts, ["sampler"]).kda_prefill_backend == "triton"
    trace = trace_from_json(json.loads((DATA / "llama-3.1-8b-instruct.trace.json").read_text()))
    assert "kda_prefill_backend" not in trace_to_json(trace)["options"]     # recorded traces read and write as before
    k = dataclasses.replace(trace, options=dataclasses.replace(trace.options, kda_prefill_backend="triton"))
    assert trace_from_json(trace_to_json(k)).options.kda_prefill_backend == "triton"


def test_the_worker_passes_it_to_vllms_engine_args(fake_engine_args):
    from vkc.modeltrace import startup

    opts = fake_engine_args
    assert startup.engine_config("/m", opts).kda_prefill_backend is None                # vLLM's default ("auto")
    assert startup.engine_config("/m", {**opts, "kda_prefill_backend": "triton"}).kda_prefill_backend == "triton"


# ----------------------------------------------------------------------------- optional SMALL steps


def test_model_traced_traces_take_the_small_steps_as_optional():
    opts = session.trace_options(load_model(QWEN4))
    assert set(opts.optional_steps) == {s.id for s in session.SMALL_STEPS.values()}
    assert not set(opts.optional_steps) & {s.id for s in session.FULL_STEPS.values()}


def _resp(ok: dict[str, bool]) -> dict:     # the worker's response (worker.main: the first failed step's error)
    err = None if all(ok.values()) else "ModuleNotFoundError: No module named 'cutlass'"
    return {"ok": all(ok.values()), "error": err, "steps": [
        {"id": sid, "ok": good, "error": None if good else "ModuleNotFoundError: No module named 'cutlass'",
         "traceback": "" if good else 'File "/x/vllm/models/a.py", line 3, in f\n', "events": []}
        for sid, good in ok.items()]}


SMALL, FULL = "decode-b2-ctx64", "decode-b64-ctx4096"
OPTS = TraceOptions((StepSpec("decode", 2, ctx=64), StepSpec("decode", 64, ctx=4096)), optional_steps=(SMALL,))


def test_a_failed_optional_step_leaves_the_trace_standing_and_says_why():
    failed = trace_mod._optional_failures(_resp({SMALL: False, FULL: True}), OPTS)
    assert list(failed) == [SMALL] and "cutlass" in failed[SMALL] and "vllm/models/a.py" in failed[SMALL]


@pytest.mark.parametrize("ok", [{SMALL: True, FULL: False}, {SMALL: False, FULL: False}, {SMALL: True, FULL: True}])
def test_a_failed_full_step_or_no_failure_is_not_an_optional_failure(ok):
    assert trace_mod._optional_failures(_resp(ok), OPTS) == {}
    assert trace_mod._optional_failures(_resp({SMALL: False, FULL: True}),
                                        dataclasses.replace(OPTS, optional_steps=())) == {}


def test_a_start_up_failure_is_never_optional():
    resp = {"ok": False, "error": "RuntimeError: x", "traceback": "tb", "steps": []}
    assert trace_mod._optional_failures(resp, OPTS) == {}


def test_the_worker_result_with_a_failed_optional_step_is_returned_not_raised(monkeypatch):
    resp = _resp({SMALL: False, FULL: True})
    proc = types.SimpleNamespace(stdout=json.dumps(resp), stderr="", returncode=0)
    monkeypatch.setattr(trace_mod.subprocess, "run", lambda *a, **k: proc)
    tree = types.SimpleNamespace(root="/t", sha256="0" * 64, version="0.33.0")
    plan = plan_layers({"num_hidden_layers": 1, "architectures": ["LlamaForCausalLM"]})
    assert trace_mod._run_worker(tree, plan, OPTS)["steps"][1]["ok"]
    with pytest.raises(InvocationError, match="cutlass"):
        trace_mod._run_worker(tree, plan, dataclasses.replace(OPTS, optional_steps=()))


def test_optional_steps_are_in_the_key_and_the_json_form():
    cfg = dict(fetch_config(QWEN4).config)
    tree = types.SimpleNamespace(root="/t", sha256="0" * 64, version="0.33.0")
    assert trace_mod.cache_key(tree, cfg, OPTS) != trace_mod.cache_key(
        tree, cfg, dataclasses.replace(OPTS, optional_steps=()))
    trace = trace_from_json(json.loads((DATA / "llama-3.1-8b-instruct.trace.json").read_text()))
    assert "optional_steps" not in trace_to_json(trace)["options"]
    o = dataclasses.replace(trace, options=dataclasses.replace(trace.options, optional_steps=(SMALL,)))
    assert trace_from_json(trace_to_json(o)).options.optional_steps == (SMALL,)


def test_a_model_traced_example_without_its_small_step_runs_the_full_launch_at_small(monkeypatch, capsys):
    import vkc.invoke.triton.modeltraced.attempt as attempt_mod

    trace = trace_from_json(json.loads((DATA / "llama-3.1-8b-instruct.trace.json").read_text()))   # FULL steps only
    trace = dataclasses.replace(trace, notes={**trace.notes, "failed_steps": {SMALL: "ModuleNotFoundError: cutlass"}})
    monkeypatch.setenv("VKC_MODEL_TRACE", "1")
    monkeypatch.setattr(attempt_mod, "model_trace_for", lambda tree, m: trace)
    full = session.FULL_STEPS["decode"]
    kernel = next(e.name for e in trace.step(full).events if e.kind == "triton")
    a = attempt_mod.attempt(None, load_model("meta-llama/Llama-3.1-8B-Instruct"), kernel, "decode", name="k",
                            weaker="the recipe")
    assert a.plan is not None and a.fallback is None and a.trace is trace
    assert a.plan.small_step_id == full.id == a.plan.step_id
    assert a.plan.small.grid == a.plan.full.grid
    assert (f"SMALL is the FULL launch (step {full.id}): the model trace has no SMALL step {SMALL} "
            "(ModuleNotFoundError: cutlass)") in a.plan.notes
    assert capsys.readouterr().err == ""
