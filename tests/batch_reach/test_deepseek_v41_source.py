"""The DeepSeek-V4.1 reach source (``defaults:DeepseekV41ForCausalLM@...``): its bundled defaults (V4's class
defaults as the text_config, vLLM's five-layer V4.1 test topology), the layer plan that keeps all five layer
kinds, the meta placements inside a vLLM custom op's body; a live trace only under ``heavy``."""
from __future__ import annotations

import contextlib
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

from vkc.batch import reach as reach_mod
from vkc.invoke.triton.modeltraced import session
from vkc.modelcfg import load_model
from vkc.modelcfg.fetch import fetch_config
from vkc.modeltrace import startup_steps
from vkc.modeltrace.layers import plan_layers

ROOT = Path(__file__).resolve().parents[2]
V41 = "defaults:DeepseekV41ForCausalLM"
SOURCE = f"{V41}@deep-gemm=recorded,flash-mla=recorded,tilelang=recorded,cute-dsl=recorded,block-size=256"
V4_SOURCE = SOURCE.replace("V41", "V4")
_spec = importlib.util.spec_from_file_location("reach_sources_bench", ROOT / "bench" / "reach_sources.py")
assert _spec is not None and _spec.loader is not None
rs = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(rs)


@pytest.fixture(autouse=True)
def _offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


def _file() -> dict:
    return json.loads((ROOT / "src/vkc/modelcfg/defaults/DeepseekV41ForCausalLM.json").read_text())


def test_the_text_config_is_v4s_defaults_under_v41s_topology():
    d = _file()
    cfg = d["config"]
    assert cfg["model_type"] == "deepseek_v41" and cfg["architectures"] == ["DeepseekV41ForCausalLM"]
    text = cfg["text_config"]
    v4 = json.loads((ROOT / "src/vkc/modelcfg/defaults/DeepseekV4ForCausalLM.json").read_text())["config"]
    left_out = set(d["text_config_base"]["left_out"])
    assert d["text_config_base"]["config_class"] == "transformers.DeepseekV4Config"
    for k, v in v4.items():                     # every V4 default but its layer lists, unchanged
        if k not in left_out and k not in ("architectures", "torch_dtype", "transformers_version"):
            assert text[k] == v, k
    assert not left_out & set(text) - {"num_hidden_layers"}
    topo = d["constructor_kwargs"]["text_config"]
    assert {k: text[k] for k in topo} == topo
    assert text["compress_ratios"][:5] == [0, 2, 2, 1, 1] and text["kv_source_layer_ids"] == [1, 3]
    assert "engram_layer_ids" not in text       # no tokenizer for the Engram's token map (the DEFAULTS comment)


def test_the_file_is_what_the_bench_writes(vllm_tree):
    # in a subprocess: vLLM's own config class is imported from the tree, as cmd_defaults does
    code = ("import importlib.util, json, sys; sys.path.insert(0, sys.argv[1]); "
            "s = importlib.util.spec_from_file_location('rs', sys.argv[2]); m = importlib.util.module_from_spec(s); "
            "s.loader.exec_module(m); print(json.dumps(m.defaults_file('DeepseekV41ForCausalLM')['config']))")
    out = subprocess.run([sys.executable, "-c", code, str(vllm_tree.root), str(ROOT / "bench" / "reach_sources.py")],
                         capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr[-2000:]
    assert json.loads(out.stdout.strip().splitlines()[-1]) == _file()["config"]


def test_the_layer_plan_traces_every_v41_layer_kind():
    plan = plan_layers(dict(fetch_config(V41).config))
    assert plan.traced == plan.full_layers == 5
    assert [t.split("/")[0] for t in plan.types] == [
        "ratio0", "ratio2+kv+index", "ratio2", "ratio1+kv+index+candidate", "ratio1+index"]
    assert plan.weights == {i: 1.0 for i in range(5)}


def test_a_config_without_v41_source_ids_keeps_its_layer_types():
    plan = plan_layers({"num_hidden_layers": 3, "compress_ratios": [0, 4, 128],
                        "layer_types": ["sliding_attention", "full_attention", "full_attention"]})
    assert plan.types == ("sliding/dense", "full/dense", "full/dense")


def test_the_source_comes_after_v4s_with_v4s_options():
    src = reach_mod.REACH_SOURCES
    assert src.index(SOURCE) > src.index(V4_SOURCE)       # appended: no earlier assignment moves
    assert session.trace_options(load_model(SOURCE)) == session.trace_options(load_model(V4_SOURCE))


def test_placements_hold_again_only_where_the_step_entered_them(monkeypatch):
    torch = pytest.importorskip("torch")
    monkeypatch.setattr(startup_steps, "_ACTIVE", [])
    assert isinstance(startup_steps.placements_again(), contextlib.nullcontext)
    monkeypatch.setattr(startup_steps, "_ACTIVE", [object()])
    t = torch.empty(4, device="meta")
    assert not t.is_cuda
    with startup_steps.placements_again():
        assert t.is_cuda and torch.zeros(2, device="cuda").device.type == "meta"


@pytest.mark.heavy
def test_the_live_trace_reaches_v41s_own_kernels(vllm_tree):
    trace = session.model_trace_for(vllm_tree, load_model(SOURCE))
    names = {ev.name for step in trace.steps for ev in step.events if ev.kind == "triton"}
    assert trace.traced_layers == 5
    assert {"vllm.models.deepseek_v41.compressor:_ring_slot_mapping_kernel",
            "vllm.models.deepseek_v41.common.ops.indexer_k_store:_indexer_k_norm_rope_quant_store_kernel",
            "vllm.model_executor.kernels.attention.dsa.candidate_blocks:_block_scores_kernel"} <= names
