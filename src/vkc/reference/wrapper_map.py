"""Which kernel parameter each of a wrapper's tensors becomes: the mapping from wrapper-level names to
kernel arguments, read statically from the wrapper's launch ``kernel[grid](...)``.

A positional argument after the launch's first ``*args`` (``*x.stride()``) has no known position and
is left out.  A wrapper parameter (or a local the wrapper allocates, or an alias ``y = x.view(...)`` /
``x.contiguous()`` of one) that the launch passes as a bare name (or ``n if n is not None else m``)
is the kernel argument at that position or keyword.  A name the wrapper rebinds any other way is
left out (its value at the launch is not the caller's).  ``returns``: the wrapper's ``return``
values, for the caller's unpacking of its result; ``defaults``: the defaults of the parameters the
wrapper never rebinds (a caller that omits one launches with that value).
"""
from __future__ import annotations

import ast
from dataclasses import dataclass, field
from pathlib import Path

from vkc.records import KernelEntry, LaunchSite

ALIAS_METHODS = frozenset({"contiguous", "view", "reshape", "flatten"})
ALLOC_EMPTY = frozenset({"empty", "empty_like", "new_empty", "empty_strided"})


@dataclass(frozen=True)
class WrapperLaunch:
    """The wrapper ``function`` of ``file`` and how its names reach the kernel's parameters."""

    file: str
    function: str
    params: tuple[str, ...]                       # positional-or-keyword parameters, in order
    kwonly: tuple[str, ...]
    to_kernel: dict[str, str] = field(default_factory=dict)     # wrapper name -> kernel parameter
    empty: frozenset[str] = frozenset()           # wrapper locals allocated uninitialised (torch.empty...)
    returns: tuple[ast.expr, ...] = ()
    defaults: dict[str, ast.expr] = field(default_factory=dict)  # parameter -> its default (a caller may omit it)


def _parse(root: Path, rel: str) -> ast.Module | None:
    try:
        return ast.parse((root / rel).read_text(encoding="utf-8"))
    except (OSError, SyntaxError, UnicodeDecodeError):
        return None


def kernel_params(root: Path, entry: KernelEntry) -> list[str] | None:
    """The kernel's parameters in order (a top-level ``def``; None otherwise)."""
    tree = _parse(root, entry.file)
    node = _function(tree, entry.qualname) if tree is not None and "." not in entry.qualname else None
    if node is None:
        return None
    return [a.arg for a in node.args.posonlyargs + node.args.args + node.args.kwonlyargs]


def _bare(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if (isinstance(node, ast.IfExp) and isinstance(node.body, ast.Name) and isinstance(node.test, ast.Compare)
            and isinstance(node.test.left, ast.Name) and node.test.left.id == node.body.id
            and len(node.test.ops) == 1 and isinstance(node.test.ops[0], ast.IsNot)):
        return node.body.id
    if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "contiguous"
            and isinstance(node.func.value, ast.Name) and not node.args):
        return node.func.value.id
    return None


def _alias_of(value: ast.expr) -> str | None:
    """``x.view(...)`` / ``x.reshape(...)`` / ``x.flatten()`` / ``x.contiguous()`` -> ``x``."""
    if (isinstance(value, ast.Call) and isinstance(value.func, ast.Attribute)
            and value.func.attr in ALIAS_METHODS and isinstance(value.func.value, ast.Name)):
        return value.func.value.id
    return None


def _stores(fn: ast.FunctionDef) -> dict[str, list[ast.AST]]:
    out: dict[str, list[ast.AST]] = {}
    for node in ast.walk(fn):
        if isinstance(node, ast.Assign):
            for t in node.targets:
                for n in ast.walk(t):
                    if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store):
                        out.setdefault(n.id, []).append(node if isinstance(t, ast.Name) else t)
        elif isinstance(node, (ast.AugAssign, ast.AnnAssign, ast.For, ast.With, ast.NamedExpr)):
            targets = [i.optional_vars for i in node.items if i.optional_vars is not None] if isinstance(
                node, ast.With) else [node.target]
            for n in (x for t in targets for x in ast.walk(t)):
                if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store):
                    out.setdefault(n.id, []).append(node)
    return out


def _function(tree: ast.Module, qualname: str) -> ast.FunctionDef | None:
    """The module-level ``def qualname`` (also inside a module-level ``if``/``try`` block)."""
    todo: list[ast.stmt] = list(tree.body)
    while todo:
        node = todo.pop(0)
        if isinstance(node, ast.FunctionDef) and node.name == qualname:
            return node
        if isinstance(node, ast.If):
            todo.extend(node.body + node.orelse)
        elif isinstance(node, ast.Try):
            todo.extend(node.body + node.orelse + node.finalbody)
    return None


def _launch_call(fn: ast.FunctionDef, kernel: str) -> list[ast.Call]:
    out = []
    for node in ast.walk(fn):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Subscript):
            head = node.func.value
            name = head.id if isinstance(head, ast.Name) else head.attr if isinstance(head, ast.Attribute) else None
            if name == kernel:
                out.append(node)
    return out


