"""The per-tree index cache: hits, invalidation, corruption, atomic writes."""
from __future__ import annotations

import json
import os
import shutil
import time

import pytest
from index_testutil import CASES, case_tree

import vkc.index.build as build_mod
from vkc.index import build_index
from vkc.index.cache import cache_key, cache_path


@pytest.fixture
def tree(tmp_path):
    shutil.copytree(CASES / "crossmod", tmp_path / "src")
    return case_tree("crossmod", tmp_path / "src")


@pytest.fixture
def scans(monkeypatch):
    """Counts Triton scans (the sentinel for 'was the tree rescanned?')."""
    calls = []
    real = build_mod.scan_triton

    def counting(tree):
        calls.append(tree.root)
        return real(tree)
    monkeypatch.setattr(build_mod, "scan_triton", counting)
    return calls


def test_second_build_is_a_cache_hit(tree, tmp_cache, scans):
    first = build_index(tree)
    assert cache_path(tree).is_file()
    second = build_index(tree)
    assert len(scans) == 1
    assert second == first
    assert [p.name for p in cache_path(tree).parent.iterdir()] == [cache_path(tree).name]  # no temp files


def test_file_change_invalidates(tree, tmp_cache, scans):
    before = build_index(tree)
    f = tree.root / "vllm" / "ops" / "other.py"
    f.write_text(f.read_text() + "\n\n@triton.jit\ndef added_kernel(x_ptr):\n    pass\n")
    st = f.stat()
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    after = build_index(tree)
    assert len(scans) == 2
    assert "vllm.ops.other:added_kernel" in {k.qualified for k in after.kernels}
    assert "vllm.ops.other:added_kernel" not in {k.qualified for k in before.kernels}


def test_new_file_invalidates(tree, tmp_cache, scans):
    k1 = cache_key(tree)
    build_index(tree)
    (tree.root / "vllm" / "ops" / "new.py").write_text("x = 1\n")
    assert cache_key(tree) != k1
    build_index(tree)
    assert len(scans) == 2


def test_corrupt_cache_rebuilds_silently(tree, tmp_cache, scans):
    good = build_index(tree)
    path = cache_path(tree)
    for junk in ("{not json", json.dumps({"format": 1, "key": "wrong", "kernels": []}),
                 json.dumps({"format": 1, "key": cache_key(tree), "kernels": [{"lang": "triton"}]})):
        path.write_text(junk)
        assert build_index(tree) == good
    assert len(scans) == 4
    assert build_index(tree) == good        # rewritten: a hit again
    assert len(scans) == 4


def test_use_cache_false_neither_reads_nor_writes(tree, tmp_cache, scans):
    build_index(tree, use_cache=False)
    assert not cache_path(tree).exists()
    build_index(tree)
    build_index(tree, use_cache=False)
    assert len(scans) == 3


def test_sdist_tree_keyed_by_sha256(tree):
    import dataclasses
    a = dataclasses.replace(tree, sha256="a" * 64)
    b = dataclasses.replace(tree, sha256="b" * 64)
    assert cache_key(a) != cache_key(b) != cache_key(tree)
    (tree.root / "vllm" / "ops" / "new.py").write_text("x = 1\n")
    assert cache_key(a) == cache_key(dataclasses.replace(tree, sha256="a" * 64))


@pytest.mark.sdist
@pytest.mark.slow
def test_cached_build_of_real_tree_is_5x_faster(vllm_tree, tmp_cache):
    t0 = time.perf_counter()
    first = build_index(vllm_tree)
    t1 = time.perf_counter()
    second = build_index(vllm_tree)
    t2 = time.perf_counter()
    assert second == first
    print(f"first build {t1 - t0:.2f}s, cached {t2 - t1:.3f}s")
    assert (t1 - t0) >= 5 * (t2 - t1)
