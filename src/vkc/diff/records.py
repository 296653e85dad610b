"""The frozen records of ``vkc diff``: one kernel's unit, one matched/unmatched kernel, the tree diff."""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

EXTRACTED = "extracted"   # the unit is what ``vkc collect`` puts in ``source_code`` (header stripped)
FALLBACK = "fallback"     # extraction failed: the kernel's own source text from the index span

ADDED, REMOVED, MOVED, CHANGED, UNCHANGED = "added", "removed", "moved", "changed", "unchanged"
CLASSES = (ADDED, REMOVED, MOVED, CHANGED, UNCHANGED)


def _unlined(qualified: str) -> str:
    return re.sub(r"@\d+$", "", qualified)


@dataclass(frozen=True)
class KernelUnit:
    """One kernel of one tree, with the text that is hashed and diffed."""
    lang: str
    name: str
    qualified: str
    file: str
    line: int
    role: str
    status: str               # EXTRACTED | FALLBACK
    text: str                 # the normalised unit (EXTRACTED) or the span text (FALLBACK)
    span: str                 # the kernel's own source lines (always)
    reason: str = ""          # why extraction failed (FALLBACK)
    template_params: tuple[str, ...] = ()   # C++ template parameter declarations (CUDA), from the index

    def where(self) -> dict[str, Any]:
        return {"qualified": self.qualified, "file": self.file, "line": self.line, "role": self.role,
                "status": self.status, **({"reason": self.reason} if self.reason else {}),
                **({"template_params": list(self.template_params)} if self.template_params else {})}


@dataclass(frozen=True)
class KernelChange:
    """One kernel of the diff: ``a`` is None for added, ``b`` is None for removed."""
    kind: str                 # one of CLASSES
    lang: str
    name: str
    a: KernelUnit | None
    b: KernelUnit | None
    match: str = ""           # "hash" | "span-hash" | "name" | "similarity" ("" when unmatched)
    similarity: float | None = None   # line-based difflib ratio of the compared texts (rounded)
    compared: str = ""        # "unit" | "span" (span when either side fell back)
    diff: str = ""            # unified diff of the compared texts ("" when identical)
    added_lines: int = 0
    removed_lines: int = 0

    @property
    def qualified(self) -> str:
        side = self.b or self.a
        assert side is not None
        return side.qualified

    @property
    def moved(self) -> bool:
        """Another file or qualified name (a CUDA overload's ``@LINE`` suffix alone does not count)."""
        return self.a is not None and self.b is not None and (
            _unlined(self.a.qualified) != _unlined(self.b.qualified) or self.a.file != self.b.file)


@dataclass(frozen=True)
class TreeSide:
    version: str
    citation: str
    kernels: int
    fallbacks: int
    label: str = ""           # "vLLM 0.33.0", or "local tree PATH" for --from-path/--to-path


@dataclass(frozen=True)
class TreeDiff:
    a: TreeSide
    b: TreeSide
    changes: tuple[KernelChange, ...]     # sorted by (kind order, lang, qualified)
    threshold: float                      # similarity threshold (same language and name)
    rename_threshold: float               # similarity threshold across names (same language)
    unique_threshold: float = 0.25        # same name, left once on each side


__all__ = ["ADDED", "CHANGED", "CLASSES", "EXTRACTED", "FALLBACK", "MOVED", "REMOVED", "UNCHANGED",
           "KernelChange", "KernelUnit", "TreeDiff", "TreeSide"]
