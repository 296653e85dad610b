"""Shared fixtures.

``vllm_tree`` is the real vLLM sdist, fetched once from the package index and kept in
the vkc cache (``VKC_CACHE_DIR``, default ``~/.cache/vkc``), so every test module
after the first reuses it.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from vkc.records import SourceTree

DATA = Path(__file__).parent / "data"
# model-traced Triton examples spawn a vLLM model trace; tests opt in explicitly (monkeypatch)
os.environ.setdefault("VKC_MODEL_TRACE", "0")
# test-traced Triton examples run vLLM's own tests in a worker; tests opt in explicitly (monkeypatch)
os.environ.setdefault("VKC_TEST_TRACE", "0")


@pytest.fixture(scope="session", autouse=True)
def _no_hub_network():
    """Tests never reach the real Hugging Face hub: bundled snapshots or a local test hub."""
    old = os.environ.get("HF_HUB_OFFLINE")
    os.environ["HF_HUB_OFFLINE"] = "1"
    yield
    if old is None:
        os.environ.pop("HF_HUB_OFFLINE", None)
    else:
        os.environ["HF_HUB_OFFLINE"] = old


@pytest.fixture(scope="session")
def vllm_tree() -> SourceTree:
    from vkc.source import resolve_source
    return resolve_source()


UPDATE_GOLDEN = os.environ.get("VKC_UPDATE_GOLDEN") == "1"


def check_golden(path: Path, actual: str | bytes) -> None:
    """``actual`` must equal the golden file ``path`` byte for byte (text is written and read as
    UTF-8); with ``VKC_UPDATE_GOLDEN=1`` the file is (re)written first."""
    data = actual.encode("utf-8") if isinstance(actual, str) else actual
    if UPDATE_GOLDEN:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    assert path.is_file(), f"missing golden file {path}; run with VKC_UPDATE_GOLDEN=1"
    assert data == path.read_bytes(), f"{path} differs; VKC_UPDATE_GOLDEN=1 rewrites it"


@pytest.fixture
def golden():
    """``golden(path, actual)``: compare with (or, with ``VKC_UPDATE_GOLDEN=1``, rewrite) a
    golden file; the one golden-update mechanism of the test suite."""
    return check_golden


@pytest.fixture(scope="session")
def has_nvcc() -> bool:
    return shutil.which("nvcc") is not None


@pytest.hookimpl(tryfirst=True)  # before ``-m`` deselects: an nvcc test is a ``heavy`` one
def pytest_collection_modifyitems(config, items):
    skip_nvcc = pytest.mark.skip(reason="nvcc not on PATH")
    skip_gpu = pytest.mark.skip(reason="no NVIDIA GPU")
    have_nvcc = shutil.which("nvcc") is not None
    have_gpu = _have_gpu()
    for item in items:
        if item.get_closest_marker("nvcc") and not item.get_closest_marker("heavy"):
            item.add_marker(pytest.mark.heavy)
        if "nvcc" in item.keywords and not have_nvcc:
            item.add_marker(skip_nvcc)
        if "gpu" in item.keywords and not have_gpu:
            item.add_marker(skip_gpu)


def _have_gpu() -> bool:
    if os.environ.get("CUDA_VISIBLE_DEVICES") == "":
        return False
    try:
        import torch
        return bool(torch.cuda.is_available())
    except Exception:
        return False
