"""The runner steps' storage table (:class:`vkc.modeltrace.serving.FeatureStorages` at another offset): new
storages numbered from its offset, the feature's and the forward's found through it, unchanged."""
from __future__ import annotations

from vkc.modeltrace.runner_prepare import RUNNER_STORAGE_OFFSET
from vkc.modeltrace.storage_tables import FEATURE_STORAGE_OFFSET, FeatureStorages


def test_nested_tables_number_their_own_and_fall_through():
    forward = {1: {"id": "s0", "producer": "input:x", "first": "input:x"}}
    feature = FeatureStorages(forward, {2: {"id": f"s{FEATURE_STORAGE_OFFSET}", "producer": "a", "first": "a"}})
    runner = FeatureStorages(feature, {}, RUNNER_STORAGE_OFFSET)
    assert f"s{len(runner)}" == "s2000000" and f"s{len(feature)}" == "s1000001"
    assert 1 in runner and 2 in runner and runner[2]["id"] == "s1000000"
    runner[2]["producer"] = "event:7"                  # a producer noted through the runner's table
    assert dict.__getitem__(feature, 2)["producer"] == "event:7"
    runner[3] = {"id": f"s{len(runner)}", "producer": "alloc", "first": "alloc"}
    assert 3 not in feature and runner[3]["id"] == "s2000000" and f"s{len(feature)}" == "s1000001"
    assert [v["id"] for v in runner.values()] == ["s0", "s1000000", "s2000000"]
