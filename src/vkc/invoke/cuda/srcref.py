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


@lru_cache(maxsize=8)
def _files_by_name(root: str) -> dict[str, tuple[str, ...]]:
    out: dict[str, list[str]] = {}
    base = Path(root)
    for p in sorted((base / "csrc").rglob("*")) if (base / "csrc").is_dir() else []:
        if p.is_file():
            out.setdefault(p.name, []).append(p.relative_to(base).as_posix())
    return {k: tuple(v) for k, v in out.items()}


def relocated(root: str | Path, file: str) -> str | None:
    """The one file of the tree whose path ends with ``file`` less its first folder (``csrc/x/y.cu`` ->
    ``.../x/y.cu``) when ``file`` itself is not there: a file another release keeps in another folder
    (0.25.0 - 0.30.0: ``csrc/libtorch_stable/``).  None when there is no such file or more than one."""
    if (Path(root) / file).is_file():
        return None
    tail = file.split("/", 1)[1] if "/" in file else file
    found = [f for f in _files_by_name(str(root)).get(Path(file).name, ()) if f != file and f.endswith("/" + tail)]
    return found[0] if len(found) == 1 else None


def origin(tree: SourceTree, file: str, text: str, after: int = 0) -> str:
    return f"{file}:{locate(tree, file, text, after)}"
