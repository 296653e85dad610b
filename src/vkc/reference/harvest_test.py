"""The test side of a harvest: the test body, the wrapper's call in it and its arguments, the comparisons after it.

``load_test`` reads a top-level test function (``with`` blocks flattened); ``wrapper_call`` finds the one
call of the wrapper, ``spread`` / ``bind`` bind its arguments to the wrapper's parameters, ``copies`` adds
the originals of copies the wrapper receives, ``results_of`` / ``single_return`` name what the wrapper
returns, and ``compares`` lists the comparisons (also those a comparison helper of the module makes).
"""
from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

from vkc.reference.harvest_compare import COMPARES, expand_helper
from vkc.reference.harvest_defs import body_stores, reaching_def, stable_between
from vkc.reference.harvest_rules import NoHarvest, compare_helpers, copy_of, literal_star, returned_name
from vkc.reference.wrapper_map import WrapperLaunch

__all__ = ["GOT_METHODS", "RESULT", "ParsedTest", "bind", "compares", "comprehension_locals", "copies", "flat",
           "got_name", "leaf_name", "load_test", "mutated", "names", "results_of", "single_return", "spread",
           "wrapper_call"]

GOT_METHODS = frozenset({"float", "to", "view", "reshape", "flatten", "contiguous", "cpu", "double", "squeeze"})
RESULT = "<wrapper result>"   # the wrapper's result compared where it is made: assert_close(W(...), want)


def flat(body: list[ast.stmt]) -> list[ast.stmt]:
    out: list[ast.stmt] = []
    for s in body:
        if isinstance(s, ast.With):
            out.extend(flat(s.body))
        else:
            out.append(s)
    return out


def leaf_name(func: ast.expr) -> str | None:
    return func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else None


def names(node: ast.AST) -> list[str]:
    seen: list[str] = []
    for n in ast.walk(node):
        if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load) and n.id not in seen:
            seen.append(n.id)
    return seen


def comprehension_locals(node: ast.AST) -> set[str]:
    out: set[str] = set()
    for n in ast.walk(node):
        if isinstance(n, ast.comprehension):
            out.update(x.id for x in ast.walk(n.target) if isinstance(x, ast.Name))
        elif isinstance(n, ast.Lambda):
            out.update(a.arg for a in n.args.args)
    return out


def got_name(expr: ast.expr, wcall: ast.Call | None = None) -> str | None:
    """The test name compared (``out.float()`` -> ``out``); :data:`RESULT` for the wrapper call itself."""
    while isinstance(expr, ast.Call) and isinstance(expr.func, ast.Attribute) and expr.func.attr in GOT_METHODS:
        expr = expr.func.value
    if wcall is not None and expr is wcall:
        return RESULT
    return expr.id if isinstance(expr, ast.Name) else None


@dataclass
class ParsedTest:
    rel: str
    tree: ast.Module
    fn: ast.FunctionDef
    body: list[ast.stmt]
    stores: dict[str, list[ast.AST]]


def load_test(root: Path, rel: str, function: str) -> ParsedTest:
    try:
        tree = ast.parse((root / rel).read_text(encoding="utf-8"))
    except (OSError, SyntaxError, UnicodeDecodeError) as e:
        raise NoHarvest(f"cannot read {rel}: {e}") from e
    fn = next((n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == function), None)
    if fn is None:
        raise NoHarvest(f"no top-level test function {function} in {rel}")
    return ParsedTest(rel, tree, fn, flat(fn.body), body_stores(fn))


def mutated(t: ParsedTest, name: str) -> bool:
    """``name[...] = ...``, ``name.x_(...)`` (an in-place method) or ``name += ...`` in the test."""
    for node in ast.walk(t.fn):
        if isinstance(node, (ast.Subscript, ast.Attribute)) and isinstance(node.ctx, ast.Store) and \
                isinstance(node.value, ast.Name) and node.value.id == name:
            return True
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and isinstance(node.func.value, ast.Name)
                and node.func.value.id == name and node.func.attr.endswith("_") and not node.func.attr.startswith("_")):
            return True
        if isinstance(node, ast.AugAssign) and isinstance(node.target, ast.Name) and node.target.id == name:
            return True
    return False


def wrapper_call(t: ParsedTest, leaf: str) -> tuple[int, ast.Call]:
    found = [(i, n) for i, s in enumerate(t.body) for n in ast.walk(s)
             if isinstance(n, ast.Call) and leaf_name(n.func) == leaf]
    if len(found) != 1:
        raise NoHarvest(f"{t.rel}::{t.fn.name} calls {leaf} {len(found)} times at its top level (one needed)")
    return found[0]


