"""Partial imports of vLLM modules whose top level needs the CuTe DSL (runs only inside the trace worker).

vLLM's CUDA requirements install the CuTe DSL (``nvidia-cutlass-dsl``: ``cutlass``, ``cuda.bindings``);
the trace worker has neither.  Some model files import a CuTe-DSL kernel module only to ask its own gate
whether to use it, and on an H100 the gate declines before touching the DSL (Kimi-K3's
``maybe_init_gemm_rs_ar``: ``VLLM_KIMI_K3_GEMM_AR`` defaults on, the model imports
``kernels/linear/cute_dsl/gemm_rs_ar.py``, whose ``maybe_init_gemm_rs_ar`` answers False on a device that is
not SM100-family, at any TP).  For a module listed in :data:`GATED` -- and only while its DSL package is not
importable -- the import runs the module's own source statement by statement: every top-level statement
that fails for the missing package (an import of it, a decorator or base class from it, a name it left
undefined) is left out, everything else is vLLM's code as written.  So the gate decides as it does on an
H100; anything that would reach the DSL fails loudly (NameError), never silently.  The trace warns with the
module and what was left out.  Checklist step ``cute-dsl-gates`` fingerprints each gate function.
"""
from __future__ import annotations
import __future__

import ast
import importlib.abc
import importlib.machinery
import importlib.util
import sys
import types
from pathlib import Path
from typing import Any

__all__ = ["GATED", "LEFT_OUT", "install_gated_imports", "partial_module"]

# module -> (the missing package that triggers the partial import, the gate functions the model calls)
GATED: dict[str, tuple[str, tuple[str, ...]]] = {
    "vllm.model_executor.kernels.linear.cute_dsl.gemm_rs_ar": ("cutlass", ("maybe_init_gemm_rs_ar",)),
}
LEFT_OUT: dict[str, list[str]] = {}      # module -> the top-level statements left out ("line N: what")

_MISSING = (ImportError, NameError, AttributeError)


def _label(stmt: ast.stmt) -> str:
    name = getattr(stmt, "name", None)
    if name:
        return f"line {stmt.lineno}: {type(stmt).__name__.replace('Def', '').lower()} {name}"
    return f"line {stmt.lineno}: {ast.unparse(stmt).splitlines()[0][:60]}"


def partial_module(name: str, path: Path, gates: tuple[str, ...]) -> tuple[types.ModuleType, list[str]]:
    """``name`` executed from ``path`` one top-level statement at a time, those failing for a missing name
    or module left out; raises when a gate function itself could not be defined."""
    text = path.read_text(encoding="utf-8")
    tree = ast.parse(text, str(path))
    flags = 0
    for stmt in tree.body:
        if isinstance(stmt, ast.ImportFrom) and stmt.module == "__future__":
            flags |= sum(getattr(__future__, a.name).compiler_flag for a in stmt.names)
    mod = types.ModuleType(name)
    mod.__file__ = str(path)
    mod.__package__ = name.rpartition(".")[0]
    left: list[str] = []
    for stmt in tree.body:
        code = compile(ast.Module([stmt], []), str(path), "exec", flags=flags, dont_inherit=True)
        try:
            exec(code, mod.__dict__)  # noqa: S102 -- vLLM's own module source, one statement at a time
        except _MISSING:
            left.append(_label(stmt))
    missing = [g for g in gates if not callable(mod.__dict__.get(g))]
    if missing:
        raise ImportError(f"{name}: its gate {', '.join(missing)} needs the missing package itself")
    return mod, left


class _GatedFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def __init__(self, tree_root: Path) -> None:
        self.root = tree_root

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> Any:
        if fullname not in GATED or importlib.util.find_spec(GATED[fullname][0]) is not None:
            return None
        return importlib.machinery.ModuleSpec(fullname, self)

    def create_module(self, spec: Any) -> types.ModuleType:
        rel = Path(*spec.name.split(".")).with_suffix(".py")
        mod, left = partial_module(spec.name, self.root / rel, GATED[spec.name][1])
        LEFT_OUT[spec.name] = left
        return mod

    def exec_module(self, module: types.ModuleType) -> None:
        return None


def install_gated_imports(tree_root: str | Path) -> None:
    """Before the model is built: the modules of :data:`GATED` import partially while their package is missing."""
    sys.meta_path.insert(0, _GatedFinder(Path(tree_root)))
