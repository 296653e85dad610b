"""Offline loads of the bundled snapshots: the issue's acceptance numbers, plus goldens.

Golden files: tests/data/modelcfg/expected/<org>__<name>.json (model_to_json output);
regenerate with VKC_UPDATE_GOLDEN=1.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from vkc.errors import ModelError
from vkc.modelcfg import DEFAULT_MODEL, bundled_ids, load_model, model_to_json

EXPECTED = Path(__file__).resolve().parents[1] / "data" / "modelcfg" / "expected"


def _has(warnings, *words):
    return any(all(w in x for w in words) for x in warnings)


def test_gpt_oss_120b_acceptance(hub):
    cfg = load_model("openai/gpt-oss-120b", offline=True)
    assert (cfg.num_attention_heads, cfg.num_key_value_heads, cfg.head_dim, cfg.hidden_size) == (64, 8, 64, 2880)
    assert cfg.sliding_window == 128
    assert cfg.layer_types is not None and len(cfg.layer_types) == 36
    assert cfg.layer_types[:2] == ("sliding_attention", "full_attention")
    assert all(t == ("sliding_attention" if i % 2 == 0 else "full_attention") for i, t in enumerate(cfg.layer_types))
    assert cfg.attention_sinks is True
    assert _has(cfg.warnings, "head_dim", "2880")
    assert cfg.origin == "snapshot" and _has(cfg.warnings, "bundled snapshot", "offline")
    assert "https://huggingface.co/openai/gpt-oss-120b/blob/main/config.json" in cfg.sources
    assert (cfg.num_experts, cfg.num_experts_per_tok, cfg.moe_intermediate_size) == (128, 4, 2880)
    assert cfg.max_position_embeddings == 131072 and cfg.qkv_bias is True and cfg.qk_norm is False
    assert cfg.dtype == "bfloat16" and _has(cfg.warnings, "no torch_dtype")
    assert cfg.rope_scaling["rope_type"] == "yarn"
    assert hub.requests == []  # offline: no network


def test_qwen3_coder_480b():
    cfg = load_model("Qwen/Qwen3-Coder-480B-A35B-Instruct", offline=True)
    assert (cfg.num_attention_heads, cfg.num_key_value_heads, cfg.head_dim, cfg.hidden_size) == (96, 8, 128, 6144)
    assert _has(cfg.warnings, "12288", "6144")
    assert cfg.qk_norm and not cfg.qkv_bias and cfg.sliding_window is None and cfg.layer_types is None
    assert (cfg.num_experts, cfg.num_experts_per_tok, cfg.moe_intermediate_size) == (160, 8, 2560)


def test_llama_31_8b_no_geometry_warning():
    cfg = load_model(DEFAULT_MODEL, offline=True)
    assert cfg.model_id == "meta-llama/Llama-3.1-8B-Instruct"
    assert (cfg.num_attention_heads, cfg.num_key_value_heads, cfg.head_dim, cfg.hidden_size) == (32, 8, 128, 4096)
    assert not _has(cfg.warnings, "head_dim")
    assert cfg.warnings == (cfg.warnings[0],) and "bundled snapshot" in cfg.warnings[0]
    assert cfg.rope_scaling["rope_type"] == "llama3" and cfg.num_experts is None and not cfg.attention_sinks


def test_gemma3_text_config_nesting():
    cfg = load_model("google/gemma-3-27b-it", offline=True)
    assert (cfg.num_attention_heads, cfg.num_key_value_heads, cfg.head_dim, cfg.hidden_size) == (32, 16, 128, 5376)
    assert cfg.num_hidden_layers == 62 and cfg.intermediate_size == 21504
    assert cfg.dtype == "bfloat16" and cfg.architectures == ("Gemma3ForConditionalGeneration",)
    assert cfg.model_type == "gemma3"
    assert cfg.max_position_embeddings == 131072 and cfg.vocab_size == 262208  # class defaults
    assert cfg.sliding_window == 1024 and cfg.qk_norm
    full = [i for i, t in enumerate(cfg.layer_types) if t == "full_attention"]
    assert full == list(range(5, 62, 6)) and len(full) == 10
    assert cfg.rope_scaling == {"factor": 8.0, "rope_type": "linear"}
    assert _has(cfg.warnings, "not a verified exact copy")


def test_deepseek_v3_mla():
    cfg = load_model("deepseek-ai/DeepSeek-V3", offline=True)
    assert cfg.is_mla
    assert (cfg.kv_lora_rank, cfg.q_lora_rank, cfg.qk_rope_head_dim, cfg.qk_nope_head_dim, cfg.v_head_dim) == \
        (512, 1536, 64, 128, 128)
    assert cfg.head_dim == 192
    assert not _has(cfg.warnings, "head_dim")  # the Dh*H_q == hidden check does not apply to MLA
    assert (cfg.num_experts, cfg.num_experts_per_tok, cfg.moe_intermediate_size) == (256, 8, 2048)
    assert _has(cfg.warnings, "fp8")


def test_qwen3_next_hybrid_layers():
    cfg = load_model("Qwen/Qwen3-Next-80B-A3B-Instruct", offline=True)
    full = [i for i, t in enumerate(cfg.layer_types) if t == "full_attention"]
    assert full == list(range(3, 48, 4))
    assert set(cfg.layer_types) == {"full_attention", "linear_attention"}


def test_snapshot_lookup_is_case_insensitive():
    assert load_model("OPENAI/GPT-OSS-20B", offline=True).model_id == "openai/gpt-oss-20b"


def test_offline_unknown_model_is_model_error(hub):
    with pytest.raises(ModelError) as info:
        load_model("vkc-test/tiny-llama", offline=True)
    assert "offline" in info.value.message and "\n" not in info.value.message
    assert "openai/gpt-oss-120b" in info.value.hint
    assert hub.requests == []


def test_env_offline_is_honoured(monkeypatch, hub):
    monkeypatch.setenv("HF_ENDPOINT", hub.endpoint)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert load_model("mistralai/Mistral-7B-Instruct-v0.3").origin == "snapshot"
    with pytest.raises(ModelError):
        load_model("vkc-test/tiny-llama")
    assert hub.requests == []


def test_fifteen_bundled_models():
    assert len(bundled_ids()) == 15


@pytest.mark.parametrize("model_id", bundled_ids())
def test_snapshot_golden(model_id):
    got = model_to_json(load_model(model_id, offline=True))
    text = json.dumps(got, indent=2, sort_keys=False) + "\n"
    path = EXPECTED / (model_id.replace("/", "__") + ".json")
    if os.environ.get("VKC_UPDATE_GOLDEN") == "1":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    assert path.is_file(), f"missing golden {path}; run with VKC_UPDATE_GOLDEN=1"
    assert text == path.read_text()
    assert got["num_attention_heads"] % got["num_key_value_heads"] == 0
