"""Make guessed constexprs satisfy the kernel's compile-time constraints (``ast`` only).

The generic launch guesses constexprs from names; Triton then rejects values that break a
compile-time rule.  :func:`read_constraints` collects, from the entry's body, the rules the
front end enforces at compile time: ``tl.arange(a, b)`` needs ``b - a`` a power of two, tensor
shapes (``tl.zeros``/``tl.full``/``reshape``...) need power-of-two dims, and
``tl.static_assert(cond)`` needs ``cond`` true (``stride == 1``, ``X % 32 == 0``,
``p.dtype.element_ty == tl.uint8``, ``desc is None``).  A rule under ``if C:`` only binds when
``C`` holds (a constexpr ``C`` that is false is not compiled).  :func:`solve` then changes the
fewest guessed values (coordinate descent over candidates near the guess, deterministic) until
no evaluable rule is broken; runtime scalars an assert pins (``stride == 1``) become
constexprs, pointers it types get that dtype or None.
"""
from __future__ import annotations

import ast
import math
import re
from dataclasses import dataclass, field, replace
from typing import Any

from vkc.invoke.triton.plan import Arg, Buffer, Scalar, TensorView, fill_for
from vkc.invoke.triton.untraced.launchsite import Env, Unknown

_SHAPE_CALLS = {"zeros": 0, "full": 0, "reshape": 1, "view": 1, "broadcast_to": 1, "empty": 0}
_PTR = "<pointer>"
_TL_TORCH = {"fp16": "float16", "bf16": "bfloat16", "fp32": "float32", "fp64": "float64", "int8": "int8",
             "int16": "int16", "int32": "int32", "int64": "int64", "uint8": "uint8", "fp8e4nv": "float8_e4m3fn",
             "fp8e5": "float8_e5m2"}
_TORCH_TL = {v: k for k, v in _TL_TORCH.items()}
_TL_NAMES = {"float16": "float16", "bfloat16": "bfloat16", "float32": "float32", "float64": "float64",
             "int8": "int8", "int16": "int16", "int32": "int32", "int64": "int64", "uint8": "uint8",
             "float8e4nv": "float8_e4m3fn", "float8e5": "float8_e5m2"}


_NO_VALUE = object()


def default_value(text: Any) -> Any:
    """A parameter default as the extractor quotes it (source text) -> its value (``_NO_VALUE`` if not literal)."""
    if not isinstance(text, str):
        return text
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        pass
    m = re.fullmatch(r"(?:tl|triton\.language)\.(\w+)", text.strip())
    if m:
        return {"__tl_dtype__": _TORCH_TL.get(_TL_NAMES.get(m.group(1), ""), m.group(1))}
    return _NO_VALUE


def is_value(v: Any) -> bool:
    """False for :func:`default_value`'s "not a literal" marker."""
    return v is not _NO_VALUE


@dataclass
class Rule:
    kind: str                                   # "pow2" | "true"
    expr: ast.expr
    path: list[tuple[ast.expr, bool]] = field(default_factory=list)   # enclosing (if-test, branch taken)
    names: set[str] = field(default_factory=set)
    known: int = 0                              # 1 when readable under the initial guesses


@dataclass
class Constraints:
    rules: list[Rule]
    locals: dict[str, ast.expr]                 # single-assignment locals of the entry


def _fn(tree: ast.Module, name: str) -> ast.FunctionDef | None:
    return next((n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name == name), None)


def _call_name(n: ast.Call) -> str:
    f = n.func
    return f.attr if isinstance(f, ast.Attribute) else f.id if isinstance(f, ast.Name) else ""


