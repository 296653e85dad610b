"""The AST model the static parameter typing reads (:mod:`.sigtypes`): functions, pointer roots, evidence.

:class:`_Module` holds the kernel source's ``@triton.jit`` functions (:class:`_Fn`: parameters,
annotations, local assignments, which parameters are pointers, solved across helper calls);
:func:`_evidence` says, per function, which pointer parameters hold index data (int32),
addresses (int64), 8-bit data or integer data.
"""
from __future__ import annotations

import ast
import re

from vkc.invoke.triton.untraced.ptrroles import (
    foreign_base,
    int_data_ptrs,
    loaded_into,
    narrow_ptrs,
    stored_dtypes,
)

_MEM_OPS = {"load", "store", "atomic_add", "atomic_max", "atomic_min", "atomic_cas", "atomic_xchg",
            "atomic_and", "atomic_or", "atomic_xor", "prefetch"}
_BASE_OPS = {"make_block_ptr", "make_tensor_descriptor", "_experimental_make_tensor_descriptor",
             "experimental_device_tensormap_create1d", "experimental_device_tensormap_create2d"}
_PASS_OPS = {"multiple_of", "max_contiguous", "max_constancy", "to", "cast", "broadcast_to", "expand_dims", "reshape",
             "view"}
_PTR_NAME = re.compile(r"(^|_)ptrs?($|_)|Ptr$|_ptr\d*$|^ptr|ptr$", re.IGNORECASE)
_INT_NAME = re.compile(r"stride|^offs?(_|$)|^off_|^start|^pid|^idx$|^i$|^j$|^k$|^n$|^m$|^num_|^n_|size|^len|_len$|"
                       r"count$|^step|^block_(start|id|idx)", re.IGNORECASE)
_INT_TYPES = ("int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64", "int1")


def _call_name(node: ast.Call) -> str:
    f = node.func
    if isinstance(f, ast.Attribute):
        return f.attr
    if isinstance(f, ast.Name):
        return f.id
    return ""


def _arg(node: ast.Call, pos: int, *names: str) -> ast.expr | None:
    for kw in node.keywords:
        if kw.arg in names:
            return kw.value
    return node.args[pos] if len(node.args) > pos else None


def _names(node: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}


class _Fn:
    """One function of the source: its params, local assignments and analysis results."""

    def __init__(self, node: ast.FunctionDef):
        self.node = node
        a = node.args
        self.params = [p.arg for p in a.posonlyargs + a.args]
        self.ann = {p.arg: (ast.unparse(p.annotation) if p.annotation is not None else "")
                    for p in a.posonlyargs + a.args}
        self.assigns: dict[str, list[ast.expr]] = {}
        self.increments: set[int] = set()   # ids of ``p += step`` values: steps, never bases
        for n in ast.walk(node):
            if isinstance(n, ast.Assign):
                for t in n.targets:
                    if isinstance(t, ast.Name):
                        self.assigns.setdefault(t.id, []).append(n.value)
                    elif isinstance(t, ast.Tuple) and isinstance(n.value, ast.Tuple) and \
                            len(t.elts) == len(n.value.elts):   # a, b = x, y
                        for tt, vv in zip(t.elts, n.value.elts):
                            if isinstance(tt, ast.Name):
                                self.assigns.setdefault(tt.id, []).append(vv)
            elif isinstance(n, (ast.AnnAssign, ast.AugAssign)) and isinstance(n.target, ast.Name) and n.value:
                if isinstance(n, ast.AugAssign) and not isinstance(n.op, (ast.Add, ast.Sub)):
                    continue
                self.assigns.setdefault(n.target.id, []).append(n.value)
                if isinstance(n, ast.AugAssign):
                    self.increments.add(id(n.value))
        self.ptrs: set[str] = set()
        self.helpers: set[str] = set()

    def constexpr(self, p: str) -> bool:
        return "constexpr" in self.ann.get(p, "")

    def roots(self, e: ast.expr | None, seen: frozenset = frozenset()) -> list[str]:
        """Candidate pointer params of a pointer-valued expression, leftmost first."""
        if e is None:
            return []
        if isinstance(e, ast.Name):
            out = [e.id] if e.id in self.params and not self.constexpr(e.id) else []
            if e.id in self.assigns and e.id not in seen:
                for v in self.assigns[e.id]:
                    out += [r for r in self.roots(v, seen | {e.id}) if r not in out]
            return out
        if isinstance(e, ast.BinOp):
            if isinstance(e.op, ast.Add):
                left = self.roots(e.left, seen)
                return left + [r for r in self.roots(e.right, seen) if r not in left]
            if isinstance(e.op, ast.Sub):
                return self.roots(e.left, seen)
            return []
        if isinstance(e, ast.Subscript):
            return self.roots(e.value, seen)
        if isinstance(e, ast.IfExp):
            a = self.roots(e.body, seen)
            return a + [r for r in self.roots(e.orelse, seen) if r not in a]
        if isinstance(e, ast.Call):
            name = _call_name(e)
            if name in _PASS_OPS:
                inner = e.func.value if isinstance(e.func, ast.Attribute) and name in ("to", "reshape", "view") \
                    and not (isinstance(e.func.value, ast.Name) and e.func.value.id in ("tl", "triton")) else _arg(e, 0)
                return self.roots(inner, seen)
            if name == "where":
                a = self.roots(_arg(e, 1), seen)
                return a + [r for r in self.roots(_arg(e, 2), seen) if r not in a]
        return []


