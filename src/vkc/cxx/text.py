"""Small text helpers over C++ source shared by the CUDA index, extractor and invoker."""
from __future__ import annotations

import re

_OPEN, _CLOSE = "([{", ")]}"


def split_top(s: str, sep: str = ",", *, angles: bool = False, keep_empty_last: bool = False) -> list[str]:
    """Split ``s`` at ``sep`` outside brackets (and outside ``<...>`` when ``angles``).

    The last piece is dropped when it is blank, unless ``keep_empty_last``."""
    opens, closes = (_OPEN + "<", _CLOSE + ">") if angles else (_OPEN, _CLOSE)
    out: list[str] = []
    cur: list[str] = []
    depth = 0
    for ch in s:
        if ch in opens:
            depth += 1
        elif ch in closes:
            depth -= 1
        if ch == sep and depth == 0:
            out.append("".join(cur).strip())
            cur = []
        else:
            cur.append(ch)
    last = "".join(cur).strip()
    if last or keep_empty_last:
        out.append(last)
    return out


def paren_args(text: str, i: int) -> list[str]:
    """Top-level comma-split arguments of the bracket that opens at ``text[i]``."""
    depth = 0
    cur: list[str] = []
    out: list[str] = []
    for j in range(i, len(text)):
        c = text[j]
        if c in _OPEN:
            depth += 1
            if depth == 1:
                continue
        elif c in _CLOSE:
            depth -= 1
            if depth == 0:
                out.append("".join(cur).strip())
                return out
        if c == "," and depth == 1:
            out.append("".join(cur).strip())
            cur = []
        else:
            cur.append(c)
    return out


def tparam_name(p: str) -> str:
    """The name a template parameter declaration introduces (``int N = 4`` -> ``N``;
    a function-pointer NTTP ``void (*F)(int)`` -> ``F``)."""
    p = re.sub(r"\s*=.*$", "", p, flags=re.S).strip()
    m = re.search(r"\(\s*\*\s*(\w+)\s*\)", p)
    if m:
        return m.group(1)
    ids = re.findall(r"[A-Za-z_]\w*", p)
    return ids[-1] if ids else p


def balanced_close(text: str, open_idx: int) -> int:
    """Index of the ``)`` closing the ``(`` at ``open_idx`` (``len(text)`` when unbalanced)."""
    depth = 0
    for i in range(open_idx, len(text)):
        c = text[i]
        if c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
            if depth == 0:
                return i
    return len(text)


def line_of(text: str, off: int) -> int:
    """1-based line of character offset ``off``."""
    return text.count("\n", 0, off) + 1