def read_constraints(source: str, entry: str) -> Constraints:
    """The entry's compile-time rules (see the module docstring)."""
    fn = _fn(ast.parse(source), entry.split(".")[-1])
    rules: list[Rule] = []
    if fn is None:
        return Constraints([], {})
    counts: dict[str, int] = {}
    local: dict[str, ast.expr] = {}
    for n in ast.walk(fn):
        tgt: str | None = None
        val: ast.expr | None = None
        if isinstance(n, ast.Assign) and len(n.targets) == 1 and isinstance(n.targets[0], ast.Name):
            tgt, val = n.targets[0].id, n.value
        elif isinstance(n, ast.AnnAssign) and isinstance(n.target, ast.Name) and n.value is not None:
            tgt, val = n.target.id, n.value
        elif isinstance(n, (ast.AugAssign, ast.For)):
            t = n.target
            if isinstance(t, ast.Name):
                counts[t.id] = counts.get(t.id, 0) + 2
        if tgt and val is not None:
            counts[tgt] = counts.get(tgt, 0) + 1
            local[tgt] = val
    local = {k: v for k, v in local.items() if counts.get(k) == 1}
    params = {a.arg for a in fn.args.posonlyargs + fn.args.args}

    def expr_rules(e: ast.AST, path):
        for n in ast.walk(e):
            if not isinstance(n, ast.Call):
                continue
            name = _call_name(n)
            if name == "arange" and n.args:
                a, b = (n.args[0], n.args[1]) if len(n.args) > 1 else (ast.Constant(0), n.args[0])
                rules.append(Rule("pow2", ast.BinOp(b, ast.Sub(), a), list(path)))
            elif name in _SHAPE_CALLS:
                pos = _SHAPE_CALLS[name]
                if name in ("reshape", "view", "broadcast_to") and isinstance(n.func, ast.Attribute) and not (
                        isinstance(n.func.value, ast.Name) and n.func.value.id in ("tl", "triton")):
                    pos = 0
                shape = n.args[pos] if len(n.args) > pos else next(
                    (k.value for k in n.keywords if k.arg == "shape"), None)
                if isinstance(shape, (ast.Tuple, ast.List)):
                    for d in shape.elts:
                        rules.append(Rule("pow2", d, list(path)))
                    src = (n.func.value if pos == 0 else n.args[0]) if name in ("reshape", "view") else None  # type: ignore[attr-defined]
                    have = _shape(src, local, params) if src is not None else None
                    if have and shape.elts:
                        rules.append(Rule("true", ast.Compare(_prod(have), [ast.Eq()], [_prod(shape.elts)]),
                                          list(path)))
            elif name == "static_assert" and n.args:
                rules.append(Rule("true", n.args[0], list(path)))

    def walk(stmts, path):
        for st in stmts:
            if isinstance(st, ast.If):
                expr_rules(st.test, path)
                walk(st.body, path + [(st.test, True)])
                walk(st.orelse, path + [(st.test, False)])
            elif isinstance(st, (ast.For, ast.While)):
                expr_rules(st.iter if isinstance(st, ast.For) else st.test, path)
                walk(st.body, path)
                walk(st.orelse, path)
            elif isinstance(st, ast.With):
                walk(st.body, path)
            elif isinstance(st, (ast.FunctionDef, ast.ClassDef)):
                continue
            else:
                expr_rules(st, path)

    walk(fn.body, [])
    for r in rules:
        r.names = _free(r.expr, local) | {x for t, _ in r.path for x in _free(t, local)}
    return Constraints(rules, local)


_ELEMENTWISE = {"to", "cast", "exp", "exp2", "log", "log2", "abs", "sqrt", "rsqrt", "sigmoid", "where", "maximum",
                "minimum", "clamp", "load", "fma", "cos", "sin", "floor", "ceil", "div_rn", "fdiv", "erf",
                "multiple_of", "max_contiguous", "umulhi", "tanh"}


def _shape(e: ast.expr | None, local: dict, params: set[str], depth: int = 0) -> list[ast.expr] | None:
    """Dims (as expressions) of a tensor expression, [] for a scalar, None when unknown."""
    if e is None or depth > 30:
        return None
    if isinstance(e, ast.Constant):
        return []
    if isinstance(e, ast.Name):
        return _shape(local[e.id], local, params, depth + 1) if e.id in local else [] if e.id in params else None
    if isinstance(e, ast.BinOp):
        a, b = _shape(e.left, local, params, depth + 1), _shape(e.right, local, params, depth + 1)
        if a is None or b is None:
            return a if b == [] else b if a == [] else None
        return a if len(a) >= len(b) else b
    if isinstance(e, ast.UnaryOp):
        return _shape(e.operand, local, params, depth + 1)
    if isinstance(e, ast.Subscript):
        base = _shape(e.value, local, params, depth + 1)
        idx = e.slice.elts if isinstance(e.slice, ast.Tuple) else [e.slice]
        if base is None or not all(isinstance(i, ast.Slice) or (isinstance(i, ast.Constant) and i.value is None)
                                   for i in idx):
            return None
        out, it = [], iter(base)
        for i in idx:
            out.append(ast.Constant(1) if isinstance(i, ast.Constant) else next(it, ast.Constant(1)))
        return out + list(it)
    if isinstance(e, ast.Call):
        name = _call_name(e)
        method = isinstance(e.func, ast.Attribute) and not (
            isinstance(e.func.value, ast.Name) and e.func.value.id in ("tl", "triton", "math", "libdevice"))
        first = e.func.value if method else (e.args[0] if e.args else None)  # type: ignore[attr-defined]
        if name == "arange" and e.args:
            lo, hi = (e.args[0], e.args[1]) if len(e.args) > 1 else (ast.Constant(0), e.args[0])
            return [ast.BinOp(hi, ast.Sub(), lo)]
        if name in ("zeros", "full", "reshape", "view"):
            shp = (e.args[0] if name in ("zeros", "full") or method else e.args[1] if len(e.args) > 1 else None) \
                if e.args else None
            return list(shp.elts) if isinstance(shp, (ast.Tuple, ast.List)) else None
        if name in ("program_id", "num_programs"):
            return []
        if name in _ELEMENTWISE:
            if name == "where" and not method:
                shapes = [_shape(a, local, params, depth + 1) for a in e.args[:3]]
                known = [x for x in shapes if x]
                return max(known, key=len) if known else ([] if all(x == [] for x in shapes) else None)
            return _shape(first, local, params, depth + 1)
    return None


