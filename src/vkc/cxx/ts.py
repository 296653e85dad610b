"""tree-sitter-cuda helpers: a shared parser, same-length macro pre-substitution."""
from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from functools import lru_cache

import tree_sitter
import tree_sitter_cuda

from vkc.cxx.text import balanced_close

Node = tree_sitter.Node


@lru_cache(maxsize=1)
def _parser() -> tree_sitter.Parser:
    return tree_sitter.Parser(tree_sitter.Language(tree_sitter_cuda.language()))


# Attribute-like macros the grammar does not know; blanked (same length) before parsing.
_ATTR_CALLS = re.compile(
    r"\b(__launch_bounds__|C10_LAUNCH_BOUNDS_\d|__quickreduce_launch_bounds_\w*__|__align__|"
    r"__attribute__|alignas|__declspec|__cluster_dims__)\s*\(")
_ATTR_WORDS = re.compile(
    r"\b(DINLINE|HOST_DEVICE_INLINE|DEVICE_INLINE|FORCE_INLINE|C10_HOST_DEVICE|C10_DEVICE|"
    r"C10_HOST|C10_ALWAYS_INLINE|C10_ALWAYS_INLINE_ATTRIBUTE|MAYBE_HOST_DEVICE|__forceinline__|"
    r"__noinline__|__inline__|__quickreduce_device_inline__|__quickreduce_launch_bounds_\w*__|"
    r"CUTLASS_DEVICE|CUTLASS_HOST_DEVICE|CUTE_HOST_DEVICE|CUTE_DEVICE|VLLM_INLINE|"
    r"__restrict__|__restrict|__grid_constant__|C10_UNUSED|C10_NODISCARD)\b")


def _blank(s: str) -> str:
    return re.sub(r"[^\n]", " ", s)


def presubstitute(text: str) -> str:
    """Blank macros/attributes that confuse the grammar; offsets and lines are unchanged."""
    out = list(text)
    for m in _ATTR_CALLS.finditer(text):
        i = balanced_close(text, m.end() - 1)
        for k in range(m.start(), min(i + 1, len(text))):
            if out[k] != "\n":
                out[k] = " "
    s = _ATTR_WORDS.sub(lambda m: _blank(m.group(0)), "".join(out))
    # directive lines (#define DINLINE ...) keep their original text
    orig = text.split("\n")
    new = s.split("\n")
    cont = False
    for i, line in enumerate(orig):
        if cont or line.lstrip().startswith("#"):
            new[i] = line
            cont = line.rstrip().endswith("\\")
        else:
            cont = False
    return "\n".join(new)


def parse(text: str) -> tuple[tree_sitter.Tree, bytes]:
    """Parse (pre-substituted) text; returns the tree and the bytes it was parsed from."""
    data = presubstitute(text).encode("utf-8")
    return _parser().parse(data), data


def walk(node: Node, skip: tuple[str, ...] = ()) -> Iterator[Node]:
    """Pre-order traversal."""
    stack = [node]
    while stack:
        n = stack.pop()
        yield n
        if n.type in skip:
            continue
        stack.extend(reversed(n.children))


def text_of(node: Node, data: bytes) -> str:
    return data[node.start_byte:node.end_byte].decode("utf-8", "replace")


def byte_to_char(data: bytes) -> Callable[[int], int]:
    """Map byte offsets to str offsets (identity for ASCII files)."""
    if data.isascii():
        return lambda b: b
    import bisect
    starts: list[int] = []
    pos = 0
    for ch in data.decode("utf-8", "replace"):
        starts.append(pos)
        pos += len(ch.encode("utf-8"))
    return lambda b: bisect.bisect_left(starts, b)


def decl_name(node: Node, data: bytes) -> str | None:
    """Innermost declarator identifier of a function_definition."""
    d = node.child_by_field_name("declarator")
    while d is not None and d.type != "function_declarator":
        nxt = d.child_by_field_name("declarator")
        if nxt is None:
            break
        d = nxt
    if d is None or d.type != "function_declarator":
        return None
    n = d.child_by_field_name("declarator")
    if n is None:
        return None
    return text_of(n, data)
