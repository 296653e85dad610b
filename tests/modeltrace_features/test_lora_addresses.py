"""The LoRA worker's fake addresses for meta tensors (vkc.modeltrace.lora._distinct_addresses): one
distinct, aligned address per storage plus the view's byte offset, and a host-built table of them
reads back as the allocations it points at (torch only; no vLLM)."""
from __future__ import annotations

import pytest
import torch

from vkc.modeltrace import lora


@pytest.fixture
def addresses(monkeypatch):
    monkeypatch.setattr(lora, "_STATE", {})
    monkeypatch.setattr(torch.Tensor, "data_ptr", torch.Tensor.data_ptr)   # restored after the test
    lora._distinct_addresses()
    return lora._STATE


def test_each_meta_storage_has_its_own_address_and_views_their_offset(addresses):
    a = torch.empty(2, 16, 64, dtype=torch.bfloat16, device="meta")
    b = torch.empty(2, 64, 16, dtype=torch.bfloat16, device="meta")
    assert a.data_ptr() == lora.FAKE_BASE and b.data_ptr() >= a.data_ptr() + a.untyped_storage().nbytes()
    assert a[1].data_ptr() == a.data_ptr() + 16 * 64 * 2
    assert a.data_ptr() == lora.FAKE_BASE                 # stable
    assert torch.zeros(3).data_ptr() != 0                 # a real tensor keeps its own


def test_a_table_of_addresses_names_its_targets(addresses):
    from vkc.modeltrace.recorder import RECORDER

    w = [torch.empty(1, 16, 4096, dtype=torch.bfloat16, device="meta") for _ in range(3)]
    for i, t in enumerate(w):
        RECORDER.name_storage(t, f"lora:layers.0.qkv.lora_a_stacked[{i}]")
    entries = lora._table_entries([t.data_ptr() for t in w])
    assert entries is not None and [e["origin"] for e in entries] == [
        f"lora:layers.0.qkv.lora_a_stacked[{i}]" for i in range(3)]
    assert entries[0]["nbytes"] == 16 * 4096 * 2 and entries[0]["dtype"] == "bfloat16"
    assert lora._table_entries([0, 16]) is None            # slice starts, strides: plain contents
