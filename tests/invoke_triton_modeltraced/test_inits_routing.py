"""Routing contents from a functional top-k op (DeepSeek's ``_moe_C::grouped_topk`` returns its
ids and weights as results, not written arguments)."""
from __future__ import annotations

from vkc.invoke.triton.modeltraced.moe_rules import role_of as _role
from vkc.invoke.triton.modeltraced.moe_rules import topk_dims as _topk_dims
from vkc.modeltrace.records import ScalarArg, TensorArg, TracedEvent


def _t(dtype: str, shape: tuple[int, ...], base: str) -> TensorArg:
    return TensorArg(dtype, shape, (shape[-1], 1) if len(shape) == 2 else (1,), 0, 4, base, 4 * shape[0], "alloc")


def _grouped_topk() -> TracedEvent:
    return TracedEvent(index=7, kind="op", name="_moe_C::grouped_topk", layer=3, module="model.layers.3.mlp.gate",
                       args=(("scores", _t("bfloat16", (64, 256), "s1")), ("n_group", ScalarArg(8)),
                             ("bias", _t("float32", (256,), "s2"))),
                       outputs=(_t("float32", (64, 8), "s3"), _t("int32", (64, 8), "s4")))


def test_grouped_topk_results_name_the_routing():
    ev = _grouped_topk()
    assert _topk_dims(ev) == (64, 256, 8)
    assert _role(ev, _t("int32", (64, 8), "s4")) == "topk_ids"
    assert _role(ev, _t("float32", (64, 8), "s3")) == "topk_weights"
    assert _role(ev, _t("int32", (64, 8), "s9")) is None
