"""Which pointer parameters of a Triton kernel it may write (``ast`` over the kernel's source).

The test worker records earlier launches without running them; an integer buffer one of them took
is refused as the target's input only when that kernel may *write* it (its contents would then be
that kernel's missing output).  A kernel that only reads the buffer (``seq_lens``, ``block_table``,
``cu_seqlens`` handed down a chain of kernels) leaves the test's values as they are.

:func:`written_params` is conservative: a parameter counts as written when a name derived from it
(by assignment, through any expression except a ``tl.load`` result) is the pointer of a
``tl.store`` / ``tl.atomic_*`` (or the receiver of a descriptor's ``.store`` / ``.atomic_*``), or
is passed to a function that is not ``tl.*`` / ``triton.*`` / a Python builtin -- unless that
function is a ``@triton.jit`` helper found in the kernel's globals, which is analysed the same way
(a few levels deep).  Source that does not parse: every parameter.
"""
from __future__ import annotations

import ast
import builtins
import inspect
import textwrap
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["written_params", "written_params_of"]

_MODULES = {"tl", "triton", "language", "libdevice", "math", "tlx", "core", "torch"}
_WRITES = ("store", "atomic_", "scatter")
_BUILTINS = set(dir(builtins))
_DEPTH = 3


def _root(node: ast.expr) -> str | None:
    while isinstance(node, ast.Attribute):
        node = node.value
    return node.id if isinstance(node, ast.Name) else None


def _is_write(attr: str) -> bool:
    return attr.startswith(_WRITES)


def _is_load(call: ast.Call) -> bool:
    f = call.func
    return isinstance(f, ast.Attribute) and f.attr in ("load", "gather") and _root(f) in _MODULES


def _names(node: ast.AST | None, derived: Mapping[str, set[str]]) -> set[str]:
    """The parameters an expression derives from (a ``tl.load`` result derives from none)."""
    if node is None:
        return set()
    if isinstance(node, ast.Call) and _is_load(node):
        return set()
    if isinstance(node, ast.Name):
        return set(derived.get(node.id, ()))
    out: set[str] = set()
    for child in ast.iter_child_nodes(node):
        out |= _names(child, derived)
    return out


def _targets(node: ast.AST) -> list[str]:
    return [n.id for n in ast.walk(node) if isinstance(n, ast.Name)]


def _propagate(fn: ast.FunctionDef, derived: dict[str, set[str]]) -> None:
    for _ in range(8):
        changed = False
        for node in ast.walk(fn):
            pairs: list[tuple[list[ast.AST], ast.AST | None]] = []
            if isinstance(node, ast.Assign):
                pairs.append((list(node.targets), node.value))
            elif isinstance(node, (ast.AugAssign, ast.AnnAssign, ast.NamedExpr)):
                pairs.append(([node.target], node.value))
            elif isinstance(node, ast.For):
                pairs.append(([node.target], node.iter))
            for targets, value in pairs:
                src = _names(value, derived)
                if not src:
                    continue
                for t in targets:
                    for name in _targets(t):
                        if not src <= derived.setdefault(name, set()):
                            derived[name] |= src
                            changed = True
        if not changed:
            return


def _pointer_arg(call: ast.Call) -> ast.AST | None:
    if call.args:
        return call.args[0]
    for k in call.keywords:
        if k.arg in ("pointer", "ptr", "base"):
            return k.value
    return None


def _helper(name: ast.expr, globs: Mapping[str, Any]) -> Any | None:
    obj: Any = None
    if isinstance(name, ast.Name):
        obj = globs.get(name.id)
    elif isinstance(name, ast.Attribute) and isinstance(name.value, ast.Name):
        obj = getattr(globs.get(name.value.id), name.attr, None)
    return obj if obj is not None and hasattr(obj, "fn") and hasattr(obj, "arg_names") else None


def _call_writes(call: ast.Call, derived: Mapping[str, set[str]], globs: Mapping[str, Any], depth: int) -> set[str]:
    f = call.func
    if isinstance(f, ast.Attribute) and _is_write(f.attr):
        if _root(f) in _MODULES:
            return _names(_pointer_arg(call), derived)
        return _names(f.value, derived) | _names(_pointer_arg(call), derived)
    if isinstance(f, ast.Attribute) and (_root(f) in _MODULES or _root(f) not in globs):
        return set()        # tl.* / a method of a value (x.to(...), desc.load(...))
    if isinstance(f, ast.Name) and f.id in _BUILTINS and f.id not in globs:
        return set()
    helper = _helper(f, globs) if depth < _DEPTH else None
    if helper is None:                    # an unknown callee: whatever derives from a parameter may be written
        out: set[str] = set()
        for a in [*call.args, *(k.value for k in call.keywords)]:
            out |= _names(a, derived)
        return out
    inner = written_params_of(helper, depth + 1)
    out = set()
    names = list(helper.arg_names)
    for i, a in enumerate(call.args):
        if i < len(names) and names[i] in inner:
            out |= _names(a, derived)
    for k in call.keywords:
        if k.arg is None or k.arg in inner:
            out |= _names(k.value, derived)
    return out


def written_params(src: str, params: Sequence[str], globs: Mapping[str, Any] | None = None,
                   depth: int = 0) -> frozenset[str]:
    """The parameters of the kernel whose source is ``src`` that it may write (see the module doc)."""
    try:
        tree = ast.parse(textwrap.dedent(src))
    except SyntaxError:
        return frozenset(params)
    fn = next((n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)), None)
    if fn is None:
        return frozenset(params)
    derived: dict[str, set[str]] = {p: {p} for p in params}
    _propagate(fn, derived)
    out: set[str] = set()
    for node in ast.walk(fn):
        if isinstance(node, ast.Call):
            out |= _call_writes(node, derived, globs or {}, depth)
    return frozenset(out & set(params))


_memo: dict[int, frozenset[str]] = {}


def written_params_of(jit_fn: Any, depth: int = 0) -> frozenset[str]:
    """:func:`written_params` of a ``triton.runtime.jit.JITFunction`` (memoised per function)."""
    key = id(jit_fn)
    if key in _memo:
        return _memo[key]
    params = tuple(getattr(jit_fn, "arg_names", ()) or ())
    fn = getattr(jit_fn, "fn", None)
    try:
        src = getattr(jit_fn, "src", None) or inspect.getsource(fn)  # type: ignore[arg-type]
    except (OSError, TypeError):
        _memo[key] = frozenset(params)
        return _memo[key]
    _memo[key] = frozenset(params)          # a recursive helper: conservative while it is analysed
    _memo[key] = written_params(src, params, getattr(fn, "__globals__", {}), depth)
    return _memo[key]