def wrapper_launch(root: Path, entry: KernelEntry, site: LaunchSite) -> WrapperLaunch | str:
    """The mapping of ``site``'s wrapper (a top-level function launching ``entry`` directly), or why not."""
    if site.form != "grid" or not site.wrapper or "." in site.wrapper or "<" in site.wrapper:
        return f"the launch at {site.file}:{site.line} is not a direct kernel[grid](...) in a top-level function"
    tree = _parse(root, site.file)
    fn = _function(tree, site.wrapper) if tree is not None else None
    kparams = kernel_params(root, entry)
    if fn is None or kparams is None:
        return f"cannot read the wrapper {site.wrapper} or the kernel's parameters"
    calls = _launch_call(fn, entry.name)
    if not calls:
        return f"{site.wrapper} does not launch {entry.name} as {entry.name}[grid](...)"
    stores = _stores(fn)
    params = tuple(a.arg for a in fn.args.posonlyargs + fn.args.args)
    kwonly = tuple(a.arg for a in fn.args.kwonlyargs)
    passed: list[tuple[str, ast.expr]] = []
    for call in calls:   # ``**kwargs`` of the launch (options, PDL flags) are not tensors; left out
        # positions are known up to the first ``*args`` (``*x.stride()``): the arguments after it are left out
        star = next((i for i, a in enumerate(call.args) if isinstance(a, ast.Starred)), len(call.args))
        passed += [(kparams[i], a) for i, a in enumerate(call.args[:star]) if i < len(kparams)]
        passed += [(k.arg, k.value) for k in call.keywords if k.arg in kparams]
    to_kernel: dict[str, str] = {}
    empty: set[str] = set()
    clash: set[str] = set()
    for kparam, expr in passed:
        if _bare(expr) in to_kernel and to_kernel[_bare(expr) or ""] != kparam:
            clash.add(_bare(expr) or "")
        name = _bare(expr)
        if name is None:
            continue
        defs = stores.get(name, [])
        is_param = name in params or name in kwonly
        ok = (not defs and is_param) or (len(defs) == 1 and isinstance(defs[0], ast.Assign))
        if not ok:
            # ``x = x.contiguous()`` on a parameter keeps the caller's values
            ok = is_param and all(isinstance(d, ast.Assign) and _alias_of(d.value) == name
                                  and isinstance(d.value, ast.Call) and isinstance(d.value.func, ast.Attribute)
                                  and d.value.func.attr == "contiguous" for d in defs)
        if not ok:
            continue
        to_kernel.setdefault(name, kparam)
        if len(defs) == 1 and isinstance(defs[0], ast.Assign):
            value = defs[0].value
            src = _alias_of(value)
            if not is_param and src is not None and src in (*params, *kwonly) and not stores.get(src):
                to_kernel.setdefault(src, kparam)
            if isinstance(value, ast.Call) and (
                    (isinstance(value.func, ast.Attribute) and value.func.attr in ALLOC_EMPTY)
                    or (isinstance(value.func, ast.Name) and value.func.id in ALLOC_EMPTY)):
                empty.add(name)
    for name in clash:   # several launches pass it as different parameters: not one mapping
        to_kernel.pop(name, None)
    returns = tuple(n.value for n in ast.walk(fn) if isinstance(n, ast.Return) and n.value is not None)
    # a default reaches the kernel only where the wrapper never rebinds the parameter (``if out is None: out = ...``)
    defaults = {p: d for p, d in zip(params[len(params) - len(fn.args.defaults):], fn.args.defaults)
                if not stores.get(p)}
    defaults.update({a.arg: d for a, d in zip(fn.args.kwonlyargs, fn.args.kw_defaults)
                     if d is not None and not stores.get(a.arg)})
    defaults = {p: _constant(root, tree, d) for p, d in defaults.items()}  # type: ignore[arg-type]
    return WrapperLaunch(site.file, site.wrapper, params, kwonly, to_kernel, frozenset(empty), returns, defaults)


def _constant(root: Path, tree: ast.Module, node: ast.expr, hop: bool = True) -> ast.expr:
    """A default naming a literal constant of the wrapper's module (or of the ``vllm`` module it imports the
    name from, one import deep), as that literal; else as written."""
    if not isinstance(node, ast.Name):
        return node
    for stmt in tree.body:
        if (isinstance(stmt, (ast.Assign, ast.AnnAssign)) and stmt.value is not None
                and [t.id for t in (stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target])
                     if isinstance(t, ast.Name)] == [node.id] and isinstance(stmt.value, ast.Constant)):
            return stmt.value
        if (hop and isinstance(stmt, ast.ImportFrom) and not stmt.level and (stmt.module or "").startswith("vllm")
                and any((a.asname or a.name) == node.id and a.name == node.id for a in stmt.names)):
            base = str(stmt.module).replace(".", "/")
            for rel in (f"{base}.py", f"{base}/__init__.py"):
                other = _parse(root, rel)
                if other is not None:
                    return _constant(root, other, node, hop=False)
    return node


__all__ = ["WrapperLaunch", "kernel_params", "wrapper_launch"]
