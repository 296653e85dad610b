"""Contents of the generic launch's index buffers: a range derived from what they index (issue 12).

The generic path sizes every pointer as one flat buffer of ``numel`` elements, so whatever an index
selects is a buffer of that extent.  The kernel's own use says how far an index may reach: every
memory operation whose offset takes a value loaded from the index pointer (through locals,
``//``, ``%``, ...) multiplies it by a factor -- a stride scalar, a constexpr or a literal -- and
``reach = numel // (4 * largest factor)`` keeps ``index * factor`` plus the row's own offsets inside
the indexed buffer (an index that addresses nothing, a length or a bound, is held to the largest
integer scalar instead).  Then, by the parameter's name (the conventions of vLLM's callers, as the
model-traced rules of ``invoke/triton/modeltraced/inits.py`` reproduce them):

* cumulative offsets (``cu_seqlens``, ``*start_loc``, ``*_starts``, ``*offsets``, ``indptr``):
  ``("arange", 0, seg)`` -- sorted, equal segments, ``seg * (programs + 1) <= reach``;
* lengths (``seq_lens``, ``*_len``, ``lengths``): ``("const", seg)``, the same segment;
* block tables: ``("block_table", reach)``; slot mappings: ``("slot_mapping", reach)``;
* expert ids: ``("randint", 0, min(num_experts, reach))``;
* any other index: ``("randint", 0, reach)``.

Pointer tables (int64 addresses, ``*_ptrs``, or values the kernel casts to pointers) get
``("pointer_table", POINTER_TARGETS, numel * 8)``: real allocations, each as large as a flat buffer
of ``numel`` 8-byte elements (so what the kernel reaches through an entry stays inside it); the
example's notes say so (how many tables and targets vLLM's caller builds is not known here).
"""
from __future__ import annotations

import ast
import re
from dataclasses import replace

from vkc.invoke.triton.plan import InitSpec, LaunchConfig, Scalar
from vkc.invoke.triton.untraced.kernelast import _address_ptrs, _Fn, _Module, _pick
from vkc.invoke.triton.untraced.ptrroles import loaded_into
from vkc.invoke.triton.untraced.sigtypes import Param

__all__ = ["index_inits", "index_kind", "reaches"]

_INT = ("int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64")
_MEM_OPS = {"load", "store", "atomic_add", "atomic_max", "atomic_min", "atomic_cas", "atomic_xchg", "atomic_and",
            "atomic_or", "atomic_xor", "prefetch"}
_POINTER_NAME = re.compile(r"(ptrs|pointers|ptr_table|ptr_array|addrs|addresses)(_ptr)?$")
_INDEX_NAME = re.compile(
    r"(^|_)(idx|idxs|index|indices|ids?|block_tables?|tables?|slots?|slot_mapping|mapping|loc|locs|offsets?|"
    r"indptr|lens|seq_lens|seqlens?|lengths?|starts?|positions?|pos|map|perm)$")
_CUMULATIVE = re.compile(r"(^|_)(cu|cumsum)(_|$)|start_locs?$|(^|_)starts?$|offsets?$|indptr$")
_LENGTHS = re.compile(r"(^|_)(lens|seq_lens|seqlens?|lengths?|context_lens|len)$")
_EXPERT = re.compile(r"expert_ids?$|topk_ids?$|topk_idx$|(^|_)experts?$")
_TABLE = re.compile(r"block_tables?$|page_tables?$|(^|_)block_ids?$|req_to_tokens?$")
_SLOTS = re.compile(r"slot_mapping$|(^|_)slots?$|slot_ids?$|out_cache_loc$")
# synchronisation state and packed data: zeros are their valid start, whatever their use
_STATE = re.compile(r"lock|sem|counter|barrier|flag|count|histogram|bitmask|mask|qweight|qzeros|packed|done|ready")
SEG_MAX = 128      # numel * seg stays inside int32 for the FULL numel (1 << 24)
POINTER_TARGETS = 2   # distinct allocations a synthesized pointer table points at


def _stem(name: str) -> str:
    n = name.lower()
    return n[:-4] if n.endswith("_ptr") and not _POINTER_NAME.search(n) else n


def index_kind(p: Param, offset: bool = True, addresses: bool = False) -> str | None:
    """``cumulative`` / ``lengths`` / ``table`` / ``slots`` / ``experts`` / ``index`` for an index-like
    pointer (by its name, or by its use: ``offset``, its loaded values address memory), ``pointers`` for
    a table of addresses (``addresses``: its loaded values are cast to pointers), else None (data;
    integer data only in bit operations stays as it is)."""
    s = _stem(p.name)
    if addresses or _POINTER_NAME.search(s):
        return "pointers"
    if not _INDEX_NAME.search(s) and (_STATE.search(s) or p.why not in ("index use", "index-like name") or not offset):
        return None
    for kind, pat in (("cumulative", _CUMULATIVE), ("lengths", _LENGTHS), ("table", _TABLE), ("slots", _SLOTS),
                      ("experts", _EXPERT)):
        if pat.search(s):
            return kind
    return "index"


