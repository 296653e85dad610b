"""Pointer roles beyond "is a pointer" for the generic launch's static typing (``ast`` only).

* :func:`foreign_base`: does a pointer-valued expression have a base other than the kernel's
  parameters (a loaded address cast to a pointer, a helper's return value, a block pointer)?
  When it does not, a lone parameter in it must be the pointer, whatever its name says
  (``tl.load(lengths + row)``, ``K + offs``).
* :func:`narrow_ptrs`: pointers whose loaded values are reinterpreted as 8-bit data
  (``tl.cast(raw, tl.float8e4nv, bitcast=True)`` of a loaded ``raw``: uint8 bytes; operands of
  ``tl.dot_scaled(..., "e4m3", ...)``: fp8; its scales: uint8).
* :func:`int_data_ptrs`: pointers whose loaded values take part in bit operations (``&``,
  ``>>``, ...): integer data (packed weights, masks), never float.
"""
from __future__ import annotations

import ast

_INT_VALUE_OPS = {"program_id", "num_programs", "arange", "cdiv", "minimum", "maximum", "zeros", "full", "abs",
                  "static_range", "range", "min", "max", "int", "umulhi", "sum", "argmax", "argmin", "max_constancy",
                  "load", "atomic_add", "atomic_cas", "atomic_xchg", "atomic_max", "atomic_min", "clamp", "cast",
                  "to", "multiple_of", "max_contiguous", "broadcast_to", "expand_dims", "reshape", "view"}
_FP8_FMT = {"e4m3": "float8_e4m3fn", "e5m2": "float8_e5m2", "e2m1": "uint8"}
_BIT_OPS = (ast.BitAnd, ast.BitOr, ast.BitXor, ast.RShift, ast.LShift, ast.FloorDiv)


def _call_name(node: ast.Call) -> str:
    f = node.func
    return f.attr if isinstance(f, ast.Attribute) else f.id if isinstance(f, ast.Name) else ""


def _to_pointer(e: ast.Call) -> bool:
    return "pointer_type" in ast.unparse(e)[:300]


def foreign_base(fn, e: ast.expr | None, helpers: set[str], seen: frozenset = frozenset(), depth: int = 0) -> bool:
    """True when ``e`` (a pointer expression of ``fn``, a ``sigtypes._Fn``) may take its base from a non-parameter."""
    if e is None or depth > 24:
        return False
    if isinstance(e, ast.Name):
        if e.id in fn.params or e.id in seen:
            return False
        return any(foreign_base(fn, v, helpers, seen | {e.id}, depth + 1) for v in fn.assigns.get(e.id, []))
    if isinstance(e, ast.BinOp):
        if isinstance(e.op, ast.Add):
            return foreign_base(fn, e.left, helpers, seen, depth + 1) or \
                foreign_base(fn, e.right, helpers, seen, depth + 1)
        if isinstance(e.op, ast.Sub):
            return foreign_base(fn, e.left, helpers, seen, depth + 1)
        return False
    if isinstance(e, ast.Subscript):
        return foreign_base(fn, e.value, helpers, seen, depth + 1)
    if isinstance(e, ast.IfExp):
        return foreign_base(fn, e.body, helpers, seen, depth + 1) or \
            foreign_base(fn, e.orelse, helpers, seen, depth + 1)
    if isinstance(e, ast.Call):
        name = _call_name(e)
        if name in ("to", "cast") and _to_pointer(e):
            return True
        if isinstance(e.func, ast.Name) and e.func.id in helpers:
            return True
        if name == "where":
            return any(foreign_base(fn, a, helpers, seen, depth + 1) for a in e.args[1:3])
        if name in ("multiple_of", "max_contiguous", "broadcast_to", "expand_dims", "reshape", "view"):
            inner = e.func.value if isinstance(e.func, ast.Attribute) and name in ("reshape", "view") and \
                not (isinstance(e.func.value, ast.Name) and e.func.value.id in ("tl", "triton")) else \
                (e.args[0] if e.args else None)
            return foreign_base(fn, inner, helpers, seen, depth + 1)
        return name not in _INT_VALUE_OPS
    return False


