"""The reach map's variant sources (:data:`vkc.batch.reach.REACH_SOURCES`) and the ids that name them.

``MODEL@KEY=VALUE`` / ``defaults:ARCH`` (:mod:`vkc.modelcfg.variants`): what they resolve to, the trace
options they give, and a reach map where a source comes after the bundled models.  The traces are the
recorded Llama ones (tests/data/modeltrace: plain and n-gram speculative decoding); no vLLM run.
"""
from __future__ import annotations

import dataclasses
import io
import json
import shlex
from pathlib import Path

import pytest

from vkc.batch import reach as reach_mod
from vkc.batch.plan import plan_jobs
from vkc.errors import ModelError
from vkc.invoke.triton.modeltraced import session
from vkc.modelcfg import bundled_ids, load_model
from vkc.modelcfg.variants import defaults_ids, parse_variant
from vkc.modeltrace.features import features_of
from vkc.modeltrace.records import trace_from_json

DATA = Path(__file__).resolve().parents[1] / "data" / "modeltrace"
LLAMA = "meta-llama/Llama-3.1-8B-Instruct"
SPEC = f"{LLAMA}@speculative=ngram"
KV8 = f"{LLAMA}@kv-cache-dtype=fp8"
REJECT = "vllm.v1.worker.gpu.spec_decode.rejection_sampler_utils:_rejection_kernel"
ATTN = "vllm.v1.attention.ops.triton_unified_attention:kernel_unified_attention"
DEFAULTS_DIR = Path(reach_mod.__file__).resolve().parents[1] / "modelcfg" / "defaults"


@pytest.fixture(autouse=True)
def _offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


@pytest.mark.parametrize("model", [KV8, SPEC, f"{LLAMA}@speculative=ngram,kv-cache-dtype=fp8",
                                   "defaults:JambaForCausalLM", "defaults:JambaForCausalLM@kv-cache-dtype=fp8"])
def test_variant_ids_parse(model):
    v = parse_variant(model)
    assert v is not None and v.base == model.partition("@")[0]
    assert (v.defaults is not None) == model.startswith("defaults:")


@pytest.mark.parametrize("model", [f"{LLAMA}@kv-cache-dtype=int4", f"{LLAMA}@nope=1", f"{LLAMA}@", "@kv-cache-dtype=fp8",
                                   f"{LLAMA}@kv-cache-dtype=fp8,kv-cache-dtype=fp8", "defaults:NoSuchForCausalLM"])
def test_bad_variant_ids_are_model_errors(model):
    with pytest.raises(ModelError) as e:
        load_model(model)
    assert e.value.hint


def test_plain_ids_are_not_variants():
    assert all(parse_variant(m) is None for m in bundled_ids())


def test_a_serving_variant_is_its_base_config_under_its_own_id():
    base, var = load_model(LLAMA), load_model(KV8)
    assert var.model_id == KV8 and base.model_id == LLAMA
    assert dataclasses.replace(var, model_id=LLAMA) == base


def test_trace_options_follow_the_variant_and_leave_plain_ids_alone():
    plain = session.trace_options(load_model(LLAMA))
    assert plain.kv_cache_dtype == "auto" and features_of(plain) == session.FEATURES
    kv8 = session.trace_options(load_model(KV8))
    assert kv8 == dataclasses.replace(plain, kv_cache_dtype="fp8")
    spec = session.trace_options(load_model(SPEC))
    assert features_of(spec) == tuple(sorted((*session.FEATURES, "spec"))) and spec.kv_cache_dtype == "auto"
    both = session.trace_options(load_model(f"{LLAMA}@speculative=ngram,kv-cache-dtype=fp8"))
    assert both == dataclasses.replace(spec, kv_cache_dtype="fp8")


