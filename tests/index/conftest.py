"""Fixtures of the index tests."""
from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def tmp_cache(monkeypatch, tmp_path) -> Path:
    """An empty vkc cache directory for this test."""
    d = tmp_path / "vkc-cache"
    monkeypatch.setenv("VKC_CACHE_DIR", str(d))
    return d
