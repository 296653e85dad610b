"""The comparison a vLLM test makes: its tolerances, and the comparison a helper of the test module makes.

``tolerance``: the (dtype, atol, rtol) rows of ``torch.testing.assert_close`` / ``torch.allclose`` /
``torch.equal`` as the test states them (a literal, arithmetic of literals, a module constant, a test
local the caller resolves, a choice on a test parameter of known value; a choice on a dtype parameter of
unknown value, ``A if dtype == torch.bfloat16 else B``, as a table by dtype), else the comparison's own
defaults.  ``expand_helper``: ``helper(got, want, ...)`` as the one comparison the helper's body makes
(:func:`.harvest_rules.compare_helpers`).
"""
from __future__ import annotations

import ast
import functools
from collections.abc import Callable, Mapping
from typing import Any

from vkc.reference.harvest_rules import CompareHelper, NoHarvest, const_number

__all__ = ["ASSERT_CLOSE_DEFAULTS", "COMPARES", "expand_helper", "leaf", "module_const", "number", "tolerance"]

COMPARES = frozenset({"assert_close", "assert_allclose", "allclose", "equal", "assert_equal"})
# torch.testing.assert_close's defaults by dtype, (atol, rtol)
ASSERT_CLOSE_DEFAULTS = (("float16", 1e-5, 1e-3), ("bfloat16", 1e-5, 1.6e-2), ("float32", 1e-5, 1.3e-6),
                         ("float64", 1e-7, 1e-7), ("default", 0.0, 0.0))


def leaf(func: ast.expr) -> str | None:
    return func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else None


def module_const(tree: ast.Module, name: str) -> Any:
    for node in tree.body:
        if (isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name)
                and node.targets[0].id == name):
            try:
                return ast.literal_eval(node.value)
            except ValueError:
                return None
    return None


def number(tree: ast.Module, node: ast.expr) -> float | None:
    if isinstance(node, ast.Name):
        val = module_const(tree, node.id)
    else:
        try:
            val = ast.literal_eval(node)
        except ValueError:
            return None
    return float(val) if isinstance(val, (int, float)) and not isinstance(val, bool) else None


def _module_number(tree: ast.Module, name: str) -> float | None:
    return number(tree, ast.Name(id=name, ctx=ast.Load()))


def tolerance(tree: ast.Module, call: ast.Call, at: str, cast: bool,
               local: Callable[[str], float | None] | None = None, params: Mapping[str, str] | None = None,
               ) -> tuple[tuple[tuple[str, float, float], ...], str]:
    """The comparison's (dtype, atol, rtol) rows and where from; ``local``: the number a name stands for
    at the comparison (a test local, else a module constant)."""
    fn = leaf(call.func)
    kw = {k.arg: k.value for k in call.keywords if k.arg}
    if any(k.arg is None for k in call.keywords):
        raise NoHarvest(f"{at}: tolerances passed as **kwargs")
    if fn in ("equal", "assert_equal"):
        return (("default", 0.0, 0.0),), f"test: {at} ({fn}: exact)"
    pos = {"rtol": 2, "atol": 3}   # torch.allclose(input, other, rtol, atol); assert_close's are keywords
    nodes = {name: kw.get(name) or (call.args[pos[name]] if len(call.args) > pos[name] else None)
             for name in ("atol", "rtol")}
    by_dtype = _dtype_choice(nodes, params or {})
    if by_dtype is not None:
        return _dtype_table(tree, fn, nodes, at, local, params or {}, *by_dtype)
    vals = _values(tree, nodes, at, local, params)
    if fn == "allclose":
        return (("default", vals.get("atol", 1e-8), vals.get("rtol", 1e-5)),), f"test: {at} (torch.allclose)"
    if "atol" in vals and "rtol" in vals:
        return (("default", vals["atol"], vals["rtol"]),), f"test: {at}"
    if vals:
        raise NoHarvest(f"{at}: only one of atol/rtol stated (assert_close needs both)")
    table: tuple[tuple[str, float, float], ...] = ASSERT_CLOSE_DEFAULTS
    if cast:   # got.float() against want: the float32 defaults apply
        table = (("default", 1e-5, 1.3e-6),)
    return table, f"torch.testing.assert_close defaults ({at})"


