"""CUTLASS/CuTe headers for the kernels that include them (vLLM's CMake fetches CUTLASS at build time).

A CUDA unit that uses ``cutlass::`` / ``cute::`` keeps its ``#include <cutlass/...>`` lines (external
includes, like CUDA's own); compiling it needs an include folder holding ``cutlass/cutlass.h``.
:func:`find_cutlass` says which one, in this order:

1. ``VKC_CUTLASS`` (``vkc verify --cutlass PATH`` sets it): a CUTLASS checkout (``PATH/include``) or
   its include folder itself, e.g. a clone of the tag vLLM pins;
2. the ``nvidia-cutlass`` wheel's headers (``cutlass_library/source/include``), when it is installed.

:func:`pinned_cutlass` reads the version vLLM's build pins (``CUTLASS_REVISION`` in the tree's
``CMakeLists.txt``), so a compile result can say when the headers used are another version.
"""
from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import re
from dataclasses import dataclass
from pathlib import Path

__all__ = ["ENV", "CutlassHeaders", "find_cutlass", "pinned_cutlass", "uses_cutlass"]

ENV = "VKC_CUTLASS"
_USES = re.compile(r"#\s*include\s*[<\"](?:cutlass|cute)/")


@dataclass(frozen=True)
class CutlassHeaders:
    include: str          # the folder holding cutlass/cutlass.h
    version: str          # "4.2.0" (from the wheel or cutlass/version.h), "" when unknown
    source: str           # "VKC_CUTLASS" | "nvidia-cutlass wheel"
    util: str | None = None   # tools/util/include beside it (cutlass/util/*.h), when present

    @property
    def flags(self) -> list[str]:
        return [f"-I{self.include}", *([f"-I{self.util}"] if self.util else [])]

    def describe(self) -> str:
        return f"CUTLASS {self.version or '(version unknown)'} headers from {self.source} ({self.include})"


def uses_cutlass(source: str) -> bool:
    """Whether a unit includes CUTLASS or CuTe headers."""
    return bool(_USES.search(source or ""))


def _header_version(include: Path) -> str:
    try:
        text = (include / "cutlass" / "version.h").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    parts = [re.search(rf"#define\s+CUTLASS_{k}\s+(\d+)", text) for k in ("MAJOR", "MINOR", "PATCH")]
    return ".".join(m.group(1) for m in parts if m) if all(parts) else ""


def _include_of(path: Path) -> Path | None:
    for cand in (path / "include", path):
        if (cand / "cutlass" / "cutlass.h").is_file():
            return cand
    return None


def _util_of(include: Path) -> str | None:
    util = include.parent / "tools" / "util" / "include"
    return str(util) if (util / "cutlass" / "util").is_dir() else None


def find_cutlass() -> CutlassHeaders | None:
    """The CUTLASS headers to compile with (see the module docstring), or None."""
    explicit = os.environ.get(ENV)
    if explicit:
        inc = _include_of(Path(explicit).expanduser())
        return CutlassHeaders(str(inc), _header_version(inc), ENV, _util_of(inc)) if inc is not None else None
    try:
        spec = importlib.util.find_spec("cutlass_library")
    except (ImportError, ValueError):
        spec = None
    for base in (spec.submodule_search_locations or []) if spec is not None else []:
        inc = _include_of(Path(base) / "source")
        if inc is not None:
            try:
                version = importlib.metadata.version("nvidia-cutlass")
            except importlib.metadata.PackageNotFoundError:
                version = _header_version(inc)
            return CutlassHeaders(str(inc), version, "nvidia-cutlass wheel", _util_of(inc))
    return None


def pinned_cutlass(tree_root: str | Path) -> str | None:
    """The CUTLASS version vLLM's CMake fetches (``set(CUTLASS_REVISION "v4.7.1" ...)``), or None."""
    try:
        text = (Path(tree_root) / "CMakeLists.txt").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    m = re.search(r"CUTLASS_REVISION\s+\"?v?([0-9][0-9.]*)", text)
    return m.group(1) if m else None
