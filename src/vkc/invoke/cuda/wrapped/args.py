"""One traced op call as the program's storages, stand-in tensors and host-function arguments: :func:`bind`.

Tensors that view one storage of the trace (``TensorArg.base``: a fused qkv row's query and key, a KV
cache's views) become views into one device allocation, as large as the farthest element any of
them reaches (not the storage's traced size: vLLM's fused-MoE workspace is a 17 GB storage of which a
call views a few MB), each with the call's dtype, sizes, strides and storage offset.  Arguments are
matched to the host function's parameters by schema position; an argument the caller left out takes
the schema's default.  Every refusal (:class:`~.host.WrapRefused`) names the argument and the reason.
"""
from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from vkc.invoke.cuda.literals import cpp_int, cpp_str
from vkc.modeltrace.contents import Contents
from vkc.modeltrace.records import ScalarArg, TensorArg, TracedEvent

from .fills import StorageFill, scalar_type, storage_fill
from .host import WrapRefused
from .schema import SchemaArg

__all__ = ["LIVE_LIMIT", "ArgSpec", "Bound", "StorageSpec", "ViewSpec", "bind"]

LIVE_LIMIT = 100 << 30        # bytes a program may allocate for the call's tensors (an H200 has 141 GB)
_ALIGN = 256


@dataclass(frozen=True)
class StorageSpec:
    name: str                 # C++ variable ("s0")
    base: str                 # the trace's storage id ("s140")
    nbytes: int
    fill: StorageFill
    role: str                 # "in" | "out" | "inout"
    kv: bool                  # a KV cache (written at the slots it indexes only)


@dataclass(frozen=True)
class ViewSpec:
    name: str                 # C++ variable ("t0")
    storage: str
    scalar_type: str          # "BFloat16"
    sizes: tuple[int, ...]
    strides: tuple[int, ...]
    offset: int
    label: str                # "input bfloat16[64, 4096] stride [4096, 1] offset 0"


@dataclass(frozen=True)
class ArgSpec:
    name: str                 # C++ variable ("a0")
    ctype: str                # the host parameter's type, as declared
    init: str                 # C++ initializer
    pre: tuple[str, ...]      # statements it needs first (a list's vector)
    label: str                # "epsilon = 1e-05 (traced)", "scatter_idx = None (schema default)"


@dataclass(frozen=True)
class Bound:
    storages: tuple[StorageSpec, ...]
    views: tuple[ViewSpec, ...]
    args: tuple[ArgSpec, ...]
    bytes_moved: int
    dtype: str                # element type of the largest floating-point argument ("c10::BFloat16")


def _extent(t: TensorArg) -> int:
    """Bytes from the storage's start to one past the farthest element ``t`` reaches."""
    if any(s < 0 for s in t.stride):
        raise WrapRefused(f"a tensor with negative strides {list(t.stride)}")
    if math.prod(t.shape) == 0:
        return t.offset * t.itemsize
    last = t.offset + sum((n - 1) * s for n, s in zip(t.shape, t.stride))
    return (last + 1) * t.itemsize


def _is_kv(t: TensorArg, kv_bases: frozenset[str]) -> bool:
    return t.base in kv_bases or t.producer.startswith("kv_cache:") or t.origin.startswith("kv_cache:")


def _tensors(ev: TracedEvent, schema: tuple[SchemaArg, ...]) -> list[tuple[str, TensorArg, bool]]:
    """(argument name, tensor, written) of every tensor the call passes, in schema order."""
    written = {a.name: a.written for a in schema}
    out = []
    for name, a in ev.args:
        items = a if isinstance(a, tuple) else (a,)
        out += [(name, t, written.get(name, False)) for t in items if isinstance(t, TensorArg)]
    return out


