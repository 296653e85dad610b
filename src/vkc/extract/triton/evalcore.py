"""Shared primitives of the static evaluator.

Operator and builtin tables, unwrapping/wrapping of symbolic values, importing real
external objects (``materialize``) and the stand-ins for vLLM runtime objects
(``DeviceCapability``, enum members).
"""
from __future__ import annotations

import ast
import builtins
import importlib
import operator

from vkc.extract.triton import platform_profile as P
from vkc.extract.triton import torchinfo
from vkc.extract.triton.values import Constexpr, ExtRef, Opaque, Unresolved

_BIN = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
        ast.Div: operator.truediv, ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod,
        ast.Pow: operator.pow, ast.LShift: operator.lshift, ast.RShift: operator.rshift,
        ast.BitOr: operator.or_, ast.BitAnd: operator.and_, ast.BitXor: operator.xor}
_CMP = {ast.Eq: operator.eq, ast.NotEq: operator.ne, ast.Lt: operator.lt, ast.LtE: operator.le,
        ast.Gt: operator.gt, ast.GtE: operator.ge, ast.In: lambda a, b: a in b,
        ast.NotIn: lambda a, b: a not in b, ast.Is: operator.is_, ast.IsNot: operator.is_not}
_BUILTINS = {n: getattr(builtins, n) for n in (
    "int", "float", "bool", "str", "len", "min", "max", "abs", "round", "range", "list", "tuple",
    "dict", "set", "sorted", "zip", "enumerate", "any", "all", "sum", "hasattr", "getattr",
    "isinstance", "reversed", "pow", "divmod", "frozenset", "map", "filter")}
_BUILTIN_CONSTS = {"True": True, "False": False, "None": None}
_CALLABLE_EXT = ("math.", "torch.finfo", "torch.iinfo", "triton.cdiv", "triton.next_power_of_2",
                 "packaging.version.parse", "packaging.version.Version", "functools.reduce",
                 "operator.", "itertools.product")
_CONFIG_DEFAULTS = {"num_warps": 4, "num_stages": 3, "num_ctas": 1, "maxnreg": None, "pre_hook": None}
_CONTAINER_METHODS = {"append", "extend", "get", "items", "keys", "values", "upper", "lower",
                      "format", "startswith", "endswith", "split", "join", "replace", "strip",
                      "index", "count", "insert", "update", "copy"}

CONSTEXPR_PATHS = {"triton.language.constexpr", "triton.language.core.constexpr",
                   "triton.experimental.gluon.language.constexpr"}
JIT_PATHS = {"triton.jit", "triton.runtime.jit", "triton.runtime.jit.jit", "triton.experimental.gluon.jit",
             "triton.experimental.gluon._runtime.jit", "triton.language.core.constexpr_function",
             "triton.constexpr_function"}


class DeviceCapability(tuple):
    """vLLM's ``DeviceCapability(major, minor)`` named tuple."""

    def __new__(cls, major, minor):
        return super().__new__(cls, (major, minor))

    major = property(lambda self: self[0])
    minor = property(lambda self: self[1])

    def to_int(self) -> int:
        return self[0] * 10 + self[1]

    def as_version_str(self) -> str:
        return f"{self[0]}.{self[1]}"


class _EnumMember:
    def __init__(self, name, value):
        self.name, self.value = name, value

    def __eq__(self, o):
        return isinstance(o, _EnumMember) and o.value == self.value

    def __hash__(self):
        return hash(self.value)


def _assign(tgt, v, env):
    if isinstance(tgt, ast.Name):
        env[tgt.id] = v
    elif isinstance(tgt, (ast.Tuple, ast.List)):
        for t, x in zip(tgt.elts, _plain(v)):
            _assign(t, x, env)
    else:
        raise Unresolved("unsupported assignment target")


def _plain(v):
    if isinstance(v, Opaque):
        return v.obj
    if isinstance(v, Constexpr):
        return v.value
    if isinstance(v, _EnumMember):
        return v.value
    if isinstance(v, ExtRef):
        return materialize(v.path)
    return v


def _wrap(v):
    if v is None or isinstance(v, (bool, int, float, str, tuple, list, dict, set)):
        return v
    return Opaque(v)


def materialize(path: str):
    """Import the real object behind an external dotted path (torch, triton, math...)."""
    if path in P.EXTERNAL_ATTRS:
        return P.EXTERNAL_ATTRS[path]
    known, obj = torchinfo.resolve(path)      # torch dtypes / finfo / iinfo without importing torch
    if known:
        return obj
    parts = path.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except Exception:  # noqa: BLE001, S112 - a module that does not import is not the path
            continue
        try:
            for p in parts[i:]:
                obj = getattr(obj, p)
            return obj
        except AttributeError:
            break
    raise Unresolved(f"cannot import {path}")
