"""Light lexical helpers for C++/CUDA text: blank comments and literals, list includes."""
from __future__ import annotations

import functools
import re

_TOKEN = re.compile(
    r"""(?P<line>//[^\n]*)"""
    r"""|(?P<block>/\*.*?(?:\*/|\Z))"""
    r"""|(?P<raw>\bR"(?P<delim>[^()\\\s"]{0,16})\(.*?(?:\)(?P=delim)"|\Z))"""   # unterminated: to the end
    r"""|(?P<str>"(?:\\.|[^"\\\n])*(?:"|(?=\n)|\Z))"""      # unterminated: to the line's end
    r"""|(?P<chr>(?<![A-Za-z0-9_])'(?:\\.|[^'\\\n])*(?:'|(?=\n)|\Z))""",
    re.S,
)
_INCLUDE = re.compile(r"^[ \t]*#[ \t]*include[ \t]*([<\"])([^>\"\n]+)[>\"]", re.M)


_NOT_NL = re.compile(r"[^\n]+")


def _blank(text: str) -> str:
    if "\n" not in text:
        return " " * len(text)
    return _NOT_NL.sub(lambda m: " " * len(m.group(0)), text)


def strip_c(src: str, *, keep_strings: bool = False) -> str:
    """``src`` with comments (and, unless ``keep_strings``, string/char literal contents)
    replaced by spaces; newlines and offsets are preserved.  Linear in ``len(src)``
    (unterminated literals end at the line's end, raw strings and comments at the end)."""
    return _strip_both(src)[1 if keep_strings else 0]


@functools.lru_cache(maxsize=8)
def _strip_both(src: str) -> tuple[str, str]:
    """(strings blanked, strings kept), from one pass over the tokens."""
    blanked: list[str] = []
    kept: list[str] = []
    pos = 0
    for m in _TOKEN.finditer(src):
        text = m.group(0)
        plain = src[pos:m.start()]
        if text[0] == "/":       # a comment
            blank = _blank(text)
            blanked += (plain, blank)
            kept += (plain, blank)
        else:
            if len(text) < 2:
                blank = text
            elif text[-1] == ("'" if text[0] == "'" else '"'):
                blank = text[0] + _blank(text[1:-1]) + text[-1]
            else:                # unterminated
                blank = text[0] + _blank(text[1:])
            blanked += (plain, blank)
            kept += (plain, text)
        pos = m.end()
    blanked.append(src[pos:])
    kept.append(src[pos:])
    return "".join(blanked), "".join(kept)


def includes(src: str) -> list[tuple[str, str]]:
    """``(form, header)`` for each ``#include`` outside comments; form is ``<`` or ``"``."""
    return [(m.group(1), m.group(2).strip()) for m in _INCLUDE.finditer(strip_c(src, keep_strings=True))]


def line_of(text: str, offset: int) -> int:
    """1-based line number of ``offset`` in ``text``."""
    return text.count("\n", 0, offset) + 1