def bind(call: ast.Call, w: WrapperLaunch) -> dict[str, ast.expr]:
    if any(isinstance(a, ast.Starred) for a in call.args) or any(k.arg is None for k in call.keywords):
        raise NoHarvest("the wrapper is called with *args/**kwargs")
    if len(call.args) > len(w.params):
        raise NoHarvest("the wrapper call has more positional arguments than its parameters")
    bound = {w.params[i]: a for i, a in enumerate(call.args)}
    for k in call.keywords:
        if k.arg not in (*w.params, *w.kwonly):
            raise NoHarvest(f"the wrapper has no parameter {k.arg}")
        bound[str(k.arg)] = k.value
    return bound


def spread(t: ParsedTest, call: ast.Call, index: int) -> ast.Call:
    """W's call with ``*args`` / ``**kwargs`` spread when the name is a tuple / dict literal of the test whose
    names hold the same values at the literal and at the call (else left as is: ``bind`` refuses)."""
    args: list[ast.expr] = []
    keywords: list[ast.keyword] = []
    for item in [*call.args, *call.keywords]:
        star = item.value if isinstance(item, ast.Starred) or (isinstance(item, ast.keyword) and item.arg is None) \
            else None
        elts = None
        if isinstance(star, ast.Name) and not mutated(t, star.id):
            i = reaching_def(t.body, t.stores, star.id, index)
            value = t.body[i].value if i is not None else None  # type: ignore[attr-defined]
            elts = literal_star(value, isinstance(item, ast.keyword))
            if elts is not None and not all(stable_between(t.body, t.stores, n, i or 0, index)
                                            for n in names(value)):  # type: ignore[arg-type]
                elts = None
        if elts is None:
            (keywords if isinstance(item, ast.keyword) else args).append(item)  # type: ignore[arg-type]
        elif isinstance(item, ast.keyword):
            keywords.extend(elts)  # type: ignore[arg-type]
        else:
            args.extend(elts)  # type: ignore[arg-type]
    return ast.Call(func=call.func, args=args, keywords=keywords)


def copies(t: ParsedTest, inputs: dict[str, str], index: int) -> None:
    """A test tensor ``b`` whose copy ``a = b.clone()`` W receives holds the values the kernel reads: ``b`` maps
    where ``a`` does (neither mutated, ``b`` the same at the copy and at W's call)."""
    for a, kparam in list(inputs.items()):
        i = reaching_def(t.body, t.stores, a, index)
        b = copy_of(t.body[i].value) if i is not None else None  # type: ignore[attr-defined]
        if (b is None or b in inputs or mutated(t, a) or mutated(t, b)
                or not stable_between(t.body, t.stores, b, i or 0, index)):
            continue
        inputs[b] = kparam


def results_of(t: ParsedTest, index: int, call: ast.Call, w: WrapperLaunch) -> dict[str, str]:
    """test name bound to W's result -> the kernel parameter W returned it from."""
    stmt = t.body[index]
    if not isinstance(stmt, ast.Assign) or stmt.value is not call or len(stmt.targets) != 1:
        return {}
    target = stmt.targets[0]
    names = [target] if isinstance(target, ast.Name) else list(target.elts) if isinstance(target, ast.Tuple) else []
    out: dict[str, str] = {}
    for ret in w.returns:
        elts = [ret] if not isinstance(ret, ast.Tuple) else list(ret.elts)
        if len(elts) != len(names) or (isinstance(target, ast.Name) and isinstance(ret, ast.Tuple)):
            continue
        for tn, re_ in zip(names, elts):
            rname = returned_name(re_)
            if isinstance(tn, ast.Name) and rname in w.to_kernel:
                out.setdefault(tn.id, w.to_kernel[str(rname)])
    return out


def single_return(w: WrapperLaunch) -> str | None:
    """The kernel parameter every ``return`` of W gives back (a buffer, or a view of it), else None."""
    got = {w.to_kernel.get(returned_name(r) or "") if not isinstance(r, ast.Tuple) else None for r in w.returns}
    return next(iter(got)) if len(got) == 1 else None



def compares(t: ParsedTest, start: int, wcall: ast.Call) -> list[tuple[int, ast.Call, ast.expr, ast.expr]]:
    """The comparisons after W's call (also one that takes W's call itself as an argument), and the calls
    of the test module's comparison helpers (:func:`.harvest_rules.compare_helpers`) as the comparison
    they make, their tolerances bound to the call's arguments."""
    helpers = compare_helpers(t.tree, COMPARES)
    out = []
    for i in range(start, len(t.body)):
        for n in ast.walk(t.body[i]):
            if not isinstance(n, ast.Call) or len(n.args) < 2:
                continue
            leaf = leaf_name(n.func)
            if leaf in COMPARES:
                cmp_ = n
            elif isinstance(n.func, ast.Name) and leaf in helpers and leaf not in t.stores:
                expanded = expand_helper(helpers[leaf], n)
                if expanded is None:
                    continue
                cmp_ = expanded
            else:
                continue
            if i == start and RESULT not in (got_name(cmp_.args[0], wcall), got_name(cmp_.args[1], wcall)):
                continue
            out.append((i, cmp_, cmp_.args[0], cmp_.args[1]))
    return out
