"""Triton compiler helpers shared by the Triton invoker's probe, ``vkc verify --compile`` and
``vkc fidelity``: load an entry from a source file and build its ``ASTSource``.

``triton`` is imported inside the functions (this module is imported where Triton is absent).
"""
from __future__ import annotations

import importlib.util
import inspect
import sys
from pathlib import Path
from typing import Any

from vkc.dtypes import DTYPES

__all__ = ["decode_constexpr", "load_entry", "make_ast_source"]

# Triton signature names of the floating dtypes in the traced literal -> triton.language attribute names
_TL_ALIAS = {d.triton: d.tl for d in DTYPES if d.is_floating_point and d.triton and d.tl}


def decode_constexpr(v: Any) -> Any:
    """A constexpr value of the ``VKC_COMPILE`` literal: ``{"__float__": s}`` -> float,
    ``{"__tl_dtype__": name}`` -> the ``triton.language`` dtype; anything else unchanged."""
    if isinstance(v, dict):
        if "__float__" in v:
            return float(v["__float__"])
        if "__tl_dtype__" in v:
            import triton.language as tl

            name: str = v["__tl_dtype__"]
            return getattr(tl, _TL_ALIAS.get(name) or name)
    return v


def load_entry(src_path: Path, entry: str) -> Any:
    """Import ``src_path`` as a fresh module and return its JIT function ``entry`` (a dotted
    attribute path), unwrapped from any Autotuner / Heuristics decorators."""
    from triton.runtime.autotuner import Autotuner, Heuristics

    spec = importlib.util.spec_from_file_location(f"vkc_verify_{abs(hash(str(src_path)))}", src_path)
    assert spec is not None and spec.loader is not None, src_path
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    obj: Any = mod
    for part in entry.split("."):
        obj = getattr(obj, part)
    while isinstance(obj, (Autotuner, Heuristics)):
        obj = obj.fn
    return obj


def make_ast_source(fn: Any, signature: dict[str, str], constexprs: dict[str, Any],
                    attrs: dict[str, list[Any]]) -> Any:
    """ASTSource across Triton versions: 3.3+ (constexprs=, name->type signature incl. 'constexpr')
    or older (constants= keyed by index, signature without constexprs)."""
    from triton.compiler import ASTSource

    names = list(fn.arg_names)
    params = inspect.signature(ASTSource.__init__).parameters
    if "constexprs" in params:
        cx = {(names.index(k),): decode_constexpr(v) for k, v in constexprs.items()}
        at = {(names.index(k),): [tuple(a) if isinstance(a, list) else a for a in v] for k, v in attrs.items()}
        return ASTSource(fn=fn, signature=signature, constexprs=cx, attrs=at)
    # Triton < 3.3: constants by index, signature of non-constexpr args only, no attrs descriptor
    sig = {names.index(k): t for k, t in signature.items() if t != "constexpr"}
    consts = {names.index(k): decode_constexpr(v) for k, v in constexprs.items()}
    return ASTSource(fn=fn, signature=sig, constants=consts)
