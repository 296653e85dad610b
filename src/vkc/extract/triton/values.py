"""Symbolic values of the static evaluator and their rendering as Python literals."""
from __future__ import annotations

import ast
import math
import sys
from dataclasses import dataclass, field
from typing import Any

from vkc.extract.triton import torchinfo

# Canonical names of external modules in the generated module.
CANONICAL = {
    "triton": "triton",
    "triton.language": "tl",
    "triton.language.extra.libdevice": "libdevice",
    "triton.language.extra.cuda.libdevice": "libdevice",
    "triton.experimental.gluon": "gluon",
    "triton.experimental.gluon.language": "gl",
    "torch": "torch",
    "math": "math",
}
# import statement for each canonical name
IMPORTS = {
    "triton": "import triton",
    "tl": "import triton.language as tl",
    "libdevice": "from triton.language.extra import libdevice",
    "gluon": "from triton.experimental import gluon",
    "gl": "from triton.experimental.gluon import language as gl",
    "torch": "import torch",
    "math": "import math",
}
IMPORT_ORDER = ["math", "torch", "triton", "tl", "libdevice", "gluon", "gl"]


class Unresolved(Exception):
    """A value the static evaluator cannot compute."""


@dataclass(frozen=True)
class ExtRef:
    """A dotted path into an external (non-vLLM) module: ``triton.language.exp``."""
    path: str

    def attr(self, name: str) -> ExtRef:
        return ExtRef(f"{self.path}.{name}")


@dataclass(frozen=True)
class VllmModule:
    name: str


@dataclass(frozen=True)
class FuncRef:
    """A function (or class) defined in a vLLM module."""
    module: str
    name: str        # binding name in the module
    kind: str        # "jit" | "py" | "class"


@dataclass(frozen=True)
class Constexpr:
    value: Any


@dataclass
class ConfigVal:
    """``triton.Config(kwargs, num_warps=..., ...)``."""
    kwargs: dict
    options: dict = field(default_factory=dict)


@dataclass
class LambdaVal:
    node: ast.Lambda
    module: str


@dataclass
class Opaque:
    """A real Python object (torch.finfo, a dtype, ...) computed from allowed calls."""
    obj: Any


class PlatformObj:
    """``vllm.platforms.current_platform`` under the platform profile."""


class NotLiteral(Exception):
    pass


def ext_text(path: str) -> tuple[str, str]:
    """Render an external path with canonical module names -> (text, canonical root)."""
    best = ""
    for mod in CANONICAL:
        if (path == mod or path.startswith(mod + ".")) and len(mod) > len(best):
            best = mod
    if not best:
        raise NotLiteral(f"external object {path} has no canonical import")
    rest = path[len(best):]
    return CANONICAL[best] + rest, CANONICAL[best]


def to_literal(v: Any, uses: set[str] | None = None) -> str:
    """Python source text for a value; ``uses`` collects canonical modules needed."""
    uses = uses if uses is not None else set()
    if isinstance(v, Opaque):
        v = v.obj
    if v is None or isinstance(v, bool):
        return repr(v)
    if isinstance(v, int):
        return repr(v)
    if isinstance(v, float):
        if math.isnan(v):
            return 'float("nan")'
        if math.isinf(v):
            return 'float("inf")' if v > 0 else 'float("-inf")'
        return repr(v)
    if isinstance(v, str):
        return repr(v)
    if isinstance(v, tuple):
        inner = ", ".join(to_literal(x, uses) for x in v)
        return f"({inner},)" if len(v) == 1 else f"({inner})"
    if isinstance(v, list):
        return "[" + ", ".join(to_literal(x, uses) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{to_literal(k, uses)}: {to_literal(x, uses)}" for k, x in v.items()) + "}"
    if isinstance(v, Constexpr):
        uses.add("tl")
        return f"tl.constexpr({to_literal(v.value, uses)})"
    if isinstance(v, ConfigVal):
        uses.add("triton")
        parts = [to_literal(v.kwargs, uses)]
        parts += [f"{k}={to_literal(x, uses)}" for k, x in v.options.items()]
        return f"triton.Config({', '.join(parts)})"
    if isinstance(v, ExtRef):
        text, root = ext_text(v.path)
        uses.add(root)
        return text
    torch = sys.modules.get("torch")    # a real torch.dtype exists only if torch is imported
    if isinstance(v, torchinfo.dtype) or (torch is not None and isinstance(v, torch.dtype)):
        uses.add("torch")
        return str(v)
    mod = type(v).__module__ or ""
    if mod.startswith("triton.language") and hasattr(v, "name") and type(v).__name__ == "dtype":
        uses.add("tl")
        return f"tl.{v.name}"
    if type(v).__name__ == "constexpr" and mod.startswith("triton"):
        uses.add("tl")
        return f"tl.constexpr({to_literal(v.value, uses)})"
    raise NotLiteral(f"cannot write {type(v).__name__} value {v!r} as a literal")


def is_plain(v: Any) -> bool:
    """True for values that render to a literal without imports."""
    try:
        uses: set[str] = set()
        to_literal(v, uses)
        return not uses
    except NotLiteral:
        return False
