"""Quantization sources: the ``quantization`` serving key, ``composed:SCHEME:MODEL`` ids and the trace
options they give (:mod:`vkc.modelcfg.variants`, :mod:`vkc.modeltrace.variants`); no vLLM run."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from vkc.errors import ModelError
from vkc.invoke.triton.modeltraced import session
from vkc.modelcfg import load_model
from vkc.modelcfg.fetch import fetch_config
from vkc.modelcfg.variants import SERVING_KEYS, composed_ids, parse_variant
from vkc.modeltrace.features import features_of, with_features
from vkc.modeltrace.layers import plan_layers
from vkc.modeltrace.records import StepSpec, TraceOptions, trace_from_json, trace_to_json
from vkc.modeltrace.trace import _worker_options

LLAMA = "meta-llama/Llama-3.1-8B-Instruct"
QWEN_MOE = "Qwen/Qwen3-30B-A3B"
FP8 = f"{LLAMA}@quantization=fp8_per_tensor"
COMPOSED_DIR = Path(session.__file__).resolve().parents[3] / "modelcfg" / "composed"
DATA = Path(__file__).resolve().parents[1] / "data" / "modeltrace"


@pytest.fixture(autouse=True)
def _offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


def test_quantization_values_are_vllms_online_shorthands_without_fp8():
    values = SERVING_KEYS["quantization"]
    assert "fp8_per_tensor" in values and "fp8_per_block" in values
    assert "fp8" not in values             # 0.33.0's Fp8Config refuses a bf16 checkpoint
    assert "nvfp4_per_token" not in values  # Blackwell only; vkc traces an H100


@pytest.mark.parametrize("model", [f"{LLAMA}@quantization=fp8", f"{LLAMA}@quantization=nvfp4_per_token",
                                   f"{LLAMA}@quantization=fp8_per_tensor,quantization=fp8_per_block"])
def test_bad_quantization_values_are_model_errors(model):
    with pytest.raises(ModelError) as e:
        load_model(model)
    assert e.value.hint


def test_moe_wna16_is_a_quantization_value_for_a_composed_gptq_moe():
    assert "moe_wna16" in SERVING_KEYS["quantization"]
    model = f"composed:gptq:{QWEN_MOE}@quantization=moe_wna16"
    v = parse_variant(model)
    assert v is not None and v.composed == "gptq" and v.options == (("quantization", "moe_wna16"),)
    opts = session.trace_options(load_model(model))
    assert opts.quantization == "moe_wna16"
    assert opts == dataclasses.replace(session.trace_options(load_model(f"composed:gptq:{QWEN_MOE}")),
                                       quantization="moe_wna16")
    assert fetch_config(model).config["quantization_config"]["quant_method"] == "gptq"


def test_the_quantization_key_sets_the_trace_option_and_nothing_else():
    plain = session.trace_options(load_model(LLAMA))
    assert plain.quantization is None
    quant = session.trace_options(load_model(FP8))
    assert quant == dataclasses.replace(plain, quantization="fp8_per_tensor")
    assert features_of(quant) == features_of(plain)
    both = session.trace_options(load_model(f"{LLAMA}@quantization=fp8_per_block,kv-cache-dtype=fp8"))
    assert both == dataclasses.replace(plain, quantization="fp8_per_block", kv_cache_dtype="fp8")


def test_a_quantization_variant_is_its_base_config_unchanged():
    base, var = load_model(LLAMA), load_model(FP8)
    assert dataclasses.replace(var, model_id=LLAMA) == base
    assert fetch_config(FP8).config == fetch_config(LLAMA).config


def test_plain_worker_options_have_no_quantization_key():
    cfg = dict(fetch_config(LLAMA).config)
    opts = TraceOptions((StepSpec("decode", 8, ctx=128),))
    plain = _worker_options(opts, plan_layers(cfg))
    assert "quantization" not in plain                       # the plain traces' cache keys stay
    quant = _worker_options(dataclasses.replace(opts, quantization="fp8_per_tensor"), plan_layers(cfg))
    assert quant == {**plain, "quantization": "fp8_per_tensor"}


def test_quantization_survives_features_and_the_json_form():
    opts = TraceOptions((StepSpec("decode", 8, ctx=128),), quantization="fp8_per_block")
    assert with_features(opts, ["sampler"]).quantization == "fp8_per_block"
    assert with_features(opts, []).quantization == "fp8_per_block"
    trace = trace_from_json(json.loads((DATA / "llama-3.1-8b-instruct.trace.json").read_text()))
    assert trace.options.quantization is None
    assert "quantization" not in trace_to_json(trace)["options"]          # recorded traces read and write as before
    q = dataclasses.replace(trace, options=dataclasses.replace(trace.options, quantization="fp8_per_tensor"))
    assert trace_from_json(trace_to_json(q)).options.quantization == "fp8_per_tensor"


# ----------------------------------------------------------------------------- composed:SCHEME:MODEL


@pytest.mark.parametrize("scheme", composed_ids())
def test_every_bundled_scheme_cites_the_checkpoint_config_it_copies(scheme):
    d = json.loads((COMPOSED_DIR / f"{scheme}.json").read_text())
    assert d["scheme"] == scheme and d["quantization_config"]["quant_method"]
    assert "config.json" in d["from"] and d["what"]


@pytest.mark.parametrize("scheme", composed_ids())
def test_a_composed_id_is_labelled_composed_wherever_it_appears(scheme):
    model = f"composed:{scheme}:{QWEN_MOE}"
    v = parse_variant(model)
    assert v is not None and v.composed == scheme and v.model == QWEN_MOE and v.options == ()
    raw = fetch_config(model)
    d = json.loads((COMPOSED_DIR / f"{scheme}.json").read_text())
    base = fetch_config(QWEN_MOE).config
    assert raw.config == {**base, "quantization_config": d["quantization_config"]}
    cfg = load_model(model)
    assert cfg.model_id == model                         # the id itself says composed:
    assert any("COMPOSED, not a checkpoint" in s for s in cfg.sources)       # the header's config sources
    assert any("COMPOSED, not a checkpoint" in w for w in cfg.warnings)


def test_a_composed_id_takes_serving_options():
    model = f"composed:fp8-block:{QWEN_MOE}@kv-cache-dtype=fp8"
    v = parse_variant(model)
    assert v is not None and v.composed == "fp8-block" and v.options == (("kv-cache-dtype", "fp8"),)
    assert session.trace_options(load_model(model)).kv_cache_dtype == "fp8"


@pytest.mark.parametrize("model", ["composed:nope:Qwen/Qwen3-8B", "composed:fp8-block", "composed:fp8-block:",
                                   "composed:fp8-block:defaults:JambaForCausalLM",
                                   f"composed:fp8-block:{LLAMA}@quantization=fp8_per_tensor,nope=1"])
def test_bad_composed_ids_are_model_errors(model):
    with pytest.raises(ModelError) as e:
        load_model(model)
    assert e.value.hint


# ----------------------------------------------------------------------------- exllama: --linear-backend, --dtype

EXLLAMA = "composed:gptq{}:meta-llama/Llama-3.1-8B-Instruct@linear-backend=exllama,dtype=float16"


def test_linear_backend_and_dtype_keys_take_only_exllama_triton_and_float16():
    assert SERVING_KEYS["linear-backend"] == ("exllama", "triton")
    assert SERVING_KEYS["dtype"] == ("float16",)
    for bad in ("linear-backend=machete", "linear-backend=auto", "dtype=bfloat16", "dtype=half"):
        with pytest.raises(ModelError):
            load_model(f"composed:gptq:{LLAMA}@{bad}")


@pytest.mark.parametrize("scheme", ["", "8"])
def test_exllama_sources_set_the_two_options_and_nothing_else(scheme):
    model = EXLLAMA.format(scheme)
    opts = session.trace_options(load_model(model))
    plain = session.trace_options(load_model(f"composed:gptq{scheme}:{LLAMA}"))
    assert plain.linear_backend is None and plain.dtype is None
    assert opts == dataclasses.replace(plain, linear_backend="exllama", dtype="float16")
    q = fetch_config(model).config["quantization_config"]
    assert q["quant_method"] == "gptq" and q["bits"] == (8 if scheme else 4) and q["desc_act"] is False


def test_gptq8_cites_its_checkpoint():
    data = json.loads((COMPOSED_DIR / "gptq8.json").read_text())
    assert "gptq8" in composed_ids()
    assert data["quantization_config"]["bits"] == 8 and data["quantization_config"]["sym"] is True
    assert "QuantTrio/KAT-Dev-GPTQ-Int8" in data["from"] and "quantize_config.json" in data["from"]


def test_the_options_reach_the_worker_the_key_and_the_json_form_only_when_set():
    cfg = dict(fetch_config(LLAMA).config)
    opts = TraceOptions((StepSpec("decode", 8, ctx=128),))
    plain = _worker_options(opts, plan_layers(cfg))
    assert "linear_backend" not in plain and "dtype" not in plain        # other traces keep their keys
    ex = dataclasses.replace(opts, linear_backend="exllama", dtype="float16")
    assert _worker_options(ex, plan_layers(cfg)) == {**plain, "linear_backend": "exllama", "dtype": "float16"}
    trace = trace_from_json(json.loads((DATA / "llama-3.1-8b-instruct.trace.json").read_text()))
    j = trace_to_json(trace)["options"]
    assert "linear_backend" not in j and "dtype" not in j
    t2 = dataclasses.replace(trace, options=dataclasses.replace(trace.options, linear_backend="exllama", dtype="float16"))
    back = trace_from_json(trace_to_json(t2)).options
    assert (back.linear_backend, back.dtype) == ("exllama", "float16")
    assert with_features(ex, ["sampler"]).linear_backend == "exllama"


def test_engine_config_passes_them_to_vllms_engine_args(fake_engine_args):
    from vkc.modeltrace import startup

    opts = fake_engine_args
    plain = startup.engine_config("/m", opts)
    assert (plain.linear_backend, plain.dtype) == ("auto", "auto")
    got = startup.engine_config("/m", {**opts, "linear_backend": "exllama", "dtype": "float16"})
    assert (got.linear_backend, got.dtype) == ("exllama", "float16")


def test_exllama_sources_are_reach_sources_after_the_moe_wna16_one():
    from vkc.batch.reach import REACH_SOURCES
    i = REACH_SOURCES.index(EXLLAMA.format(""))
    assert REACH_SOURCES[i + 1:i + 5] == (EXLLAMA.format("8"), f"composed:gptq:{LLAMA}@linear-backend=triton",
                                          f"composed:w8a8-int8:{LLAMA}@linear-backend=triton",
                                          f"{LLAMA}@quantization=fp8_per_block,linear-backend=triton")
    assert i > REACH_SOURCES.index(f"composed:gptq:{QWEN_MOE}@quantization=moe_wna16")


def test_linear_backend_triton_sets_only_that_option():
    model = f"composed:w8a8-int8:{LLAMA}@linear-backend=triton"
    opts = session.trace_options(load_model(model))
    assert opts == dataclasses.replace(session.trace_options(load_model(f"composed:w8a8-int8:{LLAMA}")),
                                       linear_backend="triton")
    both = session.trace_options(load_model(f"{LLAMA}@quantization=fp8_per_block,linear-backend=triton"))
    assert (both.quantization, both.linear_backend, both.dtype) == ("fp8_per_block", "triton", None)


def test_the_dtype_key_says_the_activations_are_its_dtype():
    served = [w for w in load_model(EXLLAMA.format("")).warnings if "served with vLLM's --dtype" in w]
    assert len(served) == 1 and "the activations are float16" in served[0]
    assert not [w for w in load_model(f"composed:gptq:{LLAMA}").warnings if "--dtype" in w]
