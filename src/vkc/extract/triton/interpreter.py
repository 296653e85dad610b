"""A tiny interpreter for pure vLLM helper functions called from module-level expressions.

Mixed into :class:`~vkc.extract.triton.evaluator.Program`; runs straight-line code with
``if``/``for``/assignments/returns over values the expression evaluator computes.
"""
from __future__ import annotations

import ast
from collections.abc import Callable
from typing import Any

from vkc.extract.triton.evalcore import _BIN, _assign, _plain
from vkc.extract.triton.values import ExtRef, FuncRef, Unresolved


class _Return(Exception):
    def __init__(self, value):
        self.value = value


class HelperInterpreter:
    """Executes the body of a ``FuncRef(kind="py")`` helper (needs ``module`` and ``eval``)."""

    module: Callable[[str], Any]          # provided by the evaluator this is mixed into
    eval: Callable[..., Any]

    def _interp(self, ref: FuncRef, args, kwargs):
        node = self.module(ref.module).bindings[ref.name].node
        a = node.args
        params = a.posonlyargs + a.args
        env: dict = {}
        defaults = [None] * (len(params) - len(a.defaults)) + list(a.defaults)
        for i, p in enumerate(params):
            if i < len(args):
                env[p.arg] = args[i]
            elif p.arg in kwargs:
                env[p.arg] = kwargs[p.arg]
            elif defaults[i] is not None:
                env[p.arg] = self.eval(defaults[i], ref.module)
            else:
                raise Unresolved(f"missing argument {p.arg} of {ref.name}")
        for p, d in zip(a.kwonlyargs, a.kw_defaults):
            env[p.arg] = kwargs[p.arg] if p.arg in kwargs else (self.eval(d, ref.module) if d else None)
        self._steps = 0
        try:
            self._exec(node.body, ref.module, env)
        except _Return as r:
            return r.value
        return None

    def _exec(self, stmts, mod, env):
        for st in stmts:
            self._steps += 1
            if self._steps > 20000:
                raise Unresolved("helper function too long to evaluate")
            if isinstance(st, ast.Return):
                raise _Return(self.eval(st.value, mod, env) if st.value else None)
            elif isinstance(st, ast.Assign):
                v = self.eval(st.value, mod, env)
                for t in st.targets:
                    _assign(t, v, env)
            elif isinstance(st, ast.AnnAssign):
                if st.value is not None:
                    _assign(st.target, self.eval(st.value, mod, env), env)
            elif isinstance(st, ast.AugAssign):
                cur = _plain(self.eval(st.target, mod, env))
                _assign(st.target, _BIN[type(st.op)](cur, _plain(self.eval(st.value, mod, env))), env)
            elif isinstance(st, ast.If):
                self._exec(st.body if _plain(self.eval(st.test, mod, env)) else st.orelse, mod, env)
            elif isinstance(st, ast.For):
                for item in _plain(self.eval(st.iter, mod, env)):
                    _assign(st.target, item, env)
                    self._exec(st.body, mod, env)
            elif isinstance(st, ast.Expr):
                if not isinstance(st.value, ast.Constant):
                    self.eval(st.value, mod, env)
            elif isinstance(st, ast.Pass):
                pass
            elif isinstance(st, ast.ImportFrom) and st.level == 0 and not (st.module or "").startswith("vllm"):
                for a in st.names:
                    env[a.asname or a.name] = ExtRef(f"{st.module}.{a.name}")
            elif isinstance(st, ast.Import):
                for a in st.names:
                    if not a.name.startswith("vllm"):
                        env[a.asname or a.name.split(".")[0]] = ExtRef(a.asname and a.name or a.name.split(".")[0])
            else:
                raise Unresolved(f"statement {type(st).__name__} in helper function")
