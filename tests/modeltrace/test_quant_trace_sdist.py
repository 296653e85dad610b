"""Quantized traces of vLLM 0.33.0 (worker subprocesses): online ``--quantization`` and a composed fp8
checkpoint format whose process_weights_after_loading reads scales on the host (checklist step
``dummy-scalars``)."""
from __future__ import annotations

import dataclasses

import pytest

from .conftest import DECODE

pytestmark = [pytest.mark.sdist, pytest.mark.heavy]  # real vLLM traces in worker subprocesses

LLAMA = "meta-llama/Llama-3.1-8B-Instruct"


def _trace(tree, model, **options):
    from vkc.modelcfg import load_model
    from vkc.modeltrace import trace_model
    from vkc.modeltrace.records import TraceOptions

    return trace_model(tree, load_model(model, offline=True), dataclasses.replace(TraceOptions((DECODE,)), **options))


def _names(trace, layer=1):
    return [e.name for e in trace.step(DECODE).events if e.layer == layer]


def test_online_fp8_per_tensor_quantizes_the_bf16_checkpoint(vllm_tree):
    trace = _trace(vllm_tree, f"{LLAMA}@quantization=fp8_per_tensor", quantization="fp8_per_tensor")
    names = _names(trace)
    assert "_C::dynamic_per_token_scaled_fp8_quant" in names and "_C::cutlass_scaled_mm" in names
    assert "aten::mm" not in names                            # every linear of the layer runs fp8
    assert trace.vllm_config["quantization"] == "fp8_per_tensor"


def test_static_fp8_scales_read_on_the_host_get_the_dummy_values(vllm_tree):
    trace = _trace(vllm_tree, f"composed:fp8-static:{LLAMA}")
    assert "_C::static_scaled_fp8_quant" in _names(trace)
    note = trace.notes["dummy_scalars"]
    assert note["shadowed"] > 0 and "aten::_local_scalar_dense" in note["answered"]
    assert trace.model_id == f"composed:fp8-static:{LLAMA}"