def _storages(ev: TracedEvent, schema: tuple[SchemaArg, ...], known: Mapping[str, Contents], facts: Any,
              kv_bases: frozenset[str]) -> dict[str, StorageSpec]:
    found: dict[str, list[tuple[str, TensorArg, bool]]] = {}
    for name, t, w in _tensors(ev, schema):
        found.setdefault(t.base, []).append((name, t, w))
    out: dict[str, StorageSpec] = {}
    for i, (base, views) in enumerate(found.items()):
        nbytes = max(_extent(t) for _n, t, _w in views)
        nbytes = -(-max(nbytes, 1) // _ALIGN) * _ALIGN
        first, t0, w0 = views[0]
        var = f"s{i}"
        try:
            fill = storage_fill(var, first, t0, w0, ev, known, facts)
        except WrapRefused as e:
            raise WrapRefused(e.message if e.message.startswith(f"{first}:") else f"{first}: {e.message}") from None
        written = [t for _n, t, w in views if w]
        role = ("out" if all(t.producer == "alloc" for t in written) else "inout") if written else "in"
        out[base] = StorageSpec(var, base, nbytes, fill, role, any(_is_kv(t, kv_bases) for _n, t, _w in views))
    total = sum(s.nbytes for s in out.values())
    if total > LIVE_LIMIT:
        raise WrapRefused(f"the call's tensors need {total / 2**30:.1f} GiB, over the {LIVE_LIMIT >> 30} GiB a "
                          "program may allocate")
    return out


def _float_lit(v: float) -> str:
    if math.isnan(v):
        return "std::numeric_limits<double>::quiet_NaN()"
    if math.isinf(v):
        return ("-" if v < 0 else "") + "std::numeric_limits<double>::infinity()"
    s = repr(float(v))
    return s if ("." in s or "e" in s) else s + ".0"


_DEFAULT_STR = re.compile(r"""^(['"])(.*)\1$""")


def _default_value(a: SchemaArg) -> Any:
    """The schema default as a Python value (None for ``None``)."""
    text = (a.default or "").strip()
    if text == "None":
        return None
    if text in ("True", "False"):
        return text == "True"
    m = _DEFAULT_STR.match(text)
    if m:
        return m.group(2)
    if text.startswith("["):
        inner = text.strip("[]").strip()
        return [float(x) if a.base.startswith("float") else int(x) for x in inner.split(",")] if inner else []
    try:
        return int(text) if a.base in ("int", "SymInt") else float(text)
    except ValueError:
        raise WrapRefused(f"cannot read the schema default {a.name}={text}") from None


def _scalar(a: SchemaArg, v: Any) -> str:
    base = a.base
    if isinstance(v, dict) and "__torch_dtype__" in v:
        return f"torch::headeronly::ScalarType::{scalar_type(str(v['__torch_dtype__']))}"
    if base == "ScalarType" and isinstance(v, str):
        return f"torch::headeronly::ScalarType::{scalar_type(v.removeprefix('torch.'))}"
    if base == "bool" or isinstance(v, bool):
        return "true" if v else "false"
    if base == "str":
        return f"std::string({cpp_str(str(v))})"
    if base in ("int", "SymInt") and isinstance(v, int):
        return cpp_int(v) if abs(v) < 2**31 else f"(int64_t){v}LL"
    if base == "float" and isinstance(v, (int, float)):
        return _float_lit(float(v))
    raise WrapRefused(f"argument {a.name} ({a.type}) = {v!r}: no C++ value for it")


def _arg(i: int, a: SchemaArg, ptype: str, value: Any, traced: bool,
         views: Mapping[int, str]) -> ArgSpec:
    var = f"a{i}"
    how = "traced" if traced else "schema default"
    if value is None:
        if not a.optional and a.default != "None":
            raise WrapRefused(f"argument {a.name} ({a.type}) is None")
        return ArgSpec(var, ptype, "std::nullopt", (), f"{a.name} = None ({how})")
    if isinstance(value, TensorArg):
        return ArgSpec(var, ptype, views[id(value)], (), f"{a.name} = {views[id(value)]} ({how})")
    if isinstance(value, tuple) and all(isinstance(t, TensorArg) for t in value):
        items = ", ".join(views[id(t)] for t in value)
        return ArgSpec(var, ptype, f"l{i}", (f"std::vector<torch::stable::Tensor> l{i} = {{{items}}};",),
                       f"{a.name} = [{items}] ({how})")
    if isinstance(value, (list, tuple)):
        elem = "double" if a.base.startswith("float") else "int64_t"
        one = SchemaArg(a.name, a.base.split("[", 1)[0], None, False)
        items = ", ".join(_scalar(one, x) for x in value)
        return ArgSpec(var, ptype, f"l{i}", (f"std::vector<{elem}> l{i} = {{{items}}};",),
                       f"{a.name} = [{items}] ({how})")
    return ArgSpec(var, ptype, _scalar(a, value), (), f"{a.name} = {value!r} ({how})")


def _views(ev: TracedEvent, schema: tuple[SchemaArg, ...], storages: Mapping[str, StorageSpec]
           ) -> tuple[list[ViewSpec], dict[int, str]]:
    out: list[ViewSpec] = []
    names: dict[int, str] = {}
    for name, t, _w in _tensors(ev, schema):
        var = f"t{len(out)}"
        names[id(t)] = var
        out.append(ViewSpec(var, storages[t.base].name, scalar_type(t.dtype), tuple(t.shape), tuple(t.stride),
                            t.offset, f"{name} {t.dtype}{list(t.shape)} stride {list(t.stride)} offset {t.offset}"))
    return out, names


def bind(ev: TracedEvent, schema: tuple[SchemaArg, ...], params: tuple[tuple[str, str], ...], *,
         known: Mapping[str, Contents], facts: Any = None, kv_bases: frozenset[str] = frozenset()) -> Bound:
    """The program's records for the call ``ev`` of an op with ``schema`` and host ``params``."""
    if len(schema) != len(params):
        raise WrapRefused(f"the schema has {len(schema)} arguments, the host function {len(params)} parameters")
    passed = dict(ev.args)
    unknown = sorted(set(passed) - {a.name for a in schema})
    if unknown:
        raise WrapRefused(f"the call passes {', '.join(unknown)}, which the schema does not name")
    storages = _storages(ev, schema, known, facts, kv_bases)
    views, names = _views(ev, schema, storages)
    args = []
    for i, (a, (ptype, _pname)) in enumerate(zip(schema, params)):
        if a.name in passed:
            raw = passed[a.name]
            value = raw.value if isinstance(raw, ScalarArg) else raw
            args.append(_arg(i, a, ptype, value, True, names))
        elif a.default is not None:
            args.append(_arg(i, a, ptype, _default_value(a), False, names))
        else:
            raise WrapRefused(f"the call does not pass {a.name}, which has no default")
    return Bound(tuple(storages.values()), tuple(views), tuple(args), *_bytes(ev, schema, storages))


def _bytes(ev: TracedEvent, schema: tuple[SchemaArg, ...], storages: Mapping[str, StorageSpec]) -> tuple[int, str]:
    total, largest, dtype = 0, -1, "none"
    from .fills import cxx_elem

    for _name, t, w in _tensors(ev, schema):
        st = storages[t.base]
        n = math.prod(t.shape)
        if not st.kv:
            total += n * t.itemsize * (2 if w and t.producer != "alloc" else 1)
        if t.dtype.startswith(("float", "bfloat")) and n > largest:
            largest, dtype = n, cxx_elem(t.dtype)
    return total, dtype
