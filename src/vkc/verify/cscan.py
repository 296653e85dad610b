"""Light lexical helpers for C++/CUDA text: blank comments and literals, list includes."""
from __future__ import annotations

import re

_TOKEN = re.compile(
    r"""(?P<line>//[^\n]*)"""
    r"""|(?P<block>/\*.*?(?:\*/|\Z))"""
    r"""|(?P<raw>\bR"(?P<delim>[^()\\\s"]{0,16})\(.*?\)(?P=delim)")"""
    r"""|(?P<str>"(?:\\.|[^"\\\n])*")"""
    r"""|(?P<chr>(?<![A-Za-z0-9_])'(?:\\.|[^'\\\n])*')""",
    re.S,
)
_INCLUDE = re.compile(r"^[ \t]*#[ \t]*include[ \t]*([<\"])([^>\"\n]+)[>\"]", re.M)


def _blank(text: str) -> str:
    return "".join(c if c == "\n" else " " for c in text)


def strip_c(src: str, *, keep_strings: bool = False) -> str:
    """``src`` with comments (and, unless ``keep_strings``, string/char literal contents)
    replaced by spaces; newlines and offsets are preserved."""

    def sub(m: re.Match[str]) -> str:
        kind = m.lastgroup if m.lastgroup != "delim" else "raw"
        text = m.group(0)
        if kind in ("line", "block"):
            return _blank(text)
        if keep_strings:
            return text
        return text[0] + _blank(text[1:-1]) + text[-1] if len(text) >= 2 else text

    return _TOKEN.sub(sub, src)


def includes(src: str) -> list[tuple[str, str]]:
    """``(form, header)`` for each ``#include`` outside comments; form is ``<`` or ``"``."""
    return [(m.group(1), m.group(2).strip()) for m in _INCLUDE.finditer(strip_c(src, keep_strings=True))]


def line_of(text: str, offset: int) -> int:
    """1-based line number of ``offset`` in ``text``."""
    return text.count("\n", 0, offset) + 1
