"""Safe, relative file names inside an export's output folder, and the export summary.

Every name an exporter writes is built from vkc's own pieces: the kernel's
:func:`vkc.naming.safe_stem` (checked), a slug of the model id and the workload (reduced to
``[A-Za-z0-9._-]``), and fixed file names; :func:`safe_join` refuses anything else.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vkc.errors import WriteError

__all__ = ["ExportSummary", "safe_join", "slug", "task_name", "write_bytes", "write_text"]

_SAFE_PART = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.@\-]{0,199}")


def slug(text: object, limit: int = 80) -> str:
    """``org/name`` -> ``org--name``; other characters outside ``[A-Za-z0-9._-]`` -> ``_`` (then a
    hash of the original is appended, so two ids never share a slug); never empty, never ``..``."""
    raw = str(text).replace("/", "--")
    s = re.sub(r"\.{2,}", "_", re.sub(r"[^A-Za-z0-9._-]+", "_", raw)).strip("._-")
    if s != raw or len(s) > limit:
        digest = hashlib.sha256(str(text).encode("utf-8", "replace")).hexdigest()[:8]
        s = f"{s[:limit]}-{digest}".lstrip("-")
    return s or "none"


def task_name(stem: str, model: str | None, workload: str | None) -> str:
    """``<kernel stem>__<model slug>__<workload>`` (the stem is already safe_stem-checked)."""
    name = f"{stem}__{slug(model or 'default')}__{slug(workload or 'none')}"
    if not _SAFE_PART.fullmatch(name) or ".." in name:
        raise ValueError(f"unsafe task name {name[:80]!r}")
    return name


def safe_join(root: Path, *parts: str) -> Path:
    """``root/part/...`` for plain parts only (no separators, no ``..``, no leading dot)."""
    for p in parts:
        if not _SAFE_PART.fullmatch(p) or ".." in p:
            raise ValueError(f"refusing file name {p[:80]!r}")
    path = root.joinpath(*parts)
    assert os.path.commonpath([os.path.abspath(root), os.path.abspath(path)]) == os.path.abspath(root)
    return path


def write_bytes(path: Path, data: bytes) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)
    except OSError as e:
        raise WriteError(f"cannot write {path}: {e.strerror or e}", hint="check the --out folder") from e


def write_text(path: Path, text: str) -> None:
    write_bytes(path, text.encode("utf-8"))


@dataclass
class ExportSummary:
    """What an export wrote and skipped (``OUTDIR/export_summary.json``)."""
    fmt: str
    out: Path
    written: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[dict[str, Any]] = field(default_factory=list)

    def skip(self, artifact: str, reason: str) -> None:
        self.skipped.append({"artifact": artifact, "reason": reason})

    def reasons(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for s in self.skipped:
            key = str(s["reason"]).split(":", 1)[0]
            counts[key] = counts.get(key, 0) + 1
        return dict(sorted(counts.items()))

    def to_json(self) -> dict[str, Any]:
        return {"format": self.fmt, "written": len(self.written), "skipped": len(self.skipped),
                "skip_reasons": self.reasons(), "items": self.written, "skips": self.skipped}

    def save(self) -> Path:
        path = self.out / "export_summary.json"
        write_text(path, json.dumps(self.to_json(), indent=1, sort_keys=True) + "\n")
        return path

    def line(self) -> str:
        why = ", ".join(f"{k}: {v}" for k, v in self.reasons().items())
        return f"{len(self.written)} written, {len(self.skipped)} skipped" + (f" ({why})" if why else "")
