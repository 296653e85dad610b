"""The harvester's rules for the less plain shapes of a vLLM kernel test (each refuses rather than guesses).

* :func:`const_number`: a tolerance written as an expression of literals (``2**-7``, ``-1e-3``), or
  chosen by a test parameter whose value the launch gives (``0.008 if dtype == torch.bfloat16 else 1e-6``).
* :func:`compare_helpers`: a function of the test module whose body is one comparison of its first
  two parameters (``def assert_bf16(got, ref, msg): torch.testing.assert_close(got.float(), ref.float(),
  rtol=1e-2, atol=1e-2)``); a call of it in the test is that comparison, with the helper's tolerances.
* :func:`fresh` and :func:`mutations`: a local made as a new tensor (``state[idx].clone()``,
  ``torch.zeros(...)``) that the test then writes into by plain top-level statements
  (``expected[~mask] = 0``): those statements belong to the expected value too.
* :func:`returned_name`: a wrapper that returns its output through a value-preserving view
  (``return out.reshape(shape)``) still returns the kernel's buffer.
* :func:`copy_of`: the test hands W a copy (``x_in = x.clone()``) and computes the expected value from
  the original: the original holds the values the kernel reads.
* :func:`literal_star`: ``W(*args)`` / ``W(**kw)`` with ``args`` a tuple literal / ``kw`` a dict literal
  of the test is the call with those elements spelled out.
"""
from __future__ import annotations

import ast
import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass

__all__ = ["CompareHelper", "NoHarvest", "compare_helpers", "const_number", "fresh", "mutations", "returned_name"]

class NoHarvest(Exception):
    """The test holds no reference vkc can map; the message says why."""


_BINOPS: dict[type, Callable[[float, float], float]] = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
    ast.Pow: operator.pow}
# methods whose result holds the same values as the tensor they are called on, element for element
VIEW_METHODS = frozenset({"reshape", "view", "flatten", "contiguous", "squeeze", "unsqueeze", "view_as",
                          "reshape_as"})
# a call that makes a new tensor the test owns alone
FACTORIES = frozenset({"zeros", "ones", "full", "zeros_like", "ones_like", "full_like", "arange"})
_KEEP_FRESH = frozenset({"float", "double", "half", "bfloat16", "to", "contiguous", "view", "reshape", "detach"})


def const_number(node: ast.expr, name: Callable[[str], float | None] | None = None,
                 params: Mapping[str, str] | None = None) -> float | None:
    """The number ``node`` stands for: a literal, arithmetic of literals, a name (``name``), or an
    ``a if p == v else b`` on a test parameter ``p`` whose value (``params``, as expression text) is known."""
    if isinstance(node, ast.Constant):
        v = node.value
        return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None
    if isinstance(node, ast.Name):
        return name(node.id) if name is not None else None
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        v = const_number(node.operand, name, params)
        return None if v is None else (-v if isinstance(node.op, ast.USub) else v)
    if isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
        left, right = const_number(node.left, name, params), const_number(node.right, name, params)
        if left is None or right is None:
            return None
        try:
            return float(_BINOPS[type(node.op)](left, right))
        except (ZeroDivisionError, OverflowError):
            return None
    if isinstance(node, ast.IfExp):
        test = _param_test(node.test, params or {})
        if test is None:
            return None
        return const_number(node.body if test else node.orelse, name, params)
    return None


def _param_test(test: ast.expr, params: Mapping[str, str]) -> bool | None:
    """``p == v`` / ``p != v`` / ``p is v`` with ``p`` a test parameter of known value and ``v`` a literal
    or a dotted name (``torch.bfloat16``): its truth; None otherwise."""
    if not (isinstance(test, ast.Compare) and len(test.ops) == 1 and isinstance(test.left, ast.Name)):
        return None
    value = params.get(test.left.id)
    if value is None:
        return None
    other = test.comparators[0]
    if not isinstance(other, (ast.Constant, ast.Attribute)):
        return None
    same = ast.dump(ast.parse(value, mode="eval").body) == ast.dump(other)
    if isinstance(test.ops[0], (ast.Eq, ast.Is)):
        return same
    if isinstance(test.ops[0], (ast.NotEq, ast.IsNot)):
        return not same
    return None


@dataclass(frozen=True)
class CompareHelper:
    """A test-module function that compares its parameters ``got`` and ``want`` (by position)."""

    name: str
    params: tuple[str, ...]  # its positional parameters, in order
    got: int                 # position of the compared-as-result parameter
    want: int
    compare: ast.Call        # the comparison in its body
    cast: bool               # the helper casts ``got`` (``.float()``) before comparing
    defaults: dict[str, ast.expr]   # the helper's parameter -> its default


def _param_of(expr: ast.expr, params: list[str]) -> tuple[int, bool] | None:
    cast = False
    while isinstance(expr, ast.Call) and isinstance(expr.func, ast.Attribute) and not expr.keywords:
        cast = cast or expr.func.attr in ("float", "double", "to")
        if expr.func.attr not in ("float", "double", "to", "contiguous", "cpu"):
            return None
        expr = expr.func.value
    if isinstance(expr, ast.Name) and expr.id in params:
        return params.index(expr.id), cast
    return None


