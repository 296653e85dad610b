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
class LaunchChange:
    """One kernel of a model's step in the two releases (``vkc diff --model``)."""
    kind: str                 # ADDED (only the new step runs it) | REMOVED | CHANGED (its launches) | UNCHANGED
    kernel_kind: str          # "triton" | "cuda-op" | "aten" | "external" | "collective" | "triton-external"
    name_a: str | None        # the old release's name (Triton: qualified), None when added
    name_b: str | None        # the new release's name, None when removed
    source: str               # the Triton kernel's source class in the tree diff ("" when not a tree kernel)
    calls_a: float            # per step, whole model
    calls_b: float
    fields: tuple[str, ...]   # "grid (64, 8) -> (64, 16)", "constexpr BLOCK 16 -> 32", "arg q bfloat16[..] -> ..."

    @property
    def name(self) -> str:
        return self.name_b or self.name_a or ""


@dataclass(frozen=True)
class StepDiff:
    step: str                 # the step's id ("decode-b64-ctx4096")
    workload: str
    kernels: tuple[LaunchChange, ...]     # sorted by (kind order, kernel kind, name)


@dataclass(frozen=True)
class ModelDiff:
    """The model part of ``vkc diff --model M``; each pair is (old release, new release)."""
    model: str
    options: str                          # the serving options both traces used
    backends: tuple[tuple[str, ...], tuple[str, ...]]    # vLLM's own "Using ... backend" lines
    checklist: tuple[str, str]            # the start-up checklist's fingerprint status: "known" | "unknown"
    warnings: tuple[tuple[str, ...], tuple[str, ...]]
    importable: tuple[tuple[tuple[str, bool], ...], tuple[tuple[str, bool], ...]]
    steps: tuple[StepDiff, ...]


@dataclass(frozen=True)
class TreeDiff:
    a: TreeSide
    b: TreeSide
    changes: tuple[KernelChange, ...]     # sorted by (kind order, lang, qualified)
    threshold: float                      # similarity threshold (same language and name)
    rename_threshold: float               # similarity threshold across names (same language)
    unique_threshold: float = 0.25        # same name, left once on each side
    model: ModelDiff | None = None        # with --model


__all__ = ["ADDED", "CHANGED", "CLASSES", "EXTRACTED", "FALLBACK", "MOVED", "REMOVED", "UNCHANGED",
           "KernelChange", "KernelUnit", "LaunchChange", "ModelDiff", "StepDiff", "TreeDiff", "TreeSide"]
