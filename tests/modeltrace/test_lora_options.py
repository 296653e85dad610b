"""The ``lora`` serving option: ``MODEL@lora=RANK`` -> the ``lora`` feature at ``--max-lora-rank RANK``
(no vLLM run; the real trace is the ``heavy`` test at the end)."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from vkc.errors import ModelError, UsageError
from vkc.modelcfg import load_model
from vkc.modelcfg.variants import SERVING_KEYS, parse_variant
from vkc.modeltrace import trace as tr
from vkc.modeltrace.checklist import FEATURE_STEPS, _feature_steps, check_features
from vkc.modeltrace.features import (
    DEFAULT_LORA_RANK,
    FEATURE_MODULES,
    LORA_MODULES,
    LORA_RANKS,
    FeatureOptions,
    features_of,
    lora_rank_of,
    with_features,
    with_lora,
)
from vkc.modeltrace.layers import plan_layers
from vkc.modeltrace.records import StepSpec, TraceOptions
from vkc.modeltrace.variants import serving_variant
from vkc.records import SourceTree

LLAMA = "meta-llama/Llama-3.1-8B-Instruct"
PLAIN = TraceOptions((StepSpec("decode", 64, ctx=4096), StepSpec("prefill", 4, prompt_len=2048)))
CONFIG = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "num_hidden_layers": 4,
          "hidden_size": 64, "intermediate_size": 128, "num_attention_heads": 4, "num_key_value_heads": 2,
          "vocab_size": 1000}
TREE = SourceTree(root=Path("/nonexistent/vllm"), version="0.33.0", origin="test", sha256="0" * 64)


def test_the_ranks_are_vllms():
    assert SERVING_KEYS["lora"] == tuple(str(r) for r in LORA_RANKS) and DEFAULT_LORA_RANK in LORA_RANKS


@pytest.mark.parametrize("model", [f"{LLAMA}@lora=16", f"{LLAMA}@lora=64,kv-cache-dtype=fp8",
                                   f"{LLAMA}@speculative=ngram,lora=8"])
def test_lora_ids_parse(model):
    v = parse_variant(model)
    assert v is not None and v.base == LLAMA and v.option("lora") in SERVING_KEYS["lora"]


@pytest.mark.parametrize("model", [f"{LLAMA}@lora=7", f"{LLAMA}@lora=", f"{LLAMA}@lora=16,lora=16",
                                   f"{LLAMA}@lora"])
def test_bad_lora_ids_are_model_errors(model):
    with pytest.raises(ModelError) as e:
        parse_variant(model)
    assert e.value.hint


def test_the_variant_is_the_lora_feature_at_its_rank():
    opts = serving_variant(PLAIN, f"{LLAMA}@lora=32")
    assert isinstance(opts, FeatureOptions) and features_of(opts) == ("lora",) and opts.lora_rank == 32
    assert lora_rank_of(opts) == 32 and opts.steps == PLAIN.steps
    both = serving_variant(with_features(PLAIN, ["bitmask", "sampler"]), f"{LLAMA}@speculative=ngram,lora=16,"
                                                                           "kv-cache-dtype=fp8")
    assert features_of(both) == ("bitmask", "lora", "sampler", "spec") and both.lora_rank == 16
    assert both.kv_cache_dtype == "fp8"
    assert serving_variant(PLAIN, LLAMA) is PLAIN and lora_rank_of(PLAIN) == 0


def test_with_lora_checks_the_rank_and_features_keep_it():
    with pytest.raises(UsageError, match="rank 7"):
        with_lora(PLAIN, 7)
    opts = with_lora(PLAIN, 64)
    assert with_features(opts, [*features_of(opts), "sampler"]).lora_rank == 64     # adding a feature keeps it
    assert type(with_features(opts, [])) is TraceOptions                            # dropping all drops it
    assert lora_rank_of(with_features(PLAIN, ["lora"])) == DEFAULT_LORA_RANK        # --features lora alone


def test_the_worker_request_and_key_cover_the_rank():
    plan = plan_layers(CONFIG)
    assert "lora_rank" not in tr._worker_options(PLAIN, plan)
    assert "lora_rank" not in tr._worker_options(with_features(PLAIN, ["sampler"]), plan)
    r16, r32 = with_lora(PLAIN, 16), with_lora(PLAIN, 32)
    w = tr._worker_options(r16, plan)
    assert w["features"] == ["lora"] and w["lora_rank"] == 16
    assert tr._worker_modules(r16) == tr._WORKER_MODULES + FEATURE_MODULES + LORA_MODULES
    assert tr._worker_modules(with_features(PLAIN, ["sampler"])) == tr._WORKER_MODULES + FEATURE_MODULES
    keys = {tr.cache_key(TREE, CONFIG, o) for o in (PLAIN, r16, r32, with_features(PLAIN, ["sampler"]))}
    assert len(keys) == 4


def test_reach_trace_options_of_a_lora_source(monkeypatch):
    from vkc.invoke.triton.modeltraced import session

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    plain = session.trace_options(load_model(LLAMA))
    lora = session.trace_options(load_model(f"{LLAMA}@lora=16"))
    assert features_of(lora) == tuple(sorted((*session.FEATURES, "lora"))) and lora.lora_rank == 16
    assert dataclasses.replace(lora, features=features_of(plain), lora_rank=0) == plain


def test_lora_feature_steps_alone_leave_the_sampler_out():
    ids = {s.id for s in _feature_steps(("lora",))}
    assert ids == {s.id for s in FEATURE_STEPS["lora"]}
    assert {s.id for s in FEATURE_STEPS["sampler"]} <= {s.id for s in _feature_steps(("lora", "sampler"))}


@pytest.mark.sdist
def test_lora_feature_steps_are_known_for_0_33_0(vllm_tree):
    status, warnings, fps = check_features(vllm_tree.root, vllm_tree.version, ("lora",), "known")
    assert status == "known" and warnings == () and all(fps.values())
    assert set(fps) == {s.id for s in FEATURE_STEPS["lora"]}


@pytest.mark.heavy
def test_a_lora_trace_launches_the_lora_kernels(vllm_tree, monkeypatch):
    """Llama-3.1-8B under vLLM's dummy-LoRA warm-up: shrink and expand launch; the Punica
    buffers' host contents come back (every token under slot 0)."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    model = f"{LLAMA}@lora=16"
    cfg = load_model(model)
    opts = serving_variant(TraceOptions((StepSpec("decode", 8, ctx=256),)), model)
    trace = tr.trace_model(vllm_tree, cfg, opts, use_cache=False)
    names = {e.name for e in trace.steps[0].events if e.kind == "triton"}
    assert "vllm.lora.ops.triton_ops.lora_shrink_op:_lora_shrink_kernel" in names
    assert "vllm.lora.ops.triton_ops.lora_expand_op:_lora_expand_kernel" in names
    note = trace.notes["features"]["steps"][trace.steps[0].spec.id]["runner"]
    assert note["lora"]["max_lora_rank"] == 16 and note["lora"]["lora_index_to_id"] == [1]
    assert note["contents"] and trace.notes["features"]["lora_rank"] == 16
