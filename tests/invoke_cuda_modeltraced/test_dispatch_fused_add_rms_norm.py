"""Which fused_add_rms_norm_kernel overload a traced ``_C::fused_add_rms_norm`` call launches.

The wrapper launches width 8 (the vectorized ``enable_if`` overload, for float/half/bfloat16) when the
pointers are 16-byte aligned and hidden size and row strides are multiples of 8; else width 0 (the
generic overload).  The overloads share a name, so the rule is resolved against their declarations
in the real tree.
"""
from __future__ import annotations

from vkc.index import build_index
from vkc.invoke.cuda.modeltraced import call_launches, launched_kernels
from vkc.modeltrace.records import ScalarArg, TensorArg, TracedEvent


def _call(hidden: int, *, offset: int = 0, dtype: str = "bfloat16") -> TracedEvent:
    size = 2 if dtype != "float32" else 4
    inp = TensorArg(dtype, (64, hidden), (hidden, 1), offset, size, "s1", size * 64 * hidden, "event:3")
    res = TensorArg(dtype, (64, hidden), (hidden, 1), 0, size, "s2", size * 64 * hidden, "event:1")
    w = TensorArg(dtype, (hidden,), (1,), 0, size, "s3", size * hidden, "weight:model.norm.weight")
    return TracedEvent(index=4, kind="op", name="_C::fused_add_rms_norm", layer=1, module="model.layers.1",
                       args=(("input", inp), ("residual", res), ("weight", w), ("epsilon", ScalarArg(1e-5))))


def _overloads(vllm_tree):
    index = build_index(vllm_tree)
    found = sorted((k for k in index.kernels if k.name == "fused_add_rms_norm_kernel"), key=lambda k: k.line)
    assert len(found) == 2, [k.qualified for k in found]
    return index, found


def test_aligned_bf16_takes_the_vectorized_overload_only(vllm_tree):
    index, (vec, gen) = _overloads(vllm_tree)
    ev = _call(4096)
    assert launched_kernels(ev) == {"fused_add_rms_norm_kernel@vectorized"}
    assert call_launches(vec.qualified, ev, entry=vec, tree=index.tree) is True
    assert call_launches(gen.qualified, ev, entry=gen, tree=index.tree) is False
    # without the declaration the overload cannot be told: unknown, never a guess
    assert call_launches(gen.qualified, ev) is None


def test_misaligned_or_odd_hidden_takes_the_generic_overload(vllm_tree):
    index, (vec, gen) = _overloads(vllm_tree)
    for ev in (_call(4100), _call(4096, offset=3)):
        assert call_launches(gen.qualified, ev, entry=gen, tree=index.tree) is True
        assert call_launches(vec.qualified, ev, entry=vec, tree=index.tree) is False
