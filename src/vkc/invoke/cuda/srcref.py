"""Find wrapper code verbatim (whitespace-insensitive) in the vLLM tree -> file:line."""
from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

from vkc.errors import InvocationError
from vkc.records import SourceTree


@lru_cache(maxsize=64)
def _squeezed(path: str) -> tuple[str, tuple[int, ...]]:
    """File text without whitespace, and the 1-based line of each kept character."""
    chars: list[str] = []
    lines: list[int] = []
    text = Path(path).read_text(encoding="utf-8", errors="replace")
    text = re.sub(r"\\[ \t]*\n", " \n", text)   # macro line continuations
    line = 1
    for ch in text:
        if ch == "\n":
            line += 1
        elif not ch.isspace():
            chars.append(ch)
            lines.append(line)
    return "".join(chars), tuple(lines)


def locate(tree: SourceTree, file: str, text: str, after: int = 0) -> int:
    """1-based line where ``text`` starts in ``file`` (first match at or after line ``after``).

    Raises InvocationError when the code is not there: the recipe was written for
    another vLLM version and must be checked.
    """
    path = Path(tree.root) / file
    if not path.is_file():
        raise InvocationError(f"{file} is missing from the vLLM tree",
                              hint="the recipe was written for vLLM 0.33.0; check the --vllm tree")
    squeezed, lines = _squeezed(str(path))
    needle = "".join(text.split())
    start = 0
    while True:
        pos = squeezed.find(needle, start)
        if pos < 0:
            raise InvocationError(
                f"wrapper code not found in {file}: {' '.join(text.split())[:80]!r}",
                hint="the recipe was written for vLLM 0.33.0; the wrapper changed in this tree")
        if lines[pos] >= after:
            return lines[pos]
        start = pos + 1


def origin(tree: SourceTree, file: str, text: str, after: int = 0) -> str:
    return f"{file}:{locate(tree, file, text, after)}"
