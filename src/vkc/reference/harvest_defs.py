"""Which top-level statement of a test body gives a name its value at a given statement.

A test may bind a name more than once (``out = torch.zeros(...)`` then ``out = ref(x, out)``); the
value a statement reads is the one the last top-level assignment before it made, provided every
binding of the name in the body is such a plain assignment (no loop, branch, ``with`` target,
augmented assignment).  Comprehension variables are their own scope and do not count; nor do the
test's decorators (``parametrize`` lists).
"""
from __future__ import annotations

import ast

from vkc.reference.harvest_rules import const_number

__all__ = ["body_stores", "plain_defs", "reaching_def", "stable_between"]


def body_stores(fn: ast.FunctionDef) -> dict[str, list[ast.AST]]:
    """Every ``Name`` the test's body binds or deletes (decorators and comprehension targets left out)."""
    own_scope: set[int] = set()
    for stmt in fn.body:
        for node in ast.walk(stmt):
            if isinstance(node, ast.comprehension):
                own_scope.update(id(x) for x in ast.walk(node.target))
    stores: dict[str, list[ast.AST]] = {}
    for stmt in fn.body:
        for node in ast.walk(stmt):
            if (isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del))
                    and id(node) not in own_scope):
                stores.setdefault(node.id, []).append(node)
    return stores


def _bound(stmt: ast.stmt) -> list[str]:
    """Names a single-target top-level ``x = ...`` / ``a, b = ...`` binds ([] for anything else)."""
    if not (isinstance(stmt, ast.Assign) and len(stmt.targets) == 1):
        return []
    return _flat_names(stmt.targets[0]) or []


def _flat_names(target: ast.expr) -> list[str] | None:
    """The names of a target made of names and (nested) tuples of names, in order; None otherwise."""
    if isinstance(target, ast.Name):
        return [target.id]
    if isinstance(target, (ast.Tuple, ast.List)):
        out: list[str] = []
        for e in target.elts:
            sub = _flat_names(e)
            if sub is None:
                return None
            out += sub
        return out
    return None


def plain_defs(body: list[ast.stmt], stores: dict[str, list[ast.AST]], name: str) -> list[int] | None:
    """Indices of the plain top-level assignments binding ``name``; None when some other binding exists."""
    defs = [i for i, s in enumerate(body) if name in _bound(s)]
    count = sum(_bound(body[i]).count(name) for i in defs)
    return defs if count == len(stores.get(name, [])) else None


def reaching_def(body: list[ast.stmt], stores: dict[str, list[ast.AST]], name: str, reader: int) -> int | None:
    """The top-level assignment whose value statement ``reader`` reads for ``name`` (None: not known)."""
    defs = plain_defs(body, stores, name)
    if defs is None:
        return None
    before = [i for i in defs if i < reader]
    return before[-1] if before else None


def stable_between(body: list[ast.stmt], stores: dict[str, list[ast.AST]], name: str, a: int, b: int) -> bool:
    """``name`` holds the same value when statement ``a`` and statement ``b`` run: no statement from
    the earlier up to (not including) the later binds it (a binding outside ``body``'s statements,
    such as a ``with ... as`` target, counts as anywhere)."""
    mine = {id(n) for n in stores.get(name, [])}
    if not mine:
        return True
    placed = 0
    lo, hi = min(a, b), max(a, b)
    for i, stmt in enumerate(body):
        here = sum(1 for n in ast.walk(stmt) if id(n) in mine)
        if here and lo <= i < hi:
            return False
        placed += here
    return placed == len(mine)


def _literal(node: ast.expr) -> float | None:
    try:
        val = ast.literal_eval(node)
    except ValueError:
        return None
    return float(val) if isinstance(val, (int, float)) and not isinstance(val, bool) else None


def _dtype_text(node: ast.expr) -> str | None:
    return ast.unparse(node) if isinstance(node, ast.Attribute) and ast.unparse(node).startswith("torch.") else None


def local_number(body: list[ast.stmt], stores: dict[str, list[ast.AST]], name: str, reader: int,
                 param: dict[str, str]) -> float | None:
    """The number test-local ``name`` holds at statement ``reader``: a literal, or a row of a literal
    table keyed by dtype and indexed by a test parameter whose value this launch gives
    (``atol = {torch.float32: 5e-5, torch.bfloat16: 1e-2}[dtype]``, also ``rtol, atol = {...: (a, b)}[dtype]``).
    ``param``: test parameter -> its value as an expression (``torch.bfloat16``)."""
    i = reaching_def(body, stores, name, reader)
    if i is None:
        return None
    stmt = body[i]
    assert isinstance(stmt, ast.Assign)
    names = _bound(stmt)
    value = stmt.value
    if len(names) == 1 and const_number(value, None, param) is not None:
        return const_number(value, None, param)
    if not (isinstance(value, ast.Subscript) and isinstance(value.value, ast.Dict) and isinstance(value.slice, ast.Name)):
        return None
    key = param.get(value.slice.id)
    if key is None or value.slice.id in stores:
        return None
    rows = {_dtype_text(k): v for k, v in zip(value.value.keys, value.value.values) if k is not None}
    row = rows.get(key)
    if row is None:
        return None
    if len(names) == 1:
        return _literal(row)
    if isinstance(row, ast.Tuple) and len(row.elts) == len(names):
        return _literal(row.elts[names.index(name)])
    return None


__all__ += ["local_number"]
