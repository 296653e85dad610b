"""Closure items and the source edits that rewrite them.

An :class:`Item` is one top-level definition of the generated module; its edits
(:class:`Edit`) are rendered lazily over the final name map (see :mod:`.closure`).
"""
from __future__ import annotations

import ast
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from vkc.extract.triton.modinfo import ModuleInfo
from vkc.extract.triton.values import Constexpr

Key = tuple  # (module, name) or ("<ext>", canonical)
Names = dict  # Key -> final name


@dataclass
class Edit:
    """Replace source text [start, end) with ``render(names)``."""
    start: tuple[int, int]          # (line, char col), 1-based line
    end: tuple[int, int]
    render: Callable[[Names], str]


@dataclass
class Item:
    """One top-level definition of the generated module."""
    key: Key
    kind: str                       # func | class | alias | const | import | module
    module: str
    name: str                       # preferred name
    node: ast.AST | None = None
    edits: list[Edit] = field(default_factory=list)
    deps: list[Key] = field(default_factory=list)
    render: Callable[[Names], str] | None = None   # alias/const/import statement
    jit: bool = False
    dedent: bool = False

    def dep(self, k: Key) -> None:
        if k != self.key and k not in self.deps:
            self.deps.append(k)


def _pos(info: ModuleInfo, line: int, col: int) -> tuple[int, int]:
    raw = info.lines[line - 1].encode("utf-8")[:col]
    return line, len(raw.decode("utf-8", errors="ignore"))


def span(info: ModuleInfo, node: Any) -> tuple[tuple[int, int], tuple[int, int]]:
    return (_pos(info, node.lineno, node.col_offset), _pos(info, node.end_lineno, node.end_col_offset))


def apply_edits(info: ModuleInfo, start: tuple[int, int], end: tuple[int, int], edits: list[Edit],
                names: Names) -> str:
    """Text of [start, end) of the module with the edits inside it applied."""
    lines = info.lines
    offs = [0]
    for ln in lines:
        offs.append(offs[-1] + len(ln))
    absf = lambda p: offs[p[0] - 1] + p[1]
    a, b = absf(start), absf(end)
    text = info.text
    out, cur = [], a
    for e in sorted(edits, key=lambda e: absf(e.start)):
        s, t = absf(e.start), absf(e.end)
        if s < cur or t > b:
            continue  # nested inside a larger edit, or outside
        out.append(text[cur:s])
        out.append(e.render(names))
        cur = t
    out.append(text[cur:b])
    return "".join(out)



def _root_name(node) -> ast.Name | None:
    while isinstance(node, (ast.Attribute, ast.Call, ast.Subscript)):
        node = node.value if not isinstance(node, ast.Call) else node.func
    return node if isinstance(node, ast.Name) else None


def _needs_constexpr(v) -> bool:
    return isinstance(v, (int, float, bool, str)) and not isinstance(v, Constexpr)


def _line_end(info: ModuleInfo, e: tuple[int, int]) -> tuple[int, int]:
    return (e[0], len(info.lines[e[0] - 1].rstrip("\r\n")))

