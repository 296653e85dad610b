"""What stays free after binding a kernel's template arguments: defaults (recorded as
choices), the dtype an instantiation is for, and namespace qualification for global scope."""
from __future__ import annotations

import re

from vkc.cxx.text import tparam_name
from vkc.extract.cuda.resolve import Cand, Ctx, tparam_default

__all__ = ["complete", "dtype_of", "qualify"]

# C++ spellings of a dispatched scalar type -> the torch dtype name
_DTYPE_OF = [(re.compile(r"BFloat16|bfloat16|bf16"), "bfloat16"),
             (re.compile(r"^(c10::Half|torch::headeronly::Half|at::Half|__half|half|Half)$"), "float16"),
             (re.compile(r"^float$"), "float32")]


def dtype_of(args: list[str], tparams: list[str]) -> str | None:
    for a, p in zip(args, tparams):
        if re.match(r"(typename|class)\b", p):
            for pat, dt in _DTYPE_OF:
                if pat.search(a):
                    return dt
    return None


def complete(ctx: Ctx, cand: Cand, tparams: list[str], bf16: str) -> Cand:
    """Fill what stays free with defaults (recorded in ``choices``)."""
    args = list(cand.args) + [None] * (len(tparams) - len(cand.args))   # type: ignore[list-item]
    names = [tparam_name(p) for p in tparams]
    for i, p in enumerate(tparams):
        a = args[i]
        if a is not None and not ctx.free([a]):
            continue
        dflt = tparam_default(p)
        if a is None and dflt is not None:
            args[i] = None
            continue
        if re.match(r"(typename|class)\b", p):
            val = _typename_default(names[i], bf16)
        elif dflt is not None and not (ctx.free([dflt]) - set(names)):
            val = dflt
        elif re.match(r"bool\b", p):
            val = "false"
        elif _is_enum_param(p):
            val = f"static_cast<{_param_type(p)}>(0)"
        else:
            val = _int_guess(a or names[i])
        cand.defaults += 1
        cand.choices[names[i]] = {"chosen": val, "cases": [val], "default": True,
                                  "was": a if a is not None else "(not given)"}
        args[i] = val
    while args and args[-1] is None:
        args.pop()
    for i, a in enumerate(args):
        if a is None:
            args[i] = tparam_default(tparams[i]) or "0"
    # a non-type argument with a comparison/ternary must be parenthesised in <...>
    for i, a in enumerate(args):
        if i < len(tparams) and not re.match(r"(typename|class)\b", tparams[i]) and a and (
                "?" in a or re.search(r"\s[<>]=?\s", a)) and not a.startswith("("):
            args[i] = f"({a})"
    cand.args = [a for a in args if a is not None]  # none is left: each was set above
    return cand


_INTEGRAL = re.compile(r"^(const\s+)?(unsigned|signed|int|long|short|char|size_t|u?int\d+_t|uint|bool|"
                       r"unsigned\s+int|long\s+long|std::size_t|std::u?int\d+_t)$")


def _param_type(p: str) -> str:
    p = re.sub(r"\s*=.*$", "", p, flags=re.S).strip()
    return re.sub(r"\s*\b[A-Za-z_]\w*$", "", p).strip()


def _is_enum_param(p: str) -> bool:
    t = _param_type(p)
    return bool(t) and "(" not in t and "*" not in t and not _INTEGRAL.match(t)


def _typename_default(name: str, bf16: str) -> str:
    """Default for an unbound type parameter, by its name (index, scale, fp8, else bf16)."""
    n = name.lower()
    if re.search(r"ind|idx|index", n):
        return "int32_t"
    if "scale" in n:
        return "float"
    if "fp8" in n or "quant" in n:
        return "c10::Float8_e4m3fn"
    return bf16


def _int_guess(expr: str) -> str:
    nums = re.findall(r"\b\d+\b", expr)
    return nums[0] if nums else "1"


def qualify(ctx: Ctx | None, args: list[str], ns_of: dict[str, str]) -> list[str]:
    """Prefix names defined in a namespace of the unit with that namespace (the
    instantiation is written at global scope)."""
    out = []
    for a in args:
        def rep(m: re.Match[str]) -> str:
            name = m.group(1)
            ns = ns_of.get(name)
            return f"{ns}::{name}" if ns else name
        out.append(re.sub(r"(?<![\w.])(?<!::)([A-Za-z_]\w*)\b(?=\s*(?:::|<|\b))", rep, a))
    return out
