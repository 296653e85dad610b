"""The model-traced binder of dynamic_scaled_int8_quant_kernel (compressed-tensors int8 W8A8 activations):
rows and hidden size from the traced call, the azp kernel's calls and non-contiguous inputs refused.  Calls
built by hand (the layout composed:w8a8-int8:meta-llama/Llama-3.1-8B-Instruct's decode step records); no vLLM run."""
from __future__ import annotations

from dispatch_events import op_event, tensor

from vkc.invoke.cuda.modeltraced import bind_call
from vkc.modeltrace.records import ScalarArg

KERNEL = "csrc/quantization/w8a8/int8/scaled_quant.cu:dynamic_scaled_int8_quant_kernel"
OP = "_C::dynamic_scaled_int8_quant"


def _call(tokens=64, hidden=4096, azp=None, stride=None):
    return op_event(OP, result=tensor("int8", (tokens, hidden)), input=tensor("bfloat16", (tokens, hidden), stride=stride),
                    scale=tensor("float32", (tokens, 1)), azp=azp if azp is not None else ScalarArg(None))


def test_a_decode_call_binds_tokens_and_hidden_size():
    b = bind_call(KERNEL, _call())
    assert b.refused is None and b.not_launched is None
    assert (b.rows, b.rows_from) == (64, "input.numel() / input.size(-1)")
    assert b.consts == {"hidden_size": (4096, "input.size(-1)")}
    assert bind_call(KERNEL, _call(tokens=8192, hidden=14336)).rows == 8192      # down_proj input at prefill


def test_an_azp_call_launches_the_azp_kernel():
    b = bind_call(KERNEL, _call(azp=tensor("int32", (64, 1))))
    assert b.not_launched and "dynamic_scaled_int8_azp_quant_kernel" in b.not_launched


def test_a_non_contiguous_input_is_refused():
    b = bind_call(KERNEL, _call(stride=(6144, 1)))          # a view into a wider row
    assert b.refused and "contiguous" in b.refused


def test_another_op_is_not_bound():
    ev = op_event("_C::static_scaled_int8_quant", result=tensor("int8", (64, 4096)),
                  input=tensor("bfloat16", (64, 4096)), scale=tensor("float32", (1,)), azp=ScalarArg(None))
    assert bind_call(KERNEL, ev).refused