def _values(tree: ast.Module, nodes: Mapping[str, ast.expr | None], at: str,
            local: Callable[[str], float | None] | None, params: Mapping[str, str] | None) -> dict[str, float]:
    vals: dict[str, float] = {}
    for name, node in nodes.items():
        if node is not None:
            # a literal, arithmetic of literals, a name, a choice on a test parameter of known value
            num = const_number(node, local or functools.partial(_module_number, tree), params)
            if num is None:
                raise NoHarvest(f"{at}: {name} is not a literal")
            vals[name] = num
    return vals


def _dtype_choice(nodes: Mapping[str, ast.expr | None], params: Mapping[str, str]) -> tuple[str, list[str]] | None:
    """The test parameter ``p`` and the dtypes of every ``a if p == torch.X else b`` (also ``is``, ``!=``) the
    tolerances choose by, when ``p`` has no known value in this launch (the test's ``dtype`` parametrisation,
    ``rtol=0.008 if dtype == torch.bfloat16 else 1e-6``, tests/models/test_beam_numerics.py:125); None when the
    tolerances make no such choice, or choose on more than one parameter."""
    found: dict[str, list[str]] = {}
    for node in nodes.values():
        for n in ast.walk(node) if node is not None else ():
            t = n.test if isinstance(n, ast.IfExp) else None
            if not (isinstance(t, ast.Compare) and len(t.ops) == 1 and isinstance(t.left, ast.Name)
                    and t.left.id not in params and isinstance(t.ops[0], (ast.Eq, ast.Is, ast.NotEq, ast.IsNot))):
                continue
            other = t.comparators[0]
            if not (isinstance(other, ast.Attribute) and isinstance(other.value, ast.Name) and other.value.id == "torch"):
                return None
            names = found.setdefault(t.left.id, [])
            if other.attr not in names:
                names.append(other.attr)
    if len(found) != 1:
        return None
    (param, dtypes), = found.items()
    return param, sorted(dtypes)


def _dtype_table(tree: ast.Module, fn: str | None, nodes: Mapping[str, ast.expr | None], at: str,
                 local: Callable[[str], float | None] | None, params: Mapping[str, str], param: str,
                 dtypes: list[str]) -> tuple[tuple[tuple[str, float, float], ...], str]:
    """The (dtype, atol, rtol) rows of a choice on the test's dtype parameter: one row per dtype the choice names,
    ``default`` for any other (the choices' else branches); the check picks the row by the output's dtype."""
    rows: list[tuple[str, float, float]] = []
    for dtype in [*dtypes, "default"]:
        value = f"torch.{dtype}" if dtype != "default" else "torch.__vkc_other_dtype__"
        vals = _values(tree, nodes, at, local, {**params, param: value})
        if fn == "allclose":
            rows.append((dtype, vals.get("atol", 1e-8), vals.get("rtol", 1e-5)))
        elif "atol" in vals and "rtol" in vals:
            rows.append((dtype, vals["atol"], vals["rtol"]))
        else:
            raise NoHarvest(f"{at}: only one of atol/rtol stated (assert_close needs both)")
    return tuple(rows), f"test: {at} (by the test parameter {param})"


def expand_helper(h: CompareHelper, call: ast.Call) -> ast.Call | None:
    """``helper(got, want, ...)`` as the comparison the helper makes, its parameters replaced by the call's
    arguments (or their defaults); None when the call does not pass both compared tensors."""
    if any(isinstance(a, ast.Starred) for a in call.args) or any(k.arg is None for k in call.keywords):
        return None
    bound: dict[str, ast.expr] = dict(h.defaults)
    bound.update(zip(h.params, call.args))
    bound.update({str(k.arg): k.value for k in call.keywords})
    got, want = bound.get(h.params[h.got]), bound.get(h.params[h.want])
    if got is None or want is None:
        return None

    def sub(e: ast.expr) -> ast.expr:
        if isinstance(e, ast.Name) and e.id in h.params:
            return bound.get(e.id, ast.Name(id="<unbound>", ctx=ast.Load()))
        return e

    if h.cast:
        got = ast.Call(func=ast.Attribute(value=got, attr="float", ctx=ast.Load()), args=[], keywords=[])
    inner = h.compare
    out = ast.Call(func=inner.func, args=[got, want, *(sub(a) for a in inner.args[2:])],
                   keywords=[ast.keyword(arg=k.arg, value=sub(k.value)) for k in inner.keywords
                             if k.arg in ("atol", "rtol")])
    out.lineno, out.col_offset = inner.lineno, inner.col_offset
    return out