def _loaded_ptr(fn, e: ast.expr, pick, seen: frozenset = frozenset()) -> list[str]:
    """Pointer params whose loaded values flow into ``e`` (through locals, casts and arithmetic)."""
    if isinstance(e, ast.Name):
        if e.id in seen:
            return []
        out: list[str] = []
        for v in fn.assigns.get(e.id, []):
            out += _loaded_ptr(fn, v, pick, seen | {e.id})
        return out
    if isinstance(e, ast.Call):
        name = _call_name(e)
        if name in ("load", "atomic_add") and isinstance(e.func, ast.Attribute):
            ptr = e.args[0] if e.args else next((k.value for k in e.keywords if k.arg in ("pointer", "ptr")), None)
            p = pick(fn, fn.roots(ptr))
            return [p] if p else []
        if name in ("reshape", "view", "split", "join", "interleave", "where", "broadcast_to", "expand_dims",
                    "trans", "permute", "maximum", "minimum", "abs", "clamp", "sort", "flip"):   # not through casts: the loaded type is what reaches a cast
            out = []
            base = e.func.value if isinstance(e.func, ast.Attribute) and not (
                isinstance(e.func.value, ast.Name) and e.func.value.id in ("tl", "triton")) else None
            for a in ([base] if base is not None else []) + list(e.args):
                out += _loaded_ptr(fn, a, pick, seen)
            return out
        return []
    if isinstance(e, (ast.BinOp, ast.BoolOp)):
        parts = [e.left, e.right] if isinstance(e, ast.BinOp) else e.values
        out = []
        for a in parts:
            out += _loaded_ptr(fn, a, pick, seen)
        return out
    if isinstance(e, ast.Subscript) or (isinstance(e, ast.Attribute) and e.attr == "T"):
        return _loaded_ptr(fn, e.value, pick, seen)
    if isinstance(e, ast.IfExp):
        return _loaded_ptr(fn, e.body, pick, seen) + _loaded_ptr(fn, e.orelse, pick, seen)
    if isinstance(e, ast.Tuple):
        out = []
        for a in e.elts:
            out += _loaded_ptr(fn, a, pick, seen)
        return out
    return []


def _bitcast_to_8bit(e: ast.Call) -> bool:
    """True when ``e`` bitcasts its operand to an 8-bit type (the operand is then raw bytes: uint8)."""
    if not any(k.arg == "bitcast" and isinstance(k.value, ast.Constant) and k.value.value for k in e.keywords):
        return False
    name = _call_name(e)
    ty = e.args[0] if name == "to" and e.args else e.args[1] if name == "cast" and len(e.args) > 1 else \
        next((k.value for k in e.keywords if k.arg == "dtype"), None)
    txt = ast.unparse(ty) if ty is not None else ""
    return "float8" in txt or txt.endswith(("uint8", ".int8"))


def narrow_ptrs(fn, pick) -> dict[str, str]:
    """Pointer param -> torch dtype for pointers holding 8-bit (fp8 / packed fp4) data."""
    out: dict[str, str] = {}
    for n in ast.walk(fn.node):
        if not isinstance(n, ast.Call):
            continue
        name = _call_name(n)
        if name in ("to", "cast"):
            if _bitcast_to_8bit(n):
                src = n.func.value if name == "to" and isinstance(n.func, ast.Attribute) else \
                    (n.args[0] if n.args else None)
                if src is not None:
                    for p in _loaded_ptr(fn, src, pick):
                        out.setdefault(p, "uint8")
        elif name == "dot_scaled" and len(n.args) >= 6:
            for val, fmt in ((n.args[0], n.args[2]), (n.args[3], n.args[5])):
                if isinstance(fmt, ast.Constant) and fmt.value in _FP8_FMT:
                    for p in _loaded_ptr(fn, val, pick):
                        out.setdefault(p, _FP8_FMT[fmt.value])
                    # the scale operand (args 1 / 4) is uint8 e8m0
            for sc in (n.args[1], n.args[4]):
                for p in _loaded_ptr(fn, sc, pick):
                    out.setdefault(p, "uint8")
    return out


