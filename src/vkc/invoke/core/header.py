"""One provenance header for every generated example: ``key: value`` comment lines.

The same fields in both languages; ``comment`` is ``"#"`` (Python) or ``"//"`` (C++).
Values are rendered with ``str``; a multi-line value continues on indented lines, a list puts one
item per line.  Every line is made safe for its comment (printable, no line splice), so text from a
config, a path or a model id cannot leave the comment.
"""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

__all__ = ["header_lines", "header_text"]


def _safe(text: str, comment: str) -> str:
    line = "".join(c if c.isprintable() or c == "\t" else "?" for c in text)
    if comment == "//":
        line = "".join(c if 32 <= ord(c) < 127 or c == "\t" else "?" for c in line)
        line = line.rstrip("\\ ")
    return line.rstrip()


def _one_line(v: Any) -> str:
    return " ".join(str(v).split())


def header_lines(fields: Iterable[tuple[str, Any]], comment: str = "#") -> list[str]:
    """Comment lines ``<comment> key: value`` (lists: one indented line per item)."""
    out: list[str] = []
    for key, value in fields:
        if isinstance(value, (list, tuple)):
            out.append(_safe(f"{comment} {key}:", comment))
            out.extend(_safe(f"{comment}   {_one_line(v)}", comment) for v in value)
        else:
            lines = str(value).splitlines() or [""]
            out.append(_safe(f"{comment} {key}: {lines[0]}", comment))
            out.extend(_safe(f"{comment}   {ln}", comment) for ln in lines[1:])
    return out


def header_text(fields: Iterable[tuple[str, Any]], comment: str = "#") -> str:
    return "\n".join(header_lines(fields, comment))
