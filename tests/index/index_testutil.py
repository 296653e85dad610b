"""Helpers of the index tests: the fixture trees under tests/data/index/<case>/."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from vkc.records import SourceTree

CASES = Path(__file__).resolve().parents[1] / "data" / "index"


def case_tree(name: str, root: Path | None = None) -> SourceTree:
    root = root or CASES / name
    return SourceTree(root=root, version="local", origin=str(root))


def check_golden(path: Path, text: str) -> None:
    """Compare with a golden file; VKC_UPDATE_GOLDEN=1 rewrites it."""
    if os.environ.get("VKC_UPDATE_GOLDEN") == "1" or not path.exists():
        if os.environ.get("VKC_UPDATE_GOLDEN") != "1":
            pytest.fail(f"golden file {path} missing (run with VKC_UPDATE_GOLDEN=1)")
        path.write_text(text + "\n", encoding="utf-8")
    assert text + "\n" == path.read_text(encoding="utf-8")