@pytest.mark.parametrize("arch", defaults_ids())
def test_bundled_defaults_are_cut_class_defaults_that_load(arch):
    d = json.loads((DEFAULTS_DIR / f"{arch}.json").read_text())
    cfg = d["config"]
    # ARCH+TAG (Qwen4ExpForCausalLM+qsa): the same architecture's defaults with the kwargs its file records
    assert d["model_id"] == f"defaults:{arch}" and cfg["architectures"] == [arch.partition("+")[0]]
    assert d["config_class"] and d["transformers_version"]
    text = cfg.get("text_config") or cfg
    # the model trace keeps at least 2 layers: a 2-layer cut is traced whole; a file built over a text_config base
    # (DeepSeek-V4.1) keeps the layers of the vLLM test config it takes its topology from, uncut
    layers = 5 if "text_config_base" in d else 2
    assert text["num_hidden_layers"] == layers
    for k, v in d["cut"].items():          # every per-layer list was cut with the layers (a dotted key: one level down)
        if isinstance(v, list) and k != "kept_layers":
            top, _, sub = k.partition(".")
            assert len(v) == 2 and (text[top][sub] if sub else text[k]) == v
    model = load_model(f"defaults:{arch}")
    assert model.model_id == f"defaults:{arch}" and model.num_hidden_layers == layers
    assert any("not a checkpoint" in w for w in model.warnings)
    assert any("not a checkpoint" in src and "defaults" in src for src in model.sources)   # the header's sources


def test_sources_come_after_the_bundled_models():
    sources = reach_mod.reach_sources()
    assert sources == reach_mod.REACH_SOURCES and len(set(sources)) == len(sources)
    assert all(parse_variant(s) is not None for s in sources)      # every source is a variant id ...
    assert not set(sources) & set(reach_mod.reach_order())          # ... none a bundled model
    for s in sources:
        load_model(s)                                               # ... that resolves offline


@pytest.fixture(scope="module")
def index(vllm_tree):
    from vkc.index import build_index
    return build_index(vllm_tree)


@pytest.fixture
def traced(monkeypatch, tmp_path):
    """Llama plain for the bundled model, the recorded speculative-decoding trace for the source."""
    plain = trace_from_json(json.loads((DATA / "llama-3.1-8b-instruct.trace.json").read_text()))
    spec = trace_from_json(json.loads((DATA / "llama-3.1-8b-instruct.spec.trace.json").read_text()))
    traces = {LLAMA: plain, SPEC: dataclasses.replace(spec, model_id=SPEC)}
    calls: list[str] = []

    def fake(tree, cfg):
        calls.append(cfg.model_id)
        return traces[cfg.model_id]
    monkeypatch.setattr(session, "model_trace_for", fake)
    monkeypatch.setattr(reach_mod, "_path", lambda key: tmp_path / "reach" / f"{key}.json")
    return calls


def test_a_source_sizes_only_what_no_bundled_model_launches(index, traced):
    rm = reach_mod.reach_map(index, models=[LLAMA], sources=[SPEC], warn=io.StringIO())
    assert rm.order == ((LLAMA, "decode"), (LLAMA, "prefill"), (SPEC, "decode"), (SPEC, "prefill"))
    assert rm.get(REJECT) == reach_mod.Reach(SPEC, "decode", "decode-b64-ctx4096")
    assert rm.get(ATTN).model == LLAMA                      # the bundled model keeps what it launches
    only = reach_mod.reach_map(index, models=[LLAMA], sources=(), warn=io.StringIO())
    assert set(only.kernels) < set(rm.kernels) and all(rm.kernels[q] == r for q, r in only.kernels.items())
    assert {q for q, r in rm.kernels.items() if r.model == SPEC} == set(rm.kernels) - set(only.kernels)
    assert "1 bundled models and 1 variant sources" in rm.describe()
    assert reach_mod.reach_map(index, models=[LLAMA], sources=[SPEC], warn=io.StringIO()).cached


def test_default_sources_only_without_explicit_models(index, traced, monkeypatch):
    monkeypatch.setattr(reach_mod, "REACH_SOURCES", (SPEC,))
    monkeypatch.setattr(reach_mod, "reach_order", lambda models=None: tuple(models) if models else (LLAMA,))
    assert [m for m, _ in reach_mod.reach_map(index, warn=io.StringIO()).order] == [LLAMA, LLAMA, SPEC, SPEC]
    assert [m for m, _ in reach_mod.reach_map(index, models=[LLAMA], warn=io.StringIO()).order] == [LLAMA, LLAMA]


def test_the_artifact_command_names_the_variant_and_resolves_to_it(index):
    job = next(j for j in plan_jobs(index, lang="triton", reach={REJECT: (SPEC, "decode")}) if j.reach)
    argv = shlex.split(job.command)
    assert argv[argv.index("--model") + 1] == SPEC and argv[argv.index("--workload") + 1] == "decode"
    assert job.reach == f"{SPEC} decode"
    cfg = load_model(argv[argv.index("--model") + 1])
    assert session.trace_options(cfg) == session.trace_options(load_model(SPEC))
