"""Host-to-device copies in the worker's dispatch mode (torch on CPU, meta tensors; no vLLM): the host values
a copy gives a device buffer are kept, a later write forgets them, and the metadata builders' state (``building``)
names allocations and copies without making events."""
from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from vkc.modeltrace import recorder as rec_mod
from vkc.modeltrace.recorder import Recorder, make_dispatch_mode

META = torch.device("meta")


@pytest.fixture
def rec(monkeypatch):
    r = Recorder()
    monkeypatch.setattr(rec_mod, "RECORDER", r)
    return r


def _contents(r: Recorder, t) -> list | None:
    m = r.host.mirrors.get(r._key(t))
    return None if m is None else m.tolist()


def test_to_device_keeps_the_host_values_and_names_the_storage(rec):
    rec.active = True
    with make_dispatch_mode():
        host = torch.stack([torch.zeros(3, dtype=torch.int64), torch.arange(3)], 1)   # prepare_chunk_indices
        dev = host.to(device=META, dtype=torch.int32, non_blocking=True)
        floats = torch.ones(4).to(META)                        # float data: not index data, not kept
    assert _contents(rec, dev) == [0, 0, 0, 1, 0, 2]
    assert rec.storages[rec._key(dev)]["producer"] == "host:h2d"
    assert _contents(rec, floats) is None
    assert rec.events == []                                   # a host copy is no event


def test_a_partial_copy_updates_a_known_storage_and_a_write_forgets_it(rec):
    rec.active = True
    with make_dispatch_mode():
        buf = torch.empty(4, dtype=torch.int32, device=META)
        buf.copy_(torch.tensor([1, 2, 3, 4], dtype=torch.int32))     # the whole storage: known
        buf[1:3].copy_(torch.tensor([7, 8]))                          # part of it: updated
        assert _contents(rec, buf) == [1, 7, 8, 4]
        other = torch.empty(4, dtype=torch.int32, device=META)
        other[:2].copy_(torch.tensor([5, 6]))                         # part of an unknown storage: not kept
        assert _contents(rec, other) is None
        buf.fill_(0)                                                   # a device write: no longer the host's
    assert _contents(rec, buf) is None


def test_building_names_allocations_and_copies_without_events(rec):
    rec.building = True
    with make_dispatch_mode():
        out = torch.empty((2, 1), dtype=torch.int32, device=META)     # a builder's new_empty
        idx = torch.as_tensor(torch.tensor([3, 4]), device=META)
        summed = idx + 1                                               # unrecorded builder math
    assert rec.events == []
    assert rec.storages[rec._key(out)]["producer"] == "alloc"
    assert rec.storages[rec._key(idx)]["producer"] == "host:h2d" and _contents(rec, idx) == [3, 4]
    assert rec._key(summed) not in rec.storages


def test_step_contents_lists_the_storages_the_step_reads(rec):
    rec.active = True
    with make_dispatch_mode():
        dev = torch.tensor([0, 0, 5]).to(META)
        unused = torch.tensor([1, 2]).to(META)
    ev = {"kind": "triton", "name": "k", "args": [["x", rec.describe(dev)]]}
    rec.add(ev)
    sid = rec.storages[rec._key(dev)]["id"]
    assert rec.host_contents() == {sid: {"runs": [[0, 2], [5, 1]]}}
    assert rec.storages[rec._key(unused)]["id"] not in rec.host_contents()


def test_a_result_the_metadata_shadows_computed_is_kept(rec):
    """FLA's ``prepare_chunk_offsets`` on the device: cat / cdiv / cumsum over the query start offsets, whose
    host values the metadata shadows carry (checklist step ``metadata-host-reads``)."""
    from vkc.modeltrace.dummy_scalars import metadata_shadows

    qsl = torch.empty(3, dtype=torch.int32, device=META)
    with metadata_shadows([(qsl, torch.tensor([0, 16, 200], dtype=torch.int32))]) as table:
        rec.active, rec.shadows = True, table
        with make_dispatch_mode():
            lens = qsl[1:] - qsl[:-1]
            offs = torch.cat([lens.new_zeros(1), (lens + 63) // 64]).cumsum(-1)
            opaque = torch.empty(2, dtype=torch.int32, device=META) + 1     # no shadow: nothing kept
    assert _contents(rec, offs) == [0, 1, 4]
    assert _contents(rec, opaque) is None


def test_a_builders_gather_of_the_block_table_names_its_block_ids(rec):
    """Step5's staged prefill pages: ``flat_table[upload(flat).long()]`` (sparse_prefill_pages.py) in a builder."""
    table = torch.empty((2, 8), dtype=torch.int32, device=META)
    rec.name_storage(table, "metadata:block_table_tensor")
    rec.building = True
    with make_dispatch_mode():
        idx = torch.tensor([0, 1, 8], dtype=torch.int32).to(META).long()
        pages = table.reshape(-1)[idx]
        other = torch.empty(4, dtype=torch.int32, device=META)[idx]        # a gather of another buffer
    assert rec.storages[rec._key(pages)]["producer"] == "gathered:metadata:block_table_tensor"
    assert rec.storages.get(rec._key(other), {}).get("producer") != "gathered:metadata:block_table_tensor"


def test_torch_tensor_on_the_device_keeps_its_host_values(rec, monkeypatch):
    """``torch.tensor(CONSTANTS, device=...)`` (UltraQuant's SORTED_TO_BITS table) with the worker's wrapped
    ``torch.tensor``, under the meta-placements mode and without it (inside a vLLM op's body)."""
    from vkc.modeltrace.startup_steps import keep_tensor_values, meta_placements

    monkeypatch.setattr(torch, "tensor", torch.tensor)      # restored after the test
    keep_tensor_values()
    keep_tensor_values()                                    # once: not wrapped twice
    assert torch.tensor._vkc_host_values
    rec.active = True
    with make_dispatch_mode():
        table = torch.tensor((15, 14, 0, 7), device=META, dtype=torch.int32)
        floats = torch.tensor([0.5, 1.5], device=META)                    # float data: not index data, not kept
        host = torch.tensor([1, 2])                                        # a host tensor: nothing to mirror
        with meta_placements():
            placed = torch.tensor([1, 2], device="cuda")
    assert table.device.type == "meta" and _contents(rec, table) == [15, 14, 0, 7]
    assert _contents(rec, floats) is None and host.device.type == "cpu"
    assert placed.device.type == "meta" and _contents(rec, placed) == [1, 2]
