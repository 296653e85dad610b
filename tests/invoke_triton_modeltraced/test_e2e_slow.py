"""End to end: a real model trace (vLLM's Qwen3-MoE model class, 2 traced layers, on meta tensors)
makes fused_moe_kernel's example model-traced, with both GEMMs as configurations (slow: 10-60 s the
first time, then the trace is cached under $VKC_CACHE_DIR/modeltraces/)."""
from __future__ import annotations

import ast

import pytest

from invoke_triton.fixtures import model
from vkc.invoke.core.provenance import InvocationMode

MOE = "vllm.model_executor.layers.fused_moe.fused_moe:fused_moe_kernel"


@pytest.mark.slow
@pytest.mark.parametrize("workload", ["decode", "prefill"])
def test_fused_moe_model_traced_qwen3(vllm_tree, monkeypatch, capsys, workload):
    from vkc.extract import extract
    from vkc.index import build_index, lookup
    from vkc.invoke.triton import invoke_triton

    monkeypatch.setenv("VKC_MODEL_TRACE", "1")
    index = build_index(vllm_tree)
    ex = extract(vllm_tree, lookup(index, MOE))
    inv = invoke_triton(vllm_tree, ex, model("Qwen/Qwen3-30B-A3B"), workload, command="vkc collect fused_moe_kernel")
    prov = inv.facts["provenance"]
    assert prov.mode is InvocationMode.MODEL_TRACED, prov
    assert "vkc: warning" not in capsys.readouterr().err
    configs = next(ast.literal_eval(n.value) for n in ast.parse(inv.code).body
                   if isinstance(n, ast.Assign) and getattr(n.targets[0], "id", "") == "CONFIGS")
    assert {"FULL", "FULL.2", "SMALL", "SMALL.2"} <= set(configs)
    assert configs["FULL"]["constexprs"]["MUL_ROUTED_WEIGHT"] is False
    assert configs["FULL.2"]["constexprs"]["MUL_ROUTED_WEIGHT"] is True
    assert "VKC_CONFIG" in inv.code
