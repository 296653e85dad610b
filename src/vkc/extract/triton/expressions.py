"""Expression evaluation for the static evaluator: one ``_e_<Node>`` handler per AST node.

Mixed into :class:`~vkc.extract.triton.evaluator.Program`, which supplies name lookup
(``lookup``), attribute access (``getattr``) and calls (``call``).
"""
from __future__ import annotations

import ast
from typing import Any

from vkc.extract.triton.evalcore import _BIN, _BUILTIN_CONSTS, _BUILTINS, _CMP, _assign, _plain, _wrap
from vkc.extract.triton.values import LambdaVal, Opaque, Unresolved


class ExprEvaluator:
    """Evaluates expression nodes of a module to concrete or symbolic values."""

    def eval(self, node: ast.expr, module: str, env: dict | None = None) -> Any:
        env = env if env is not None else {}
        m = getattr(self, "_e_" + type(node).__name__, None)
        if m is None:
            raise Unresolved(f"unsupported expression {type(node).__name__}")
        return m(node, module, env)

    def _e_Constant(self, n, mod, env):
        return n.value

    def _e_Name(self, n, mod, env):
        if n.id in env:
            return env[n.id]
        try:
            return self.lookup(mod, n.id)[0]
        except Unresolved:
            if n.id in _BUILTIN_CONSTS:
                return _BUILTIN_CONSTS[n.id]
            if n.id in _BUILTINS:
                return Opaque(_BUILTINS[n.id])
            raise

    def _e_Attribute(self, n, mod, env):
        return self.getattr(self.eval(n.value, mod, env), n.attr)

    def _e_BinOp(self, n, mod, env):
        a, b = _plain(self.eval(n.left, mod, env)), _plain(self.eval(n.right, mod, env))
        try:
            return _BIN[type(n.op)](a, b)
        except Exception as e:  # noqa: BLE001 - any failure: unresolved
            raise Unresolved(f"binary op failed: {e}") from None

    def _e_UnaryOp(self, n, mod, env):
        v = _plain(self.eval(n.operand, mod, env))
        if isinstance(n.op, ast.Not):
            return not v
        if isinstance(n.op, ast.USub):
            return -v
        if isinstance(n.op, ast.UAdd):
            return +v
        return ~v

    def _e_BoolOp(self, n, mod, env):
        if isinstance(n.op, ast.And):
            v = True
            for x in n.values:
                v = self.eval(x, mod, env)
                if not _plain(v):
                    return v
            return v
        v = False
        for x in n.values:
            v = self.eval(x, mod, env)
            if _plain(v):
                return v
        return v

    def _e_Compare(self, n, mod, env):
        left = _plain(self.eval(n.left, mod, env))
        for op, c in zip(n.ops, n.comparators):
            right = _plain(self.eval(c, mod, env))
            if not _CMP[type(op)](left, right):
                return False
            left = right
        return True

    def _e_IfExp(self, n, mod, env):
        return self.eval(n.body if _plain(self.eval(n.test, mod, env)) else n.orelse, mod, env)

    def _e_Tuple(self, n, mod, env):
        return tuple(self._elts(n.elts, mod, env))

    def _e_List(self, n, mod, env):
        return list(self._elts(n.elts, mod, env))

    def _e_Set(self, n, mod, env):
        return set(self._elts(n.elts, mod, env))

    def _elts(self, elts, mod, env):
        out = []
        for e in elts:
            if isinstance(e, ast.Starred):
                out.extend(_plain(self.eval(e.value, mod, env)))
            else:
                out.append(self.eval(e, mod, env))
        return out

    def _e_Dict(self, n, mod, env):
        out = {}
        for k, v in zip(n.keys, n.values):
            if k is None:
                out.update(_plain(self.eval(v, mod, env)))
            else:
                out[_plain(self.eval(k, mod, env))] = self.eval(v, mod, env)
        return out

    def _e_Subscript(self, n, mod, env):
        base = _plain(self.eval(n.value, mod, env))
        idx = _plain(self.eval(n.slice, mod, env))
        try:
            return _wrap(base[idx])
        except Exception as e:  # noqa: BLE001 - any failure: unresolved
            raise Unresolved(f"subscript failed: {e}") from None

    def _e_Slice(self, n, mod, env):
        f = lambda x: None if x is None else _plain(self.eval(x, mod, env))
        return slice(f(n.lower), f(n.upper), f(n.step))

    def _e_JoinedStr(self, n, mod, env):
        parts = []
        for v in n.values:
            if isinstance(v, ast.Constant):
                parts.append(str(v.value))
            else:
                x = _plain(self.eval(v.value, mod, env))
                spec = self.eval(v.format_spec, mod, env) if v.format_spec else ""
                x = repr(x) if v.conversion == ord("r") else (str(x) if v.conversion == ord("s") else x)
                parts.append(format(x, spec))
        return "".join(parts)

    def _e_Lambda(self, n, mod, env):
        return LambdaVal(n, mod)

    def _comp(self, n, mod, env, make):
        results = []

        def rec(i, scope):
            if i == len(n.generators):
                results.append(make(scope))
                return
            g = n.generators[i]
            for item in _plain(self.eval(g.iter, mod, scope)):
                s = dict(scope)
                _assign(g.target, item, s)
                if all(_plain(self.eval(c, mod, s)) for c in g.ifs):
                    rec(i + 1, s)
        rec(0, dict(env))
        return results

    def _e_ListComp(self, n, mod, env):
        return self._comp(n, mod, env, lambda s: self.eval(n.elt, mod, s))

    _e_GeneratorExp = _e_ListComp

    def _e_SetComp(self, n, mod, env):
        return set(self._e_ListComp(n, mod, env))

    def _e_DictComp(self, n, mod, env):
        return dict(self._comp(n, mod, env, lambda s: (_plain(self.eval(n.key, mod, s)), self.eval(n.value, mod, s))))

    def _e_Call(self, n, mod, env):
        fn = self.eval(n.func, mod, env)
        args = self._elts(n.args, mod, env)
        kwargs = {}
        for k in n.keywords:
            if k.arg is None:
                kwargs.update(_plain(self.eval(k.value, mod, env)))
            else:
                kwargs[k.arg] = self.eval(k.value, mod, env)
        return self.call(fn, args, kwargs)