def _factor(e: ast.expr, values: dict[str, int]) -> int | None:
    if isinstance(e, ast.Constant) and isinstance(e.value, int) and not isinstance(e.value, bool):
        return abs(e.value)
    if isinstance(e, ast.Name) and isinstance(values.get(e.id), int):
        return abs(values[e.id])
    if isinstance(e, ast.BinOp) and isinstance(e.op, (ast.Mult, ast.Add)):
        a, b = _factor(e.left, values), _factor(e.right, values)
        if a is not None and b is not None:
            return a * b if isinstance(e.op, ast.Mult) else a + b
    return None


def _mults(fn: _Fn, e: ast.expr) -> list[ast.BinOp]:
    """The products inside ``e`` and inside the local definitions it reads (transitively)."""
    out: list[ast.BinOp] = []
    todo, seen = [e], set()
    while todo:
        for m in ast.walk(todo.pop()):
            if isinstance(m, ast.BinOp) and isinstance(m.op, ast.Mult):
                out.append(m)
            elif isinstance(m, ast.Name) and m.id not in seen and m.id in fn.assigns:
                seen.add(m.id)
                todo += fn.assigns[m.id]
    return out


def _factors(fn: _Fn, values: dict[str, int], fallback: int) -> dict[str, int]:
    """Pointer param -> the largest factor its loaded values are multiplied by in a memory op's offset."""
    out: dict[str, int] = {}
    for n in ast.walk(fn.node):
        if not (isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr in _MEM_OPS):
            continue
        ptr = n.args[0] if n.args else next((k.value for k in n.keywords if k.arg in ("pointer", "ptr")), None)
        if ptr is None:
            continue
        for p in loaded_into(fn, ptr, _pick):            # used as an offset, at least unscaled
            out[p] = max(out.get(p, 1), 1)
        for m in _mults(fn, ptr):
            for side, other in ((m.left, m.right), (m.right, m.left)):
                for p in loaded_into(fn, side, _pick):
                    f = _factor(other, values)
                    out[p] = max(out.get(p, 1), f if f is not None else fallback)
    return out


def _entry_fn(source: str, entry: str) -> _Fn | None:
    try:
        mod = _Module(source)
        mod.solve()
    except (SyntaxError, RecursionError):
        return None
    return mod.fns.get(entry.split(".")[-1])


def reaches(source: str, entry: str, cfg: LaunchConfig, numel: int) -> dict[str, int]:
    """Pointer param -> how far an index loaded from it may reach (at least 1); ``"*"``: the default
    for an index that addresses nothing."""
    values: dict[str, int] = {k: v for k, v in cfg.constexprs.items() if isinstance(v, int) and not isinstance(v, bool)}
    values.update({a.param: a.value for a in cfg.args if isinstance(a, Scalar) and isinstance(a.value, int)
                   and not isinstance(a.value, bool)})
    largest = max([1, *(abs(v) for v in values.values())])
    out = {"*": max(1, numel // (4 * largest))}
    fn = _entry_fn(source, entry)
    if fn is None:
        return out
    for p, f in _factors(fn, values, largest).items():
        out[p] = max(1, numel // (4 * max(1, f)))
    return out


def _init(kind: str, far: int, programs: int, num_experts: int | None) -> InitSpec:
    seg = max(0, min(SEG_MAX, far // (programs + 1)))
    if kind == "cumulative":
        return InitSpec("arange", (0, seg))
    if kind == "lengths":
        return InitSpec("const", (seg,))
    if kind == "table":
        return InitSpec("block_table", (far,))
    if kind == "slots":
        return InitSpec("slot_mapping", (far,))
    if kind == "experts":
        return InitSpec("randint", (0, max(1, min(num_experts or 1, far))))
    return InitSpec("randint", (0, far))


def index_inits(source: str, entry: str, params: list[Param], cfg: LaunchConfig, num_experts: int | None,
                notes: list[str] | None = None) -> LaunchConfig:
    """``cfg`` (flat buffers of ``shapes["numel_per_pointer"]`` elements) with every zero-filled integer
    index buffer filled from its range."""
    numel = cfg.shapes.get("numel_per_pointer")
    if not isinstance(numel, int) or not any(b.dtype in _INT and b.init.kind == "zeros" for b in cfg.buffers):
        return cfg
    far = reaches(source, entry, cfg, numel)
    fn = _entry_fn(source, entry)
    addrs = _address_ptrs(fn) if fn is not None else {p.name for p in params if p.why.startswith("holds addresses")}
    kinds = {p.name: k for p in params if (k := index_kind(p, p.name in far, p.name in addrs)) is not None}
    programs = max(cfg.grid) if cfg.grid else 1
    bufs, tables = [], []
    for b in cfg.buffers:
        kind = kinds.get(b.name)
        if kind is None or b.dtype not in _INT or b.init.kind != "zeros":
            bufs.append(b)
        elif kind == "pointers":
            tables.append(b.name)
            bufs.append(replace(b, init=InitSpec("pointer_table", (POINTER_TARGETS, numel * 8))))
        else:
            bufs.append(replace(b, init=_init(kind, far.get(b.name, far["*"]), programs, num_experts)))
    if tables and notes is not None:
        notes.append(f"pointer tables {tables} hold the addresses of {POINTER_TARGETS} zero-filled allocations of "
                     f"{numel * 8} bytes each (synthesized: not the tensors vLLM's caller points them at)")
    return replace(cfg, buffers=tuple(bufs))