def _prod(dims: list[ast.expr]) -> ast.expr:
    out = dims[0]
    for d in dims[1:]:
        out = ast.BinOp(out, ast.Mult(), d)
    return out


def _free(e: ast.AST, local: dict[str, ast.expr], seen: frozenset = frozenset()) -> set[str]:
    out: set[str] = set()
    for n in ast.walk(e):
        if isinstance(n, ast.Name):
            if n.id in local and n.id not in seen:
                out |= _free(local[n.id], local, seen | {n.id})
            else:
                out.add(n.id)
    return out


class _CEnv(Env):
    """Env that also knows pointers: ``p.dtype.element_ty`` and ``p is None``."""

    def __init__(self, local, values, ptrs):
        super().__init__(locals=dict(local), values=dict(values), guess=None)
        self.ptrs = ptrs

    def eval(self, e):
        if isinstance(e, ast.Attribute) and e.attr == "element_ty" and isinstance(e.value, ast.Attribute) \
                and e.value.attr in ("dtype", "type") and isinstance(e.value.value, ast.Name) \
                and e.value.value.id in self.ptrs:
            dt = self.ptrs[e.value.value.id]
            if dt is None:
                raise Unknown("None.dtype")
            return {"__tl_dtype__": _TORCH_TL.get(dt, dt)}
        if isinstance(e, ast.Name) and e.id in self.ptrs and e.id not in self.values:
            return None if self.ptrs[e.id] is None else _PTR
        if isinstance(e, ast.Call) and _call_name(e) == "constexpr" and len(e.args) == 1:
            return self.eval(e.args[0])
        return super().eval(e)


def _pow2(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v > 0 and v & (v - 1) == 0


def _broken(cons: Constraints, values: dict, ptrs: dict) -> int:
    """How many evaluable rules the assignment breaks."""
    bad = 0
    for r in cons.rules:
        env = _CEnv(cons.locals, values, ptrs)
        try:
            taken = all(bool(env.eval(t)) == want for t, want in r.path)
        except (Unknown, RecursionError, KeyError, TypeError):
            taken = True
        if not taken:
            continue
        try:
            v = env.eval(r.expr)
        except (Unknown, RecursionError, KeyError, TypeError):
            bad += r.known   # a rule a trial makes unreadable is not a rule it satisfies
            continue
        if (r.kind == "pow2" and isinstance(v, int) and not _pow2(v)) or (r.kind == "true" and not v):
            bad += 1
    return bad


def _readable(cons: Constraints, r: Rule, values: dict, ptrs: dict) -> int:
    try:
        _CEnv(cons.locals, values, ptrs).eval(r.expr)
        return 1
    except (Unknown, RecursionError, KeyError, TypeError):
        return 0


def _consts(cons: Constraints) -> list[Any]:
    out = set()
    for r in cons.rules:
        for n in ast.walk(r.expr):
            if isinstance(n, ast.Constant) and isinstance(n.value, int) and not isinstance(n.value, bool) \
                    and 0 <= n.value <= 4096:
                out.add(n.value)
    return sorted(out)


def _tl_consts(cons: Constraints) -> list[str]:
    out = []
    for r in cons.rules:
        for n in ast.walk(r.expr):
            if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name) and n.value.id == "tl":
                short = {"bfloat16": "bf16", "float16": "fp16", "float32": "fp32", "float8e4nv": "fp8e4nv",
                         "float8e5": "fp8e5"}.get(n.attr, n.attr)
                if short in _TL_TORCH and short not in out:
                    out.append(short)
    return out


def _candidates(cur: Any, consts: list[int], dtypes: list[str]) -> list[Any]:
    if isinstance(cur, bool):
        return [not cur]
    if isinstance(cur, dict) and "__tl_dtype__" in cur:
        return [{"__tl_dtype__": d} for d in dtypes if d != cur["__tl_dtype__"]]
    if isinstance(cur, int):
        ref = math.log2(max(cur, 1))
        p2 = sorted((1 << k for k in range(15)), key=lambda v: (abs(math.log2(v) - ref), v))
        rest = [0] + consts + [c * m for c in consts if c > 0 for m in (2, 4, 8)] + [(1 << k) - 1 for k in range(2, 6)]
        out = []
        for v in p2 + rest:
            if v != cur and v not in out:
                out.append(v)
        return out + [None]
    return []


