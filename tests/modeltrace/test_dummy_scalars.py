"""Checklist step ``dummy-scalars`` (:mod:`vkc.modeltrace.dummy_scalars`): host reads of small meta
parameters answered from host shadows; big or unfilled ones still fail.  The fill is a stand-in for vLLM's
``initialize_single_dummy_weight`` (no vLLM import here)."""
from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from vkc.modeltrace import dummy_scalars as ds


class _Layer(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        P = torch.nn.Parameter
        with torch.device("meta"):
            self.k_scale = P(torch.tensor(-1.0), requires_grad=False)           # a KV-cache scale
            self.weight_scale = P(torch.empty(3), requires_grad=False)          # per-shard (q, k, v)
            self.weight = P(torch.empty(ds.SMALL_NUMEL + 1), requires_grad=False)   # too big: no shadow
            self.g_idx = P(torch.empty(4, dtype=torch.int32), requires_grad=False)  # integers: left unfilled


def _fill(name, p):
    if not torch.is_floating_point(p):
        return None
    return torch.full(tuple(p.shape), 0.5 if name == "k_scale" else 0.25, dtype=p.dtype)


@pytest.fixture
def layer(monkeypatch):
    monkeypatch.setattr(ds, "_dummy_fill", _fill)
    return _Layer()


def test_host_reads_of_small_parameters_get_the_dummy_values(layer):
    with ds.shadow_small_tensors(layer) as table:
        assert layer.k_scale.item() == 0.5
        assert bool(layer.k_scale > 0.0)
        assert layer.k_scale.to("cpu").tolist() == 0.5                 # kv_cache.py's host copy
        assert (layer.k_scale * 2).item() == 1.0                       # derived values carry their shadow
        assert layer.weight_scale.max().item() == 0.25
        assert bool(layer.weight_scale[-1] > torch.finfo(torch.float8_e4m3fn).min)   # w8a8_utils.py's branch
        assert layer.k_scale.to(torch.bfloat16).device.type == "meta"   # a dtype change stays on the device
    assert layer.k_scale.device.type == "meta"                          # the parameters themselves are untouched
    assert len(table.seeded) == 2 and "aten::_local_scalar_dense" in table.answered
    assert ds.answered()["shadowed"] == 2


def test_what_has_no_shadow_still_fails(layer):
    with ds.shadow_small_tensors(layer):
        with pytest.raises((RuntimeError, NotImplementedError)):
            layer.weight.sum().item()                                   # a weight-sized tensor
        with pytest.raises((RuntimeError, NotImplementedError)):
            layer.g_idx.to("cpu")                                       # integers the dummy loader leaves as allocated
    with pytest.raises((RuntimeError, NotImplementedError)):
        layer.k_scale.item()                                            # only inside the step


def test_writes_update_or_drop_the_shadow(layer):
    with ds.shadow_small_tensors(layer):
        layer.k_scale.fill_(3.0)                                        # every input known: the shadow follows
        assert layer.k_scale.item() == 3.0
        layer.k_scale.copy_(layer.weight[0])                            # an unknown input: the shadow is dropped
        with pytest.raises((RuntimeError, NotImplementedError)):
            layer.k_scale.item()