def _pick(fn: _Fn, cands: list[str], expr: ast.expr | None = None) -> str | None:
    if not cands:
        return None
    if len(cands) == 1:   # a lone int-like name (start, offs, stride...) is an offset off some other base
        c = cands[0]     # ... unless the expression has no other base (tl.load(lengths + row), K + offs)
        return c if c in fn.ptrs or _PTR_NAME.search(c) or not _INT_NAME.search(c) or \
            (expr is not None and not foreign_base(fn, expr, fn.helpers)) else None

    def score(i_c):
        i, c = i_c
        s = 0
        if c in fn.ptrs:
            s += 4
        if _PTR_NAME.search(c):
            s += 3
        if _INT_NAME.search(c):
            s -= 5
        if c[:1].isupper() and not c.isupper() or (c.isupper() and len(c) <= 3 and c not in ("M", "N", "K", "D", "H")):
            s += 1
        return (-s, i)
    return min(enumerate(cands), key=score)[1]


class _Module:
    def __init__(self, source: str):
        self.tree = ast.parse(source)
        self.fns: dict[str, _Fn] = {}
        for n in ast.walk(self.tree):
            if isinstance(n, ast.FunctionDef):
                self.fns.setdefault(n.name, _Fn(n))
        for fn in self.fns.values():
            fn.helpers = set(self.fns) - {fn.node.name}

    def ptr_positions(self, fn: _Fn):
        """(expr) of every pointer-valued position in fn: memory op bases and helper pointer args."""
        for n in ast.walk(fn.node):
            if isinstance(n, ast.Call):
                name = _call_name(n)
                if name in _MEM_OPS and isinstance(n.func, ast.Attribute):
                    yield _arg(n, 0, "pointer", "ptr")
                elif name in _BASE_OPS:
                    yield _arg(n, 0, "base")
                elif isinstance(n.func, ast.Name) and n.func.id in self.fns and n.func.id != fn.node.name:
                    callee = self.fns[n.func.id]
                    for i, a in enumerate(n.args):
                        if i < len(callee.params) and callee.params[i] in callee.ptrs:
                            yield a
                    for kw in n.keywords:
                        if kw.arg in callee.ptrs:
                            yield kw.value
            elif isinstance(n, ast.Attribute) and n.attr == "element_ty" and isinstance(n.value, ast.Attribute) \
                    and n.value.attr in ("dtype", "type"):
                yield n.value.value

    def solve(self) -> None:
        for _ in range(6):   # fixpoint over helpers
            changed = False
            for fn in self.fns.values():
                for alt in [a for pos in self.ptr_positions(fn) for a in _alternatives(fn, pos)]:
                    p = _pick(fn, fn.roots(alt), None if id(alt) in fn.increments else alt)
                    if p and p not in fn.ptrs:
                        fn.ptrs.add(p)
                        changed = True
            if not changed:
                return


def _alternatives(fn: _Fn, e: ast.expr | None, depth: int = 0) -> list[ast.expr | None]:
    """A pointer expression whose base is a local assigned in several branches: one per assignment."""
    base = e
    while isinstance(base, (ast.BinOp, ast.Subscript)):
        base = base.left if isinstance(base, ast.BinOp) else base.value
    if isinstance(base, ast.Name) and len(fn.assigns.get(base.id, [])) > 1 and base.id not in fn.params and depth < 4:
        out = []
        for v in fn.assigns[base.id]:
            out += _alternatives(fn, v, depth + 1)
        return out
    return [e]


def _index_names(mod: _Module, fn: _Fn) -> set[str]:
    """Names whose values are used as integers: pointer offsets, range bounds, bit operations."""
    seeds: set[str] = set()
    direct: set[str] = set()   # operands of bit ops: not followed through assignments
    for e in mod.ptr_positions(fn):
        if e is not None:
            seeds |= _names(e)
    for n in ast.walk(fn.node):
        if isinstance(n, ast.BinOp) and isinstance(n.op, (ast.BitAnd, ast.BitOr, ast.BitXor, ast.RShift, ast.LShift,
                                                          ast.FloorDiv, ast.Mod)):
            for side in (n.left, n.right):
                if isinstance(side, ast.Name):
                    direct.add(side.id)
        elif isinstance(n, ast.Call) and _call_name(n) in ("range", "static_range", "histogram"):
            for a in n.args:
                seeds |= _names(a)
    out, todo = set(direct), list(seeds)
    while todo:
        v = todo.pop()
        if v in out:
            continue
        out.add(v)
        for e in fn.assigns.get(v, []):
            if isinstance(e, ast.Call) and _call_name(e) in ("load", "atomic_add", "atomic_cas", "atomic_xchg"):
                continue   # stop at loads: the loaded pointer is judged by _loaded_from
            todo.extend(_names(e))
    return out


