"""Deterministic Python literals for generated code (the one renderer; :func:`pyrepr`).

A leaf module: imports nothing from vkc."""
from __future__ import annotations

import math
from typing import Any

WIDTH = 100


def pyrepr(obj: Any, indent: int = 0) -> str:
    """A Python literal for ``obj`` (dict/list/tuple/str/int/float/bool/None), wrapped at WIDTH.

    Key order is kept as given (callers sort where order is not meaningful).  Non-finite
    floats become ``float('inf')`` / ``float('-inf')`` / ``float('nan')`` (a wrapper default such
    as ``dt_limit=(0.0, float("inf"))`` reaches this renderer).
    """
    flat = _flat(obj)
    if len(flat) + indent <= WIDTH or not isinstance(obj, (dict, list, tuple)) or not obj:
        return flat
    pad = " " * (indent + 4)
    if isinstance(obj, dict):
        items = [f"{pad}{_flat(k)}: {pyrepr(v, indent + 4)}," for k, v in obj.items()]
        return "{\n" + "\n".join(items) + "\n" + " " * indent + "}"
    open_, close = ("[", "]") if isinstance(obj, list) else ("(", ")")
    if all(not isinstance(x, (dict, list, tuple)) for x in obj):   # pack scalars per line
        lines, cur = [], ""
        for x in obj:
            piece = _flat(x) + ", "
            if cur and len(pad) + len(cur) + len(piece) > WIDTH:
                lines.append(pad + cur.rstrip())
                cur = ""
            cur += piece
        lines.append(pad + cur.rstrip())
        return open_ + "\n" + "\n".join(lines) + "\n" + " " * indent + close
    items = [f"{pad}{pyrepr(x, indent + 4)}," for x in obj]
    return open_ + "\n" + "\n".join(items) + "\n" + " " * indent + close


def _flat(obj: Any) -> str:
    if isinstance(obj, bool) or obj is None or isinstance(obj, (int, str)):
        return repr(obj)
    if isinstance(obj, float):
        if not math.isfinite(obj):
            return f"float({repr(obj)!r})"
        return repr(obj)
    if isinstance(obj, dict):
        return "{" + ", ".join(f"{_flat(k)}: {_flat(v)}" for k, v in obj.items()) + "}"
    if isinstance(obj, list):
        return "[" + ", ".join(_flat(x) for x in obj) + "]"
    if isinstance(obj, tuple):
        inner = ", ".join(_flat(x) for x in obj)
        return "(" + inner + ("," if len(obj) == 1 else "") + ")"
    raise TypeError(f"cannot render {type(obj).__name__} as a literal")


__all__ = ["WIDTH", "pyrepr"]