def compare_helpers(tree: ast.Module, compares: frozenset[str]) -> dict[str, CompareHelper]:
    """The module's comparison helpers: a top-level ``def`` whose body (docstring aside) is exactly one
    comparison call (``compares``) of two of its parameters."""
    out: dict[str, CompareHelper] = {}
    for fn in tree.body:
        if not isinstance(fn, ast.FunctionDef) or fn.args.vararg or fn.args.kwarg:
            continue
        body = [s for s in fn.body if not (isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant))]
        if len(body) != 1 or not isinstance(body[0], (ast.Expr, ast.Assert)):
            continue
        call = body[0].value if isinstance(body[0], ast.Expr) else body[0].test
        if not (isinstance(call, ast.Call) and len(call.args) >= 2):
            continue
        leaf = call.func.attr if isinstance(call.func, ast.Attribute) else call.func.id if isinstance(
            call.func, ast.Name) else None
        if leaf not in compares:
            continue
        params = [a.arg for a in fn.args.args]
        a0, a1 = _param_of(call.args[0], params), _param_of(call.args[1], params)
        if a0 is None or a1 is None or a0[0] == a1[0]:
            continue
        defaults = dict(zip(params[len(params) - len(fn.args.defaults):], fn.args.defaults))
        if any(k.arg is None for k in call.keywords):
            continue
        out[fn.name] = CompareHelper(fn.name, tuple(params), a0[0], a1[0], call, a0[1], defaults)
    return out


def fresh(value: ast.expr) -> bool:
    """``value`` makes a new tensor no other name shares (``<expr>.clone()``, ``torch.zeros(...)``; also
    a view or cast of one)."""
    while isinstance(value, ast.Call) and isinstance(value.func, ast.Attribute):
        attr = value.func.attr
        if attr == "clone" or (attr in FACTORIES and isinstance(value.func.value, ast.Name)
                               and value.func.value.id == "torch"):
            return True
        if attr not in _KEEP_FRESH:
            return False
        value = value.func.value
    return False


def _writes(stmt: ast.stmt, name: str) -> bool | None:
    """True: a plain write into ``name`` (``name[...] = v``, ``name.x_(...)``, ``name[...].x_(...)``);
    None: the statement mutates ``name`` some other way; False: it does not touch it."""
    def base(e: ast.expr) -> ast.expr:
        while isinstance(e, ast.Subscript):
            e = e.value
        return e

    if (isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Subscript)
            and isinstance(base(stmt.targets[0]), ast.Name) and base(stmt.targets[0]).id == name):  # type: ignore[attr-defined]
        return True
    if (isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Call) and isinstance(stmt.value.func, ast.Attribute)
            and stmt.value.func.attr.endswith("_") and not stmt.value.func.attr.startswith("_")
            and isinstance(base(stmt.value.func.value), ast.Name)
            and base(stmt.value.func.value).id == name):  # type: ignore[attr-defined]
        return True
    for node in ast.walk(stmt):
        if isinstance(node, (ast.Subscript, ast.Attribute)) and isinstance(node.ctx, ast.Store) and \
                isinstance(base(node.value), ast.Name) and base(node.value).id == name:  # type: ignore[attr-defined]
            return None
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and isinstance(base(node.func.value), ast.Name) and base(node.func.value).id == name  # type: ignore[attr-defined]
                and node.func.attr.endswith("_") and not node.func.attr.startswith("_")):
            return None
        if isinstance(node, ast.AugAssign) and isinstance(node.target, ast.Name) and node.target.id == name:
            return None
    return False


def mutations(body: list[ast.stmt], name: str, start: int, reader: int) -> list[int] | None:
    """Indices of the top-level statements strictly between ``start`` (the assignment binding ``name``)
    and ``reader`` that write into ``name``; None when one of them mutates it otherwise (in a loop or
    a branch, an augmented assignment, an attribute store)."""
    out = []
    for i in range(start + 1, reader):
        w = _writes(body[i], name)
        if w is None:
            return None
        if w:
            out.append(i)
    return out


def returned_name(expr: ast.expr) -> str | None:
    """The name a wrapper returns, also through value-preserving views (``out.reshape(shape)``)."""
    while (isinstance(expr, ast.Call) and isinstance(expr.func, ast.Attribute)
           and expr.func.attr in VIEW_METHODS):
        expr = expr.func.value
    return expr.id if isinstance(expr, ast.Name) else None


VALUE_COPIES = frozenset({"clone", "contiguous", "detach"})


def copy_of(value: ast.expr) -> str | None:
    """``b.clone()`` / ``b.contiguous()`` / ``b.detach()`` (also chained): ``b``, whose values it holds."""
    seen = False
    while (isinstance(value, ast.Call) and isinstance(value.func, ast.Attribute) and value.func.attr in VALUE_COPIES
           and not value.args and not value.keywords):
        value, seen = value.func.value, True
    return value.id if seen and isinstance(value, ast.Name) else None


def literal_star(value: ast.expr | None, double: bool) -> list[ast.expr] | list[ast.keyword] | None:
    """The elements a ``*name`` (a tuple or list literal) or ``**name`` (a dict literal with string keys)
    spreads into a call; None for anything else."""
    if not double and isinstance(value, (ast.Tuple, ast.List)) and not any(
            isinstance(e, ast.Starred) for e in value.elts):
        return list(value.elts)
    if double and isinstance(value, ast.Dict) and all(
            isinstance(k, ast.Constant) and isinstance(k.value, str) for k in value.keys):
        return [ast.keyword(arg=k.value, value=v) for k, v in zip(value.keys, value.values)]  # type: ignore[union-attr]
    return None


__all__ += ["VALUE_COPIES", "copy_of", "literal_star"]