def _loaded_from(fn: _Fn, e: ast.expr | None) -> tuple[str | None, bool]:
    """(pointer param loaded by e, cast to an int type) for ``tl.load(p ...)[.to(int)]``."""
    cast_int = False
    while isinstance(e, ast.Call) and _call_name(e) in ("to", "cast", "multiple_of", "max_contiguous"):
        ty = _arg(e, 0 if _call_name(e) == "to" else 1, "dtype")
        if ty is not None and any(t in ast.unparse(ty) for t in _INT_TYPES):
            cast_int = True
        e = e.func.value if _call_name(e) == "to" and isinstance(e.func, ast.Attribute) else _arg(e, 0)
    if isinstance(e, ast.Call) and _call_name(e) in ("load", "atomic_add") and isinstance(e.func, ast.Attribute):
        return _pick(fn, fn.roots(_arg(e, 0, "pointer")), _arg(e, 0, "pointer")), cast_int
    return None, False


def _local_evidence(mod: _Module, fn: _Fn) -> dict[str, str]:
    index_names = _index_names(mod, fn)
    ev: dict[str, str] = {p: "intdata" for p in int_data_ptrs(fn, _pick)}
    for v, exprs in fn.assigns.items():
        for e in exprs:
            p, cast_int = _loaded_from(fn, e)
            if p and (cast_int or v in index_names):
                ev[p] = "int32"
    for p, dt in stored_dtypes(fn, _pick).items():
        ev[p] = dt if dt.startswith(("float8", "uint8", "int8")) or p not in ev else ev[p]
    for n in ast.walk(fn.node):   # a value loaded here and passed to a helper's int-used scalar
        if isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id in mod.fns and n.func.id != fn.node.name:
            callee = mod.fns[n.func.id]
            used = _index_names(mod, callee) - callee.ptrs
            pairs = [(callee.params[i], a) for i, a in enumerate(n.args) if i < len(callee.params)]
            for cp, a in pairs + [(k.arg, k.value) for k in n.keywords if k.arg]:
                if cp in used and not callee.constexpr(cp):
                    for p in loaded_into(fn, a, _pick):
                        ev.setdefault(p, "int32")
    ev.update(narrow_ptrs(fn, _pick))
    for p in _address_ptrs(fn):
        ev[p] = "int64"
    return ev


_RANK = {"intdata": 0, "int16": 1, "int32": 1, "int8": 2, "uint8": 2, "float8_e4m3fn": 2, "float8_e5m2": 2,
         "int64": 3}


def _evidence(mod: _Module) -> dict[str, dict[str, str]]:
    """Per function: pointer param -> int32 (index data) / int64 (addresses) / 8-bit data / intdata (bit ops)."""
    ev = {name: _local_evidence(mod, fn) for name, fn in mod.fns.items()}
    for _ in range(6):
        changed = False
        for name, fn in mod.fns.items():
            for n in ast.walk(fn.node):
                if not (isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id in mod.fns
                        and n.func.id != name):
                    continue
                callee = mod.fns[n.func.id]
                pairs = [(callee.params[i], a) for i, a in enumerate(n.args) if i < len(callee.params)]
                pairs += [(k.arg, k.value) for k in n.keywords if k.arg]
                for cp, a in pairs:
                    kind = ev[n.func.id].get(cp)
                    if kind:
                        r = _pick(fn, fn.roots(a), a)
                        if r and _RANK[kind] > _RANK.get(ev[name].get(r, ""), -1):
                            ev[name][r] = kind
                            changed = True
        if not changed:
            break
    return ev


def _address_ptrs(fn: _Fn) -> set[str]:
    """Pointer params whose loaded values are cast to pointers (tables of addresses: int64)."""
    out: set[str] = set()
    for n in ast.walk(fn.node):
        if not isinstance(n, ast.Call) or "pointer_type" not in ast.unparse(n.args[-1] if n.args else n)[:200]:
            continue
        name = _call_name(n)
        if name == "to" and isinstance(n.func, ast.Attribute):
            val = n.func.value
        elif name == "cast" and n.args:
            val = n.args[0]
        else:
            continue
        exprs = fn.assigns.get(val.id, []) if isinstance(val, ast.Name) else [val]
        for e in exprs:
            p, _ = _loaded_from(fn, e)
            if p:
                out.add(p)
    return out


_TL_SHORT = {"float16": "fp16", "bfloat16": "bf16", "float32": "fp32", "float64": "fp64", "float8e4nv": "fp8e4nv",
             "float8e5": "fp8e5", "int8": "int8", "int16": "int16", "int32": "int32", "int64": "int64",
             "uint8": "uint8", "uint32": "uint32", "float8e4b15": "float8e4b15", "float8e4b8": "float8e4b8",
             "float8e5b16": "float8e5b16"}


def _tl_short(attr: str) -> str:
    return _TL_SHORT.get(attr, attr)
