"""bench/reach_sources.py's cut of config class defaults: per-layer lists one level down (MiniMax-M3's
``sparse_attention_config.sparse_attention_freq``) are cut with the layers, and an ``ARCH+TAG`` name keeps
the architecture (``defaults:Qwen4ExpForCausalLM+qsa``)."""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

from vkc.modelcfg import load_model
from vkc.modelcfg.variants import defaults_ids, parse_variant

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("reach_sources_bench", ROOT / "bench" / "reach_sources.py")
assert _spec is not None and _spec.loader is not None
rs = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(rs)


def _cfg() -> dict:
    return {"num_hidden_layers": 6, "moe_layer_freq": [0, 0, 0, 1, 1, 1],
            "sparse_attention_config": {"sparse_attention_freq": [0, 0, 0, 1, 1, 1], "sparse_topk_blocks": 16,
                                        "sparse_disable_index_value": [0, 0, 0, 1, 1, 1]},
            "rope_parameters": {"rope_type": "default"}}


def test_nested_per_layer_lists_are_cut_with_the_layers():
    cfg = _cfg()
    cut = rs._cut(cfg)
    assert cut["kept_layers"] == [0, 3] and cfg["num_hidden_layers"] == 2
    assert cfg["moe_layer_freq"] == [0, 1]
    sparse = cfg["sparse_attention_config"]
    assert sparse["sparse_attention_freq"] == [0, 1] and sparse["sparse_disable_index_value"] == [0, 1]
    assert sparse["sparse_topk_blocks"] == 16 and cfg["rope_parameters"] == {"rope_type": "default"}
    assert cut["sparse_attention_config.sparse_attention_freq"] == [0, 1]


def test_a_nested_list_alone_picks_the_other_layer():
    cfg = _cfg()
    cfg["moe_layer_freq"] = [1] * 6            # only the nested list tells the layers apart
    assert rs._cut(cfg)["kept_layers"] == [0, 3]
    assert cfg["sparse_attention_config"]["sparse_attention_freq"] == [0, 1]


def test_a_sub_config_is_not_cut_as_a_nested_dict():
    cfg = {"num_hidden_layers": 4, "layer_types": ["a", "b", "b", "b"],
           "vision_config": {"model_type": "v", "depths": [1, 2, 3, 4]}}
    rs._cut(cfg)
    assert cfg["vision_config"]["depths"] == [1, 2, 3, 4] and cfg["layer_types"] == ["a", "b"]


def test_minimax_m3_defaults_keep_a_sparse_layer():
    d = json.loads((ROOT / "src/vkc/modelcfg/defaults/MiniMaxM3SparseForCausalLM.json").read_text())
    assert d["config"]["text_config"]["sparse_attention_config"]["sparse_attention_freq"] == [0, 1]


def test_an_arch_tag_id_is_the_architecture_with_its_kwargs():
    assert "Qwen4ExpForCausalLM+qsa" in defaults_ids() and "Qwen4ExpForCausalLM+qsa" in rs.DEFAULTS
    v = parse_variant("defaults:Qwen4ExpForCausalLM+qsa")
    assert v is not None and v.defaults == "Qwen4ExpForCausalLM+qsa"
    model = load_model("defaults:Qwen4ExpForCausalLM+qsa")
    assert model.model_id == "defaults:Qwen4ExpForCausalLM+qsa"
    assert any("architectures=Qwen4ExpForCausalLM," in w for w in model.warnings)
    d = json.loads((ROOT / "src/vkc/modelcfg/defaults/Qwen4ExpForCausalLM+qsa.json").read_text())
    assert d["config"]["architectures"] == ["Qwen4ExpForCausalLM"] and d["config"]["indexer_n_heads"] == 4
    plain = json.loads((ROOT / "src/vkc/modelcfg/defaults/Qwen4ExpForCausalLM.json").read_text())
    assert plain["config"]["indexer_n_heads"] is None       # the plain defaults id is unchanged