def loaded_into(fn, e: ast.expr, pick) -> list[str]:
    """Pointer params whose loaded values flow into ``e`` (public form of the walk above)."""
    return _loaded_ptr(fn, e, pick)


def int_data_ptrs(fn, pick) -> set[str]:
    """Pointer params whose loaded values are operands of bit operations or ``//`` (integer data)."""
    out: set[str] = set()
    for n in ast.walk(fn.node):
        if isinstance(n, ast.BinOp) and isinstance(n.op, _BIT_OPS):
            for side in (n.left, n.right):
                out.update(_loaded_ptr(fn, side, pick))
    return out


def none_params(fn) -> set[str]:
    """Runtime params the body checks against None and otherwise uses as tensor descriptors
    (``desc.load([...])``): passed as None, the kernel's own fallback path."""
    checked, methods = set(), set()
    for n in ast.walk(fn.node):
        if isinstance(n, ast.Compare) and len(n.ops) == 1 and isinstance(n.ops[0], (ast.Is, ast.IsNot)):
            for a, b in ((n.left, n.comparators[0]), (n.comparators[0], n.left)):
                if isinstance(a, ast.Name) and isinstance(b, ast.Constant) and b.value is None:
                    checked.add(a.id)
        elif isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and isinstance(n.func.value, ast.Name) \
                and n.func.attr in ("load", "store", "gather", "scatter", "atomic_add"):
            methods.add(n.func.value.id)
    return {p for p in fn.params if p in checked and p in methods and not fn.constexpr(p)}


_STORE_TYPES = {"float8e4nv": "float8_e4m3fn", "float8e4b8": "float8_e4m3fn", "float8e5": "float8_e5m2",
                "float8e4b15": "float8_e4m3fn", "float8e5b16": "float8_e5m2", "uint8": "uint8", "int8": "int8",
                "int16": "int16", "int32": "int32", "int64": "int64"}


def _dtype_of(fn, e: ast.expr | None, seen: frozenset = frozenset()) -> str | None:
    """The tl dtype attribute name an expression names (through locals and ``a if c else b``)."""
    if isinstance(e, ast.Attribute) and isinstance(e.value, ast.Name) and e.value.id in ("tl", "triton"):
        return e.attr
    if isinstance(e, ast.IfExp):
        return _dtype_of(fn, e.orelse, seen) or _dtype_of(fn, e.body, seen)
    if isinstance(e, ast.Name) and e.id not in seen and len(fn.assigns.get(e.id, [])) == 1:
        return _dtype_of(fn, fn.assigns[e.id][0], seen | {e.id})
    return None


def stored_dtypes(fn, pick) -> dict[str, str]:
    """Pointer param -> torch dtype for stores of a value cast to an 8-bit or integer type."""
    out: dict[str, str] = {}
    for n in ast.walk(fn.node):
        if not (isinstance(n, ast.Call) and _call_name(n) == "store" and isinstance(n.func, ast.Attribute)):
            continue
        ptr = n.args[0] if n.args else next((k.value for k in n.keywords if k.arg in ("pointer", "ptr")), None)
        val = n.args[1] if len(n.args) > 1 else next((k.value for k in n.keywords if k.arg == "value"), None)
        if ptr is None or not isinstance(val, ast.Call) or _call_name(val) not in ("to", "cast"):
            continue
        if any(k.arg == "bitcast" for k in val.keywords):
            continue
        ty = val.args[0] if _call_name(val) == "to" and val.args else val.args[1] if len(val.args) > 1 else \
            next((k.value for k in val.keywords if k.arg == "dtype"), None)
        dt = _STORE_TYPES.get(_dtype_of(fn, ty) or "")
        p = pick(fn, fn.roots(ptr), ptr) if dt else None
        if p and dt:
            out.setdefault(p, dt)
    return out
