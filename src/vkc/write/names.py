"""The writer's file names: the result files vkc writes beside artifacts in a batch folder.

Kernel names and their file stems are :mod:`vkc.naming`; ``safe_stem`` is re-exported here
because the CUDA artifacts' headers name it ``vkc.write.names.safe_stem`` (artifact bytes
stay as they are).
"""
from __future__ import annotations

from vkc.naming import safe_stem

__all__ = ["RESULT_FILES", "is_artifact_file", "safe_stem"]

# Files vkc writes beside artifacts in a batch folder; never artifacts themselves.
RESULT_FILES = frozenset({"collect_results.json", "verify_results.json", "fidelity_results.json", "report.json"})


def is_artifact_file(filename: str) -> bool:
    """True for ``*.json`` names that can be artifacts (not dot-files, not vkc's result files)."""
    return filename.endswith(".json") and not filename.startswith(".") and filename not in RESULT_FILES
