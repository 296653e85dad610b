"""Sampling mixes and the serving-feature variant options (no vLLM run).

:mod:`vkc.modeltrace.mixes` (the documented per-request sampling parameters), the variant options
that name them and the other serving switches (``sampling=``, ``speculative=ngram-block``,
``watermark=``, ``return-sampling-mask=``, ``compute-nans=``), the trace options and cache keys they
give, and the checklist groups their worker steps are fingerprinted under.
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from vkc.batch import reach as reach_mod
from vkc.errors import ModelError, UsageError
from vkc.invoke.triton.modeltraced import session
from vkc.modelcfg import load_model
from vkc.modelcfg.variants import SERVING_KEYS, parse_variant
from vkc.modeltrace import checklist, mixes
from vkc.modeltrace.engine_flags import ENGINE_ARGS, ENV, FLAG_FEATURES
from vkc.modeltrace.features import (
    FEATURE_MODULES,
    FEATURES,
    feature_groups,
    features_of,
    sampling_of,
    with_features,
    with_sampling,
)
from vkc.modeltrace.spec import DEFAULT_SPEC, SPEC_CONFIG, SPEC_CONFIGS
from vkc.modeltrace.trace import _worker_options, cache_key
from vkc.modeltrace.watermark import WATERMARK_CONFIGS
from vkc.records import SourceTree

LLAMA = "meta-llama/Llama-3.1-8B-Instruct"
MIXED = f"{LLAMA}@sampling=mixed"


@pytest.fixture(autouse=True)
def _offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


def _opts(model: str):
    return session.trace_options(load_model(model))


def test_the_default_mix_is_the_serving_mix_and_every_mix_has_kinds():
    assert mixes.MIXES[mixes.DEFAULT_MIX] == (mixes.SERVING_MIX,)
    assert mixes.mix_notes(mixes.DEFAULT_MIX) == mixes.SERVING_MIX      # what the notes recorded before mixes
    for name in mixes.MIXES:
        assert mixes.mix_kinds(name)
    with pytest.raises(KeyError):
        mixes.mix_kinds("nope")


def test_request_kinds_cycle_over_the_batch():
    kinds = mixes.mix_kinds("mixed")
    assert [mixes.request_kind("mixed", i) for i in range(2 * len(kinds))] == [*kinds, *kinds]
    assert mixes.request_kind("serving", 63) == mixes.SERVING_MIX


def test_the_mixed_mix_switches_on_each_request_option():
    keys = {k for kind in mixes.mix_kinds("mixed") for k in kind}
    assert {"min_p", "logit_bias", "seed", "logprobs", "allowed_token_ids", "bad_words_token_ids", "min_tokens",
            "stop_token_ids", "logprob_token_ids", "prompt_logprobs"} <= keys
    temps = {kind["temperature"] for kind in mixes.mix_kinds("mixed")}
    assert 0.0 in temps and temps - {0.0}                      # greedy and random requests in one batch


@pytest.mark.parametrize("name", sorted(mixes.MIXES))
def test_mix_token_ids_are_in_any_vocabulary(name):
    for kind in mixes.mix_kinds(name):
        ids = mixes.mix_token_ids(kind)
        assert all(0 <= t < mixes.MAX_TOKEN_ID for t in ids)
        assert len(kind.get("allowed_token_ids", ())) <= 1024       # vLLM's MAX_NUM_ALLOWED_TOKEN_IDS


def test_mix_notes_are_json():
    notes = mixes.mix_notes("mixed")
    assert isinstance(notes, list) and len(notes) == len(mixes.mix_kinds("mixed"))
    assert json.loads(json.dumps(notes)) == notes                  # logit-bias keys become strings
    assert notes[0]["logit_bias"] == {"100": 2.0, "200": -1.5}


def test_sampling_key_lists_every_mix_but_the_default():
    assert set(SERVING_KEYS["sampling"]) == set(mixes.MIXES) - {mixes.DEFAULT_MIX}
    assert set(SERVING_KEYS["speculative"]) == set(SPEC_CONFIGS) and DEFAULT_SPEC in SPEC_CONFIGS
    assert set(SERVING_KEYS["watermark"]) == set(WATERMARK_CONFIGS)
    for feature, (key, value) in FLAG_FEATURES.items():
        assert feature in FEATURES and SERVING_KEYS[key] == (value,)
        assert feature in ENGINE_ARGS or feature in ENV


@pytest.mark.parametrize("model", [f"{LLAMA}@sampling=serving", f"{LLAMA}@sampling=nope", f"{LLAMA}@watermark=kgw",
                                   f"{LLAMA}@speculative=eagle", f"{LLAMA}@compute-nans=false"])
def test_unknown_values_are_model_errors(model):
    with pytest.raises(ModelError):
        load_model(model)


def test_sampling_variant_sets_the_mix_and_the_sampler():
    plain, mixed = _opts(LLAMA), _opts(MIXED)
    assert sampling_of(plain) == mixes.DEFAULT_MIX and sampling_of(mixed) == "mixed"
    assert features_of(mixed) == features_of(plain) and "sampler" in features_of(mixed)
    assert dataclasses.replace(mixed, sampling=mixes.DEFAULT_MIX) == plain
    assert feature_groups(plain) == features_of(plain) and feature_groups(mixed)[-1] == "sampling"
    with pytest.raises(UsageError):
        with_sampling(plain, "nope")
    assert sampling_of(with_features(mixed, ("spec", *features_of(mixed)))) == "mixed"   # kept with features


def test_combined_variants():
    both = _opts(f"{LLAMA}@speculative=ngram-block,sampling=mixed")
    assert "spec" in features_of(both) and both.speculative == "ngram-block" and sampling_of(both) == "mixed"
    assert SPEC_CONFIGS["ngram-block"] == {**SPEC_CONFIG, "rejection_sample_method": "block"}
    wm = _opts(f"{LLAMA}@watermark=gumbel")
    assert {"sampler", "watermark"} <= set(features_of(wm))
    flags = _opts(f"{LLAMA}@return-sampling-mask=true,compute-nans=true")
    assert {"sampler", "sampling-mask", "nans"} <= set(features_of(flags))


def test_the_default_mix_and_spec_leave_the_worker_request_and_key_alone():
    plain = _opts(LLAMA)
    spec = _opts(f"{LLAMA}@speculative=ngram")
    for o in (plain, spec):
        w = _worker_options(o, None)
        assert "sampling" not in w and "speculative" not in w
    assert _worker_options(_opts(MIXED), None)["sampling"] == "mixed"
    assert _worker_options(_opts(f"{LLAMA}@speculative=ngram-block"), None)["speculative"] == "ngram-block"


def test_cache_keys_differ_per_variant_and_cover_the_new_modules():
    tree = SourceTree(root=Path("/nonexistent"), version="0.33.0", sha256="0" * 64, origin="test")
    cfg = {"architectures": ["LlamaForCausalLM"], "num_hidden_layers": 2, "hidden_size": 64,
           "num_attention_heads": 4, "num_key_value_heads": 2, "intermediate_size": 128, "vocab_size": 1000}
    models = [LLAMA, MIXED, f"{LLAMA}@speculative=ngram", f"{LLAMA}@speculative=ngram-block",
              f"{LLAMA}@watermark=gumbel", f"{LLAMA}@return-sampling-mask=true"]
    keys = {cache_key(tree, cfg, _opts(m)) for m in models}
    assert len(keys) == len(models)
    for m in ("vkc.modeltrace.mixes", "vkc.modeltrace.mix_worker", "vkc.modeltrace.watermark",
              "vkc.modeltrace.engine_flags", "vkc.modeltrace.serving_host"):
        assert m in FEATURE_MODULES


def test_new_feature_groups_are_fingerprinted_for_0_33_0():
    data = json.loads(Path(checklist.__file__).with_name("fingerprints.json").read_text())
    known = data["features"]["0.33.0"]
    for group in ("sampling", "watermark", "sampling-mask", "nans", "spec"):
        for step in checklist.FEATURE_STEPS[group]:
            assert step.id in known, step.id


def test_new_sources_are_variant_ids_of_the_bundled_llama():
    new = [s for s in reach_mod.REACH_SOURCES if ("sampling=" in s or "watermark=" in s or "compute-nans" in s)
           and "reasoning-parser=" not in s]       # the thinking-budget source is Qwen3's (its parser's model)
    assert len(new) == 4
    for s in new:
        v = parse_variant(s)
        assert v is not None and v.base == LLAMA
        load_model(s)
