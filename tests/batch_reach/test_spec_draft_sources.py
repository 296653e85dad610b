"""Drafter-model speculative sources (``speculative=mtp``, ``speculative=draft-model,draft-model=MODEL``) and the
thinking-budget source (``reasoning-parser=qwen3,sampling=thinking``): the ids, the trace options and worker options
they give, their checklist groups, and the worker's attention-group split (:mod:`vkc.modeltrace.spec_draft`); no
vLLM run."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from vkc.batch import reach as reach_mod
from vkc.errors import ModelError
from vkc.invoke.triton.modeltraced import session
from vkc.modelcfg import load_model
from vkc.modelcfg.fetch import fetch_config
from vkc.modeltrace import spec, spec_draft
from vkc.modeltrace.checklist import FEATURE_STEPS, check_features
from vkc.modeltrace.features import DRAFT_SPECS, SPEC_DRAFT_NOTE, feature_groups, features_of
from vkc.modeltrace.layers import plan_layers
from vkc.modeltrace.mixes import mix_kinds
from vkc.modeltrace.thinking import REASONING_PARSERS
from vkc.modeltrace.trace import _worker_options, cache_key

DSV3 = "deepseek-ai/DeepSeek-V3"
MTP = f"{DSV3}@speculative=mtp"
L70, L8 = "meta-llama/Llama-3.1-70B-Instruct", "meta-llama/Llama-3.1-8B-Instruct"
DRAFT = f"{L70}@speculative=draft-model,draft-model={L8}"
THINK = "Qwen/Qwen3-8B@reasoning-parser=qwen3,sampling=thinking"


@pytest.fixture(autouse=True)
def _offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


def test_mtp_is_vllms_mtp_method_on_a_target_with_one_mtp_layer():
    opts = session.trace_options(load_model(MTP))
    assert "spec" in features_of(opts) and opts.speculative == "mtp" and not opts.draft_model
    assert spec.SPEC_CONFIGS["mtp"] == {"method": "mtp", "num_speculative_tokens": spec.NUM_SPECULATIVE_TOKENS}
    # vLLM's use_multi_module_mtp(): min(num_nextn_predict_layers, k) > 1 -- one layer: MTPSpeculator
    assert fetch_config(MTP).config["num_nextn_predict_layers"] == 1
    assert "draft_config" not in _worker_options(opts, plan_layers(dict(fetch_config(MTP).config)))


def test_draft_model_sends_the_drafters_config_cut_as_the_targets():
    opts = session.trace_options(load_model(DRAFT))
    assert opts.speculative == "draft-model" and opts.draft_model == L8
    assert spec.SPEC_CONFIGS["draft-model"]["method"] == "draft_model"
    target = dict(fetch_config(DRAFT).config)
    assert target["hidden_size"] == 8192                      # the 70B's config, not the drafter's
    sent = _worker_options(opts, plan_layers(target))["draft_config"]
    assert sent == plan_layers(dict(fetch_config(L8).config)).config
    assert sent["hidden_size"] == 4096 and sent["num_hidden_layers"] < 32
    # the drafter is in the trace's key: another draft model is another trace
    other = dataclasses.replace(opts, draft_model="")
    assert cache_key_of(opts, target) != cache_key_of(other, target)


def cache_key_of(opts, config):
    class Tree:
        root, sha256, version = Path("/nonexistent"), "0" * 64, "0.33.0"

    return cache_key(Tree(), config, opts)  # type: ignore[arg-type]


@pytest.mark.parametrize("model", [f"{L70}@draft-model={L8}",                      # no speculative=draft-model
                                   f"{L70}@speculative=ngram,draft-model={L8}"])
def test_a_draft_model_without_speculative_draft_model_is_a_model_error(model):
    with pytest.raises(ModelError) as e:
        session.trace_options(load_model(model))
    assert "speculative=draft-model" in e.value.hint


def test_only_bundled_draft_models_are_values():
    with pytest.raises(ModelError):
        load_model(f"{L70}@speculative=draft-model,draft-model=someone/else")


def test_drafter_traces_mirror_the_spec_draft_group_and_ngram_traces_do_not():
    assert set(DRAFT_SPECS) == set(SPEC_DRAFT_NOTE) == {"mtp", "draft-model"}
    assert {spec.SPEC_CONFIGS[s]["method"] for s in DRAFT_SPECS} == set(spec_draft.DRAFT_METHODS)
    assert "spec-draft" in feature_groups(session.trace_options(load_model(MTP)))
    assert "spec-draft" in feature_groups(session.trace_options(load_model(DRAFT)))
    assert "spec-draft" not in feature_groups(session.trace_options(load_model(f"{L8}@speculative=ngram")))


@pytest.mark.sdist
def test_0_33_0_spec_draft_steps_are_known(vllm_tree):
    status, warnings, fps = check_features(vllm_tree.root, vllm_tree.version, ("spec", "spec-draft"), "known")
    assert status == "known" and warnings == ()
    assert {s.id for s in FEATURE_STEPS["spec-draft"]} <= set(fps) and all(fps.values())


def test_the_new_sources_come_after_the_earlier_ones_in_reach_order():
    src = reach_mod.REACH_SOURCES
    at = src.index(MTP)
    assert src[at:at + 3] == (MTP, DRAFT, THINK)
    # after every source that predates them (the packed KV caches were appended first), so no assignment moves
    assert at > max(i for i, s in enumerate(src) if "kv-cache-dtype=ultraquant" in s or "+qsa" in s)


def test_thinking_is_a_reasoning_parser_and_a_budgeted_mix():
    opts = session.trace_options(load_model(THINK))
    assert {"sampler", "thinking"} <= set(features_of(opts)) and opts.sampling == "thinking"
    assert "thinking" in feature_groups(opts) and "sampling" in feature_groups(opts)
    assert mix_kinds("thinking")[0]["thinking_token_budget"] == 64
    # Qwen3's <think> / </think>: one token each, inside the vocabulary
    start, end = REASONING_PARSERS["qwen3"]
    assert start == [151667] and end == [151668]
    assert max(start + end) < fetch_config(THINK).config["vocab_size"]


def test_a_thinking_budget_without_a_reasoning_parser_is_a_model_error():
    with pytest.raises(ModelError) as e:
        session.trace_options(load_model("Qwen/Qwen3-8B@sampling=thinking"))
    assert "reasoning-parser" in e.value.hint


@pytest.mark.sdist
def test_0_33_0_thinking_steps_are_known(vllm_tree):
    status, warnings, fps = check_features(vllm_tree.root, vllm_tree.version, ("sampler", "thinking"), "known")
    assert status == "known" and warnings == ()
    assert {s.id for s in FEATURE_STEPS["thinking"]} <= set(fps) and all(fps.values())


@dataclasses.dataclass
class _Group:
    layer_names: list[str]


@dataclasses.dataclass
class _KV:
    kv_cache_groups: list[_Group]


@dataclasses.dataclass
class _Layer:
    num_heads: int


def test_builders_split_each_group_by_query_heads_as_init_attn_backend():
    seen = []

    def real(vc, kv_cfg, layers):
        seen.append([list(g.layer_names) for g in kv_cfg.kv_cache_groups])
        return [(f"b{len(seen)}.{gi}", list(g.layer_names), gi) for gi, g in enumerate(kv_cfg.kv_cache_groups)]

    layers = {"model.layers.0.attn": _Layer(64), "draft_model.model.layers.0.attn": _Layer(32)}
    kv = _KV([_Group(["model.layers.0.attn", "draft_model.model.layers.0.attn"])])
    out = spec_draft._split_by_heads(real)(None, kv, layers)
    assert seen == [[["draft_model.model.layers.0.attn"]], [["model.layers.0.attn"]]]
    assert [names for _b, names, _g in out] == [["draft_model.model.layers.0.attn"], ["model.layers.0.attn"]]
    assert kv.kv_cache_groups[0].layer_names == ["model.layers.0.attn", "draft_model.model.layers.0.attn"]
    # one head count: the real builders, untouched
    seen.clear()
    same = {"a": _Layer(8), "b": _Layer(8)}
    assert spec_draft._split_by_heads(real)(None, _KV([_Group(["a", "b"])]), same) == [("b1.0", ["a", "b"], 0)]


def test_draft_dir_holds_the_drafters_config():
    path = spec_draft.draft_dir({"architectures": ["LlamaForCausalLM"], "hidden_size": 4096})
    assert json.loads((Path(path) / "config.json").read_text())["hidden_size"] == 4096
