"""Static parameter typing of a Triton kernel from its source (``ast`` only).

For the generic (untraced) invocation: which parameters are pointers (used as the base of
``tl.load``/``tl.store``/atomics/``make_block_ptr``/``make_tensor_descriptor``, directly, through
local pointer arithmetic, or through a jit helper's pointer parameter), which pointers hold
indices (their loaded values feed pointer offsets, ``range``, bit operations or an int cast),
which scalars are floats, and which constexprs must be powers of two, dtypes, flags or strings.
"""
from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field
from typing import Any

from vkc.invoke.triton.untraced.cxusage import constexpr_usage
from vkc.invoke.triton.untraced.kernelast import (
    _evidence,
    _index_names,
    _Module,
    _tl_short,
)
from vkc.invoke.triton.untraced.ptrroles import none_params

_INDEX_PTR = re.compile(r"idx|ids$|_ids|indices|index|indptr|offsets|_loc|loc$|table|mapping|lens|_len|seqlen|"
                        r"cu_|positions|_pos|^pos|count|slot|num_tokens|token_ids|expert_id|lora_id|lock|sem|"
                        r"counter|flag|barrier|bitmatrix|bitmask|start|_end|histogram|ranks|map$|perm|"
                        r"topk_id|rank|sorted|gather|scatter|ptr_to_ptr|qweight|qzeros|packed", re.IGNORECASE)
_SCALE_PTR = re.compile(r"scale|_s_ptr|amax|norm_factor|weights?_scale|bias_fp32|fp32|float32", re.IGNORECASE)
_FLOAT_SCALAR = re.compile(r"eps|epsilon|scale|alpha|beta|gamma|temperature|temp$|softcap|theta|sigma|"
                           r"^lr$|factor|ratio|tau|_value$|logit_cap|threshold|smoothing|mu$|p$|prob|penalty|"
                           r"fp32|float|min_val|max_val|clamp", re.IGNORECASE)


@dataclass
class Param:
    name: str
    annotation: str
    constexpr: bool
    default: Any = None
    has_default: bool = False
    kind: str = "int"            # "ptr" | "int" | "float" | "constexpr" | "none" (an optional descriptor)
    dtype: str | None = None     # torch dtype name, pointers only
    pow2: bool = False           # constexpr used as a block shape
    dtype_cx: bool = False       # constexpr used as a dtype
    flag: bool = False           # constexpr used as a condition
    unroll: bool = False         # constexpr bounds a tl.static_range (unrolled)
    compared: list = field(default_factory=list)   # constants a constexpr is compared with
    why: str = ""


def analyze(source: str, entry: str) -> list[Param]:
    """Typed parameters of ``entry`` (a qualname; the last part names the function)."""
    mod = _Module(source)
    mod.solve()
    fn = mod.fns.get(entry.split(".")[-1])
    if fn is None:
        return []
    a = fn.node.args
    plist = a.posonlyargs + a.args
    defaults = [None] * (len(plist) - len(a.defaults)) + list(a.defaults)
    ev = _evidence(mod)
    index_names = _index_names(mod, fn)
    fev = ev[fn.node.name]
    int_ptrs = {p for p, k in fev.items() if k == "int32"}
    addr_ptrs = {p for p, k in fev.items() if k == "int64"}
    usage = constexpr_usage(fn)
    nones = none_params(fn)
    out = []
    for p, d in zip(plist, defaults):
        ann = fn.ann[p.arg]
        par = Param(p.arg, ann, "constexpr" in ann)
        if d is not None:
            try:
                par.default, par.has_default = ast.literal_eval(d), True
            except ValueError:
                txt = ast.unparse(d)
                if txt.startswith(("tl.", "triton.language.")):
                    par.default, par.has_default = {"__tl_dtype__": _tl_short(txt.split(".")[-1])}, True
        name = p.arg
        if par.constexpr:
            par.kind = "constexpr"
            u = usage.get(name, {})
            par.pow2, par.dtype_cx, par.flag = u.get("pow2", False), u.get("dtype", False), u.get("flag", False)
            par.unroll = u.get("unroll", False)
            par.compared = u.get("compared", [])
        elif name in nones:
            par.kind, par.why = "none", "checked against None, used as a tensor descriptor"
        elif name in fn.ptrs:
            par.kind = "ptr"
            if name in addr_ptrs:
                par.dtype, par.why = "int64", "holds addresses (cast to a pointer)"
            elif fev.get(name, "").startswith(("uint8", "float8", "int8", "int16")):
                par.dtype, par.why = fev[name], "8-bit data (bitcast / dot_scaled operand / stored cast)"
            elif name in int_ptrs or _INDEX_PTR.search(name):
                par.dtype, par.why = ("int32", "index use" if name in int_ptrs else "index-like name")
            elif _SCALE_PTR.search(name):
                par.dtype, par.why = "float32", "scale-like name"
            elif fev.get(name) == "intdata":
                par.dtype, par.why = "int32", "integer data (bit operations)"
            else:
                par.dtype = "bfloat16"
        elif "float" in ann or (ann == "" and _FLOAT_SCALAR.search(name) and name not in index_names) or \
                (par.has_default and isinstance(par.default, float)):
            par.kind = "float"
        else:
            par.kind = "int"
        out.append(par)
    return out


__all__ = ["Param", "analyze"]