def solve(cons: Constraints, constexprs: dict, adjustable: list[str], scalars: dict[str, Any],
          ptrs: dict[str, str | None]) -> tuple[dict, dict, dict, list[str]]:
    """(constexprs, scalars pinned to constexprs, pointer dtype/None changes, notes) breaking the fewest rules.

    Runtime scalars named by a ``static_assert`` are pinned: the assert needs a compile-time value.
    """
    asserted = set().union(set(), *(r.names for r in cons.rules if r.kind == "true"))
    pinned_names = [k for k in scalars if k in asserted]
    values = {**{k: scalars[k] for k in pinned_names}, **constexprs}
    ptrs = dict(ptrs)
    for r in cons.rules:
        r.known = _readable(cons, r, values, ptrs)
    best = _broken(cons, values, ptrs) if cons.rules else 0
    changed: dict[str, Any] = {}
    if best:
        consts, dtypes = _consts(cons), _tl_consts(cons)
        free = set(adjustable) | set(pinned_names) | set(ptrs)
        rank = {n: i for i, n in enumerate(list(adjustable) + pinned_names + sorted(ptrs) + sorted(constexprs))}
        for _round in range(3):
            improved = False
            for r in cons.rules:   # a broken rule: its own names first, then those of the ifs around it
                own = sorted((_free(r.expr, cons.locals) & (free | set(constexprs))), key=lambda n: rank.get(n, 1 << 30))
                around = sorted((r.names - set(own)) & free, key=lambda n: rank.get(n, 1 << 30))
                for name in own + around:
                    if name in ptrs:
                        cands = [c for c in [None] + [_TL_TORCH[d] for d in dtypes] if c != ptrs[name]]
                        trials = [(c, values, {**ptrs, name: c}) for c in cands]
                    elif name in values:
                        trials = [(c, {**values, name: c}, ptrs) for c in _candidates(values[name], consts, dtypes)]
                    else:
                        continue
                    for c, tv, tp in trials:
                        b = _broken(cons, tv, tp)
                        if b < best:
                            best, values, ptrs, improved = b, tv, tp, True
                            changed[name] = c
                            break
                    if best == 0:
                        break
                if best == 0:
                    break
            if best == 0 or not improved:
                break
    new_cx = {k: values[k] for k in constexprs}
    pinned = {k: values[k] for k in pinned_names}
    ptr_changes = {k: ptrs[k] for k in changed if k in ptrs}
    notes = [f"constexprs adjusted to the kernel's compile-time rules: "
             f"{', '.join(f'{k}={v!r}' for k, v in sorted(changed.items(), key=lambda kv: kv[0]))}"
             + (f" ({best} rule(s) still broken)" if best else "")] if changed else []
    if pinned:
        notes.append(f"runtime scalars a static_assert reads passed as constexprs: {sorted(pinned)}")
    return new_cx, pinned, ptr_changes, notes


def apply_rules(constexprs: dict[str, Any], sources: dict[str, str], args: list[Arg], buffers: dict[str, Buffer],
                cons: Constraints, notes: list[str]) -> tuple[dict[str, Any], list[Arg], dict[str, Buffer]]:
    """Guessed constexprs (and pinned scalars / asserted pointers) adjusted to the kernel's compile-time
    rules: ``(constexprs, args, buffers)``."""
    adjustable = [k for k, s in sources.items() if s.startswith(("guess", "autotune", "heuristics")) or "guessed" in s]
    scalars = {a.param: a.value for a in args if isinstance(a, Scalar) and isinstance(a.value, int)
               and not isinstance(a.value, bool)}
    ptrs: dict[str, str | None] = {a.param: a.dtype for a in args if isinstance(a, TensorView)}
    cx, pinned, ptr_changes, extra = solve(cons, constexprs, adjustable, scalars, ptrs)
    notes.extend(extra)
    bufs = dict(buffers)
    out: list[Arg] = []
    for a in args:
        if a.param in pinned:
            continue
        if isinstance(a, TensorView) and a.param in ptr_changes:
            dt = ptr_changes[a.param]
            if dt is None:
                out.append(Scalar(a.param, None))
                bufs.pop(a.param, None)
                continue
            a = replace(a, dtype=dt)
            bufs[a.param] = replace(bufs[a.param], dtype=dt, init=fill_for(dt))
        out.append(a)
    return {**cx, **pinned}, out, bufs
