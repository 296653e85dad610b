"""Normalisation rules, file-path configs and the JSON / text renderings."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from vkc.errors import ModelError
from vkc.modelcfg import format_model, load_model, model_to_json
from vkc.records import ModelConfig

FILES = Path(__file__).resolve().parents[1] / "data" / "modelcfg" / "files"
BASE = {"model_type": "llama", "architectures": ["LlamaForCausalLM"], "hidden_size": 1024,
        "num_attention_heads": 16, "num_key_value_heads": 4, "num_hidden_layers": 2,
        "intermediate_size": 2816, "torch_dtype": "bfloat16", "vocab_size": 32000, "rms_norm_eps": 1e-6}


def _load(tmp_path, **changes):
    cfg = {**BASE, **changes}
    for key in [k for k, v in changes.items() if v is _DROP]:
        cfg.pop(key)
    path = tmp_path / "config.json"
    path.write_text(json.dumps(cfg))
    return load_model(str(path))


_DROP = object()


def test_file_origin(tmp_path):
    cfg = load_model(str(FILES / "tiny-llama.json"))
    assert cfg.origin == "file" and cfg.model_id == str(FILES / "tiny-llama.json")
    assert cfg.sources == (str((FILES / "tiny-llama.json").resolve()),)
    assert (cfg.num_attention_heads, cfg.num_key_value_heads, cfg.head_dim) == (8, 2, 64)
    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "config.json").write_text((FILES / "tiny-llama.json").read_text())
    assert load_model(str(folder)).hidden_size == 512


@pytest.mark.parametrize("name, words", [
    ("malformed.json", ("malformed config.json", "line 5")),
    ("not-object.json", ("not a JSON object", "list")),
    ("bad-gqa.json", ("num_attention_heads 12", "num_key_value_heads 5")),
    ("no-such-file.json", ("config file not found",)),
])
def test_bad_files(name, words):
    with pytest.raises(ModelError) as info:
        load_model(str(FILES / name))
    assert all(w in info.value.message for w in words), info.value.message
    assert "\n" not in info.value.message and info.value.hint


@pytest.mark.parametrize("bad", ["not a model id!", "a/b/c", "org--x/name", ""])
def test_bad_model_ids(bad):
    with pytest.raises(ModelError):
        load_model(bad, offline=True)


def test_kv_heads_default_to_q_heads(tmp_path):
    cfg = _load(tmp_path, num_key_value_heads=_DROP)
    assert cfg.num_key_value_heads == 16 and cfg.head_dim == 64 and cfg.warnings == ()


def test_non_integral_head_dim_warns(tmp_path):
    cfg = _load(tmp_path, hidden_size=1000)
    assert cfg.head_dim == 62 and len(cfg.warnings) == 1 and "not a multiple" in cfg.warnings[0]


def test_explicit_head_dim_wins_with_warning(tmp_path):
    cfg = _load(tmp_path, head_dim=128)
    assert cfg.head_dim == 128 and "128*16 = 2048 != hidden_size 1024" in cfg.warnings[0]


def test_hq_not_multiple_of_hkv(tmp_path):
    with pytest.raises(ModelError, match="not a multiple"):
        _load(tmp_path, num_key_value_heads=3)


@pytest.mark.parametrize("changes", [{"hidden_size": "1024"}, {"num_attention_heads": 0},
                                     {"num_hidden_layers": True}, {"num_attention_heads": 12.5}])
def test_bad_values(tmp_path, changes):
    with pytest.raises(ModelError):
        _load(tmp_path, **changes)


def test_missing_dtype_defaults_with_warning(tmp_path):
    cfg = _load(tmp_path, torch_dtype=_DROP)
    assert cfg.dtype == "bfloat16" and "assuming bfloat16" in cfg.warnings[0]
    assert _load(tmp_path, torch_dtype=_DROP, dtype="float16").dtype == "float16"


@pytest.mark.parametrize("keys, expect", [
    ({"num_experts": 64, "num_experts_per_tok": 6, "moe_intermediate_size": 512}, (64, 6, 512)),
    ({"num_local_experts": 8, "experts_per_token": 2}, (8, 2, 2816)),
    ({"n_routed_experts": 32, "moe_topk": 4, "moe_intermediate_size": 256}, (32, 4, 256)),
    ({}, (None, None, None)),
])
def test_moe_key_variants(tmp_path, keys, expect):
    cfg = _load(tmp_path, **keys)
    assert (cfg.num_experts, cfg.num_experts_per_tok, cfg.moe_intermediate_size) == expect


def test_flags_and_rope(tmp_path):
    cfg = _load(tmp_path, use_qk_norm=True, qkv_bias=True,
                rope_parameters={"rope_type": "default", "rope_theta": 10000.0})
    assert cfg.qk_norm and cfg.qkv_bias and cfg.rope_scaling == {"rope_type": "default", "rope_theta": 10000.0}
    plain = _load(tmp_path, rope_scaling=None)
    assert not plain.qk_norm and not plain.qkv_bias and plain.rope_scaling is None
    assert _load(tmp_path, model_type="qwen3").qk_norm
    assert _load(tmp_path, attention_bias=True).qkv_bias


def test_context_and_sliding(tmp_path):
    cfg = _load(tmp_path, initial_context_length=4096, sliding_window=4096, use_sliding_window=False)
    assert cfg.max_position_embeddings == 4096 and cfg.sliding_window is None and cfg.layer_types is None
    cfg = _load(tmp_path, max_position_embeddings=8192, initial_context_length=4096, sliding_window=512)
    assert cfg.max_position_embeddings == 8192 and cfg.sliding_window == 512 and cfg.layer_types is None


def test_layer_types_length_mismatch_warns(tmp_path):
    cfg = _load(tmp_path, layer_types=["full_attention"] * 3)
    assert cfg.layer_types == ("full_attention",) * 3 and "3 entries" in cfg.warnings[0]


def test_text_config_merge(tmp_path):
    text = {k: BASE[k] for k in ("hidden_size", "num_attention_heads", "num_key_value_heads", "num_hidden_layers")}
    cfg = _load(tmp_path, hidden_size=_DROP, num_attention_heads=_DROP, num_key_value_heads=_DROP,
                num_hidden_layers=_DROP, model_type="llama4", architectures=["Llama4ForConditionalGeneration"],
                text_config={**text, "model_type": "llama4_text", "torch_dtype": "float32", "sliding_window": 64})
    assert (cfg.hidden_size, cfg.num_attention_heads, cfg.num_key_value_heads) == (1024, 16, 4)
    assert cfg.dtype == "bfloat16" and cfg.model_type == "llama4" and cfg.sliding_window == 64
    assert cfg.architectures == ("Llama4ForConditionalGeneration",)


def test_model_to_json_keys_and_serialisable():
    cfg = load_model("openai/gpt-oss-120b", offline=True)
    out = model_to_json(cfg)
    assert list(out) == [f.name for f in dataclasses.fields(ModelConfig)]
    assert isinstance(out["layer_types"], list) and isinstance(out["architectures"], list)
    assert isinstance(out["warnings"], list) and isinstance(out["sources"], list)
    assert json.loads(json.dumps(out)) == out
    assert out["origin"] == "snapshot"


def test_format_model_is_deterministic_text():
    text = format_model(load_model("deepseek-ai/DeepSeek-V3", offline=True))
    assert text == format_model(load_model("deepseek-ai/DeepSeek-V3", offline=True))
    assert "H_q=128 H_kv=128 group=1 head_dim=192" in text and "kv_lora_rank=512" in text
    assert "https://huggingface.co/deepseek-ai/DeepSeek-V3/blob/main/config.json" in text
    assert "warnings:" in text and not text.endswith("\n")
