"""Helpers of the index tests: the fixture trees under tests/data/index/<case>/."""
from __future__ import annotations

from pathlib import Path

from vkc.records import SourceTree

CASES = Path(__file__).resolve().parents[1] / "data" / "index"


def case_tree(name: str, root: Path | None = None) -> SourceTree:
    root = root or CASES / name
    return SourceTree(root=root, version="local", origin=str(root))
