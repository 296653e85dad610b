"""How an entry's constexprs are used (``ast`` only): block shapes, dtypes, flags, strings.

Split from :mod:`.sigtypes`: ``pow2`` for names in shape positions (``tl.arange``, ``tl.zeros``...),
``dtype`` for cast/accumulator types, ``flag`` for conditions, ``compared`` for the constants a
constexpr is compared with, or the string a keyword option needs (``input_precision=P``).
"""
from __future__ import annotations

import ast

_SHAPE_OPS = {"arange", "zeros", "full", "reshape", "view", "broadcast_to", "zeros_like", "split", "join",
              "static_range", "range", "histogram"}


def _call_name(node: ast.Call) -> str:
    f = node.func
    return f.attr if isinstance(f, ast.Attribute) else f.id if isinstance(f, ast.Name) else ""


def _names(node: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}


_STR_KW = {"input_precision": "ieee", "cache_modifier": "", "eviction_policy": "", "fp_downcast_rounding": "rtne",
           "rounding": "rtne", "padding_option": "zero"}


def constexpr_usage(fn) -> dict[str, dict]:
    """Per constexpr of ``fn`` (a ``sigtypes._Fn``): pow2 / dtype / flag use and the constants it is compared with."""
    cx = {p for p in fn.params if fn.constexpr(p)}
    u: dict[str, dict] = {p: {} for p in cx}
    for n in ast.walk(fn.node):
        if isinstance(n, ast.Call):
            name = _call_name(n)
            if name == "static_range":   # unrolled at compile time: keep guessed trip counts small
                for a in n.args:
                    for v in _names(a) & cx:
                        u[v]["unroll"] = True
            if name in _SHAPE_OPS:
                for a in list(n.args) + [k.value for k in n.keywords if k.arg in ("shape", "end", "start")]:
                    for v in _names(a) & cx:
                        u[v]["pow2"] = True
            for k in n.keywords:   # string-valued keyword options fed by a constexpr
                if k.arg in _STR_KW and isinstance(k.value, ast.Name) and k.value.id in cx:
                    u[k.value.id].setdefault("compared", []).append(_STR_KW[k.arg])
            if name in ("to", "cast", "full", "zeros", "empty", "pointer_type", "zeros_like", "dot", "fma"):
                for k in n.keywords:
                    if k.arg in ("dtype", "out_dtype", "element_ty", "acc_dtype") and isinstance(k.value, ast.Name) \
                            and k.value.id in cx:
                        u[k.value.id]["dtype"] = True
                if name in ("to", "pointer_type") and n.args and isinstance(n.args[0], ast.Name) and n.args[0].id in cx:
                    u[n.args[0].id]["dtype"] = True
                if name in ("cast", "full") and len(n.args) > (1 if name == "cast" else 2):
                    a = n.args[1 if name == "cast" else 2]
                    if isinstance(a, ast.Name) and a.id in cx:
                        u[a.id]["dtype"] = True
        elif isinstance(n, (ast.If, ast.IfExp, ast.While)) or (isinstance(n, ast.UnaryOp) and isinstance(n.op, ast.Not)):
            test = n.operand if isinstance(n, ast.UnaryOp) else n.test
            parts = test.values if isinstance(test, ast.BoolOp) else [test]
            for t in parts:
                if isinstance(t, ast.UnaryOp) and isinstance(t.op, ast.Not):
                    t = t.operand
                if isinstance(t, ast.Name) and t.id in cx:
                    u[t.id]["flag"] = True
        elif isinstance(n, ast.BoolOp):
            for t in n.values:
                if isinstance(t, ast.Name) and t.id in cx:
                    u[t.id]["flag"] = True
        elif isinstance(n, ast.Compare) and len(n.ops) == 1 and isinstance(n.ops[0], (ast.Eq, ast.NotEq)):
            l, r = n.left, n.comparators[0]
            for a, b in ((l, r), (r, l)):
                if isinstance(a, ast.Name) and a.id in cx and isinstance(b, ast.Constant):
                    u[a.id].setdefault("compared", []).append(b.value)
                elif isinstance(a, ast.Name) and a.id in cx and isinstance(b, ast.Attribute) and \
                        isinstance(b.value, ast.Name) and b.value.id == "tl":
                    u[a.id]["dtype"] = True
    return u
