"""Read a Triton launch site statically: the call's arguments, its wrapper's locals, the grid.

``read_launch`` finds ``K[grid](...)`` at a :class:`LaunchSite` in the vLLM tree and returns the
argument expressions bound to kernel parameters plus a small safe evaluator (:class:`Env`)
over the wrapper's literal-ish locals, so constexprs (``BLOCK_SIZE=1024``,
``BLOCK=triton.next_power_of_2(head_size)``) and the grid can be computed with model-dim guesses
for the names the source cannot tell.
"""
from __future__ import annotations

import ast
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from vkc.records import LaunchSite, SourceTree

_TL_DTYPES = {"float16": "fp16", "bfloat16": "bf16", "float32": "fp32", "float64": "fp64", "int8": "int8",
              "int16": "int16", "int32": "int32", "int64": "int64", "uint8": "uint8", "uint32": "uint32",
              "float8e4nv": "fp8e4nv", "float8e5": "fp8e5", "float8_e4m3fn": "fp8e4nv", "float8_e5m2": "fp8e5",
              "half": "fp16", "float": "fp32", "bool": "int1", "int1": "int1"}


class Unknown(Exception):
    """The expression depends on something the evaluator cannot know."""


def _cdiv(a, b):
    return -(-int(a) // int(b))


def _next_pow2(n):
    n = int(n)
    return 1 if n <= 1 else 1 << (n - 1).bit_length()


_FUNCS: dict[str, Callable[..., Any] | None] = {
    "next_power_of_2": _next_pow2, "cdiv": _cdiv, "min": min, "max": max, "int": int, "abs": abs,
    "ceil": math.ceil, "floor": math.floor, "log2": math.log2, "sqrt": math.sqrt, "round": round,
    "float": float, "bool": bool, "len": None, "prod": math.prod,
}


@dataclass
class Env:
    """Safe evaluation of launch-site expressions over wrapper locals and guessed names."""
    locals: dict[str, ast.expr] = field(default_factory=dict)
    values: dict[str, Any] = field(default_factory=dict)
    guess: Callable[[str], Any] | None = None
    _busy: set = field(default_factory=set)
    used_guess: bool = False                       # set when an evaluation consulted ``guess``
    tainted: set = field(default_factory=set)      # cached locals whose value came from a guess

    def name(self, n: str) -> Any:
        if n in self.values:
            self.used_guess |= n in self.tainted
            return self.values[n]
        if n in self.locals and n not in self._busy:
            self._busy.add(n)
            outer, self.used_guess = self.used_guess, False
            try:
                v = self.eval(self.locals[n])
            finally:
                self._busy.discard(n)
                if self.used_guess:
                    self.tainted.add(n)
                self.used_guess |= outer
            self.values[n] = v
            return v
        if n in ("True", "False", "None"):
            return {"True": True, "False": False, "None": None}[n]
        g = self.guess(n) if self.guess else None
        if g is None:
            raise Unknown(n)
        self.used_guess = True
        return g

    def eval(self, e: ast.expr) -> Any:
        if isinstance(e, ast.Constant):
            return e.value
        if isinstance(e, ast.Name):
            return self.name(e.id)
        if isinstance(e, (ast.Tuple, ast.List)):
            return tuple(self.eval(x) for x in e.elts)
        if isinstance(e, ast.Attribute):
            root = e.value
            if isinstance(root, ast.Name) and root.id in ("tl", "torch", "language") and e.attr in _TL_DTYPES:
                return {"__tl_dtype__": _TL_DTYPES[e.attr]}
            if isinstance(root, ast.Attribute) and root.attr == "language" and e.attr in _TL_DTYPES:
                return {"__tl_dtype__": _TL_DTYPES[e.attr]}
            raise Unknown(ast.unparse(e))
        if isinstance(e, ast.UnaryOp):
            v = self.eval(e.operand)
            return {ast.USub: lambda x: -x, ast.UAdd: lambda x: x, ast.Not: lambda x: not x,
                    ast.Invert: lambda x: ~x}[type(e.op)](v)
        if isinstance(e, ast.BinOp):
            a, b = self.eval(e.left), self.eval(e.right)
            if not all(isinstance(x, (int, float)) for x in (a, b)):
                raise Unknown(ast.unparse(e))
            ops = {ast.Add: lambda: a + b, ast.Sub: lambda: a - b, ast.Mult: lambda: a * b,
                   ast.FloorDiv: lambda: a // b, ast.Div: lambda: a / b, ast.Mod: lambda: a % b,
                   ast.Pow: lambda: a ** b if abs(b) < 64 else None, ast.LShift: lambda: a << b if b < 64 else None,
                   ast.RShift: lambda: a >> b, ast.BitAnd: lambda: a & b, ast.BitOr: lambda: a | b}
            if type(e.op) not in ops:
                raise Unknown(ast.unparse(e))
            try:
                v = ops[type(e.op)]()
            except (ZeroDivisionError, TypeError, ValueError, OverflowError):
                raise Unknown(ast.unparse(e)) from None
            if v is None:
                raise Unknown(ast.unparse(e))
            return v
        if isinstance(e, ast.BoolOp):
            vals = [self.eval(x) for x in e.values]
            if isinstance(e.op, ast.And):
                return all(vals)
            return any(vals)
        if isinstance(e, ast.Compare) and len(e.ops) == 1:
            a, b = self.eval(e.left), self.eval(e.comparators[0])
            cmp_ops: dict[type[ast.cmpop], Callable[[], Any]] = {ast.Eq: lambda: a == b, ast.NotEq: lambda: a != b, ast.Lt: lambda: a < b, ast.LtE: lambda: a <= b,
                   ast.Gt: lambda: a > b, ast.GtE: lambda: a >= b, ast.Is: lambda: a is b,
                   ast.IsNot: lambda: a is not b}
            try:
                return cmp_ops[type(e.ops[0])]()
            except (TypeError, KeyError):
                raise Unknown(ast.unparse(e)) from None
        if isinstance(e, ast.IfExp):
            return self.eval(e.body) if self.eval(e.test) else self.eval(e.orelse)
        if isinstance(e, ast.Subscript):
            base = self.eval(e.value)
            key = self.eval(e.slice)
            try:
                return base[key]
            except (KeyError, IndexError, TypeError):
                raise Unknown(ast.unparse(e)) from None
        if isinstance(e, ast.Call):
            f = e.func
            fname = f.attr if isinstance(f, ast.Attribute) else f.id if isinstance(f, ast.Name) else ""
            fn = _FUNCS.get(fname)
            if fn is None or e.keywords:
                raise Unknown(ast.unparse(e))
            args = [self.eval(a) for a in e.args]
            try:
                return fn(*args)
            except (TypeError, ValueError, ZeroDivisionError, OverflowError):
                raise Unknown(ast.unparse(e)) from None
        if isinstance(e, ast.Lambda):
            return e
        raise Unknown(ast.unparse(e))

    def call_lambda(self, lam: ast.Lambda, arg: Any) -> Any:
        names = [a.arg for a in lam.args.args]
        saved = dict(self.values)
        try:
            if names:
                self.values[names[0]] = arg
            return self.eval(lam.body)
        finally:
            self.values = saved


@dataclass
class Launch:
    site: LaunchSite
    args: dict[str, ast.expr]            # kernel param -> argument expression
    options: dict[str, ast.expr]         # num_warps, num_stages, ... (non-param keywords)
    grid: ast.expr | None
    env: Env
    wrapper_ann: dict[str, str]          # wrapper param -> annotation text

    def text(self, p: str) -> str:
        return ast.unparse(self.args[p]) if p in self.args else ""


def _kernel_ref(e: ast.expr, names: set[str]) -> bool:
    return (isinstance(e, ast.Name) and e.id in names) or (isinstance(e, ast.Attribute) and e.attr in names)


def _find_call(tree: ast.Module, line: int, names: set[str]):
    best = None
    for n in ast.walk(tree):
        if (isinstance(n, ast.Call) and isinstance(n.func, ast.Subscript) and _kernel_ref(n.func.value, names)
                and n.lineno <= line <= (n.end_lineno or n.lineno) and (best is None or n.lineno > best.lineno)):
            best = n
    return best


def _enclosing(tree: ast.Module, line: int):
    best = None
    for n in ast.walk(tree):
        if (isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and n.lineno <= line <= (n.end_lineno or n.lineno)
                and (best is None or n.lineno > best.lineno)):
            best = n
    return best


_PARSED: dict[str, ast.Module] = {}


def read_launch(tree: SourceTree, site: LaunchSite, kernel_name: str, params: list[str],
                guess: Callable[[str], Any]) -> Launch | None:
    """The launch at ``site`` with arguments mapped to ``params``; None if not a ``K[grid](...)`` call."""
    path = tree.root / site.file
    try:
        if site.file not in _PARSED:
            _PARSED[site.file] = ast.parse(path.read_text(encoding="utf-8", errors="replace"))
        mod = _PARSED[site.file]
    except (OSError, SyntaxError):
        return None
    call = _find_call(mod, site.line, {kernel_name})
    if call is None:
        return None
    args: dict[str, ast.expr] = {}
    for p, a in zip(params, call.args):
        if isinstance(a, ast.Starred):
            break
        args[p] = a
    options = {}
    for kw in call.keywords:
        if kw.arg is None:
            continue
        if kw.arg in params:
            args[kw.arg] = kw.value
        else:
            options[kw.arg] = kw.value
    fn = _enclosing(mod, site.line)
    env = Env(guess=guess)
    ann: dict[str, str] = {}
    if fn is not None:
        fa = fn.args
        plist = fa.posonlyargs + fa.args + fa.kwonlyargs
        for p in plist:
            ann[p.arg] = ast.unparse(p.annotation) if p.annotation is not None else ""
        pos = fa.posonlyargs + fa.args
        for p, d in zip(pos[len(pos) - len(fa.defaults):], fa.defaults):
            env.locals[p.arg] = d
        for p, d in zip(fa.kwonlyargs, fa.kw_defaults):
            if d is not None:
                env.locals[p.arg] = d
        for st in ast.walk(fn):
            if isinstance(st, ast.Assign) and st.lineno < call.lineno and len(st.targets) == 1:
                t = st.targets[0]
                if isinstance(t, ast.Name):
                    env.locals[t.id] = st.value
            elif isinstance(st, ast.AnnAssign) and st.value is not None and isinstance(st.target, ast.Name) \
                    and st.lineno < call.lineno:
                env.locals[st.target.id] = st.value
    return Launch(site, args, options, call.func.slice, env, ann)


_TENSORISH = re.compile(r"\b(torch\.(empty|zeros|ones|full|randn|rand|arange|tensor)|\.contiguous\(\)|\.view\(|"
                        r"\.reshape\(|\.flatten\(|\.transpose\(|\.t\(\)|\.unsqueeze\(|\.squeeze\(|\.data_ptr\(\))")
_INTISH = re.compile(r"\.(stride|size|numel|dim|element_size)\(|\.shape\[|\blen\(|\bint\(")


def arg_kind(launch: Launch, p: str) -> str | None:
    """'tensor' | 'int' | 'float' | 'none' | None (unknown) for the launch argument of ``p``."""
    e = launch.args.get(p)
    if e is None:
        return None
    if isinstance(e, ast.Constant):
        if e.value is None:
            return "none"
        if isinstance(e.value, bool):
            return "int"
        return "float" if isinstance(e.value, float) else "int" if isinstance(e.value, int) else None
    txt = ast.unparse(e)
    if _INTISH.search(txt):
        return "int"
    if _TENSORISH.search(txt):
        return "tensor"
    if isinstance(e, ast.Name):
        a = launch.wrapper_ann.get(e.id, "")
        if "Tensor" in a:
            return "tensor"
        if re.fullmatch(r"int|Optional\[int\]|int \| None", a):
            return "int"
        if re.fullmatch(r"float|Optional\[float\]|float \| None", a):
            return "float"
    return None
