"""Layer types, the traced prefix and the per-layer scale (no vLLM needed)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from vkc.errors import ModelError
from vkc.modeltrace.layers import plan_layers

SNAP = Path(__file__).resolve().parents[2] / "src" / "vkc" / "modelcfg" / "snapshots"


def _cfg(name: str) -> dict:
    return json.loads((SNAP / f"{name}.json").read_text())["config"]


def test_dense_model_traces_two_layers():
    p = plan_layers(_cfg("meta-llama__Llama-3.1-8B-Instruct"))
    assert (p.full_layers, p.traced) == (32, 2)
    assert p.weights == {0: 1.0, 1: 31.0}
    assert p.config["num_hidden_layers"] == 2


def test_gpt_oss_keeps_both_attention_types():
    p = plan_layers(_cfg("openai__gpt-oss-120b"))
    assert p.traced == 3
    assert p.types[:3] == ("sliding/moe", "full/moe", "sliding/moe")
    assert p.weights == {0: 1.0, 1: 18.0, 2: 17.0}
    assert p.config["layer_types"] == ["sliding_attention", "full_attention", "sliding_attention"]
    assert sum(p.weights.values()) == p.full_layers


def test_deepseek_reaches_its_first_moe_layer():
    p = plan_layers(_cfg("deepseek-ai__DeepSeek-V3"))
    assert p.traced == 4 and p.types[3] == "attn/moe" and p.types[2] == "attn/dense"
    assert p.weights[3] == 58.0


def test_hybrid_linear_attention():
    p = plan_layers(_cfg("Qwen__Qwen3-Next-80B-A3B-Instruct"))
    assert p.traced == 4
    assert set(p.types[:4]) == {"linear/moe", "full/moe"}
    assert sum(p.weights.values()) == pytest.approx(p.full_layers)


def test_every_bundled_model_scales_to_its_layer_count():
    for f in sorted(SNAP.glob("*.json")):
        p = plan_layers(json.loads(f.read_text())["config"])
        assert sum(p.weights.values()) == pytest.approx(p.full_layers), f.name


def test_config_without_layers_is_a_model_error():
    with pytest.raises(ModelError):
        plan_layers({"architectures": ["LlamaForCausalLM"]})
