"""Generic fallback for kernels without a recipe: untraced, compile-only quality.

Pointer parameters become buffers of a fixed small size (zero-filled data; index-like ones
ranged and pointer tables of real addresses, :mod:`.contents`), integer
scalars are bound from model dims by name, template arguments come from the
extractor's ``instantiations`` (see names.pick_instantiation), and the
grid/block come from the launch site text when all its identifiers are bound.
Every name declared in ``main()`` is unique (names.Names); the kernel's
namespaces are opened when its signature spells their types unqualified.  Entry (via the
package): :func:`vkc.invoke.cuda.untraced.build_untraced`.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from vkc.cxx.text import split_top
from vkc.errors import InvocationError
from vkc.invoke.cuda.context import Ctx
from vkc.invoke.cuda.literals import cpp_float, cpp_int
from vkc.invoke.cuda.plan import Buffer, Plan, Scale, Stmt, zero
from vkc.invoke.cuda.untraced.contents import index_fill, index_kind, is_pointer_table, pointer_table, reach
from vkc.invoke.cuda.untraced.names import (
    Names,
    namespace_directives,
    needs_namespaces,
    pick_instantiation,
)

GENERIC_ELEMS = 1 << 20
GENERIC_TOKENS = 64
_INT_TYPES = {"int", "int32_t", "int64_t", "long", "long long", "unsigned", "unsigned int", "uint32_t",
              "uint64_t", "size_t", "int16_t", "uint16_t", "int8_t", "uint8_t", "short", "unsigned long"}
_FLOAT_TYPES = {"float", "double"}
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_:]*")
_CPP_WORDS = {"dim3", "std", "min", "max", "std::min", "std::max", "sizeof", "true", "false", "int",
              "size_t", "static_cast", "div_ceil", "cuda_utils::ceil_div"}


def _clean_type(t: str) -> str:
    t = re.sub(r"\b(const|volatile|__restrict__|__restrict|restrict)\b", " ", t).replace("&", " ")
    return " ".join(t.split()).replace(" *", "*").replace("* ", "*")


def _dim_for(name: str, c: Ctx, tokens: str) -> int | str:
    d = c.dims
    n = name.lower()
    table: list[tuple[str, int | str | None]] = [
        ("hidden", d.hidden), ("kv_head", d.h_kv), ("num_kv", d.h_kv), ("head_size", d.head_dim),
        ("head_dim", d.head_dim), ("rot_dim", d.head_dim), ("num_heads", d.h_q), ("expert", d.num_experts),
        ("topk", d.topk), ("top_k", d.topk), ("vocab", d.vocab), ("block_size", 16), ("d_model", d.hidden),
        ("tokens", tokens), ("batch", tokens), ("num_rows", tokens), ("stride", d.hidden),
    ]
    for key, val in table:
        if key in n and val is not None:
            return val
    return 1


def build(c: Ctx) -> Plan:
    """The untraced plan: placeholder buffers, scalars bound by name, the launch site's grid/block."""
    f = c.extraction.facts
    k = c.extraction.kernel
    params = list(f.get("params") or [])
    if not params:
        raise InvocationError(f"no recipe for {c.kernel} and the extractor gave no parameter list",
                              hint="the generic fallback needs Extraction.facts['params']")
    tparams = list(f.get("template_params") or k.template_params or ())
    launch = f.get("launch") or {}
    targs_text, targs_from = _template_args_text(f, c.dtype)
    targs = split_top(targs_text, angles=True) if targs_text else []
    if tparams and len(targs) < len([p for p in tparams if "=" not in p]):
        raise InvocationError(f"no recipe for {c.kernel} and no template arguments to instantiate it with",
                              hint="the extractor's facts need 'instantiations' for this dtype")
    names = Names()
    consts, tok = _preamble(names, params, tparams, k.qualname or "")
    bound: set[str] = {tok} if tok == "num_tokens" else set()
    consts += _template_consts(names, tparams, targs)
    buffers, args = _bind_params(c, names, params, tok, consts, bound)
    grid = _bound_expr(launch.get("grid"), bound) or f"dim3({tok})"
    block = _bound_expr(launch.get("block"), bound) or "dim3(256)"
    smem = _bound_expr(launch.get("smem"), bound, dim=False) or "0"
    return Plan(
        kernel_symbol=k.qualname or k.name, template_args=tuple(targs), consts=tuple(consts),
        scale=Scale("vkc_units", "1", small=1, maximum="1", note="generic: fixed sizes, no live-set sizing"),
        derived=(), buffers=tuple(buffers), launch_stmts=(), grid=grid, block=block, smem=smem,
        args=tuple(args), dispatch=f"generic: {targs_text}, {targs_from}" if targs_text else "generic: not templated",
        wrapper=f"{launch.get('file', 'n/a')}:{launch.get('line', '?')} ({launch.get('wrapper')})",
        grid_expr=grid, block_expr=block, smem_expr=smem, untraced=True,
        notes=(("untraced/generic: fixed-size buffers (data zero-filled, indices ranged, pointer tables of "
                "real allocations); the launch is not model-accurate"),),
    )


def _template_args_text(facts: Mapping[str, Any], dtype: str) -> tuple[str, str]:
    """(template argument text without the angle brackets, where it came from)."""
    text, origin = pick_instantiation(facts, dtype)
    text = text.strip()
    if text.startswith("<") and text.endswith(">"):
        text = text[1:-1].strip()
    return text, origin


def _preamble(names: Names, params: list[dict[str, Any]], tparams: list[str], qualname: str) -> tuple[list[Stmt], str]:
    """``using namespace`` lines (when the signature needs them) and the generic token count."""
    pnames = {str(p.get("name") or "") for p in params}
    tnames = {_tparam_split(p)[1] for p in tparams} - {""}
    sig_types = [str(p.get("type", "")) for p in params] + [_tparam_split(p)[0] for p in tparams]
    consts: list[Stmt] = []
    if needs_namespaces(sig_types, tnames):
        consts += [Stmt(d, "vkc: the kernel's namespace (its signature names types unqualified)")
                   for d in namespace_directives(qualname)]
    # the generic token count is `num_tokens` unless a (template) parameter has that name
    tok = names.fresh("num_tokens" if "num_tokens" not in pnames | tnames else "vkc_num_tokens")
    consts.append(Stmt(f"const int {tok} = {GENERIC_TOKENS};", "vkc: generic token count"))
    return consts, tok


def _template_consts(names: Names, tparams: list[str], targs: list[str]) -> list[Stmt]:
    """The template parameters as host-side aliases / constants (the launch expressions name them)."""
    out: list[Stmt] = []
    for p, a in zip(tparams, targs):
        kind, pname = _tparam_split(p)
        if not pname or not names.take(pname):
            continue
        if kind in ("typename", "class"):
            out.append(Stmt(f"using {pname} = {a};", "template argument"))
        elif kind and "(" not in kind and "*" not in kind:
            out.append(Stmt(f"constexpr {kind} {pname} = {a};", "template argument"))
    return out


def _bind_params(c: Ctx, names: Names, params: list[dict[str, Any]], tok: str, consts: list[Stmt],
                 bound: set[str]) -> tuple[list[Buffer], list[str]]:
    """One argument per kernel parameter: a placeholder buffer, a scalar bound by name, or ``T{}``.
    Appends the scalars' declarations to ``consts`` and the names they bind to ``bound``."""
    ptrs: list[tuple[str, str, str]] = []     # (parameter, variable, element type)
    scalars: list[int] = []
    args: list[str] = []
    for i, prm in enumerate(params):
        ptype, pname = _clean_type(str(prm.get("type", ""))), str(prm.get("name") or f"arg{i}")
        var = names.fresh(f"p_{re.sub(r'[^A-Za-z0-9_]', '_', pname)}")
        args.append(var)
        if ptype.endswith("*"):
            names.take(f"n_{var}")
            elem = ptype[:-1].strip() or "char"
            if elem == "void":
                elem = "unsigned char"
                args[-1] = f"(void*){var}"
            ptrs.append((pname, var, elem))
        elif ptype in _INT_TYPES or ptype == "bool":
            val = _dim_for(pname, c, tok) if ptype != "bool" else 0
            scalars.append(val if isinstance(val, int) else GENERIC_TOKENS)
            code = f"const {ptype} {var} = ({ptype})({val if isinstance(val, str) else cpp_int(val)});"
            consts.append(Stmt(code, f"generic: parameter {pname}"))
            if re.fullmatch(r"[A-Za-z_]\w*", pname) and pname not in _CPP_WORDS and names.take(pname):
                consts.append(Stmt(f"const auto {pname} = {var};", ""))
                bound.add(pname)
        elif ptype in _FLOAT_TYPES:
            fval = c.dims.eps if "eps" in pname.lower() else 1.0
            consts.append(Stmt(f"const {ptype} {var} = {cpp_float(fval)};", f"generic: parameter {pname}"))
        else:
            consts.append(Stmt(f"{ptype} {var}{{}};", f"generic: parameter {pname} value-initialised"))
    return _buffers(c, names, ptrs, scalars), args


def _buffers(c: Ctx, names: Names, ptrs: list[tuple[str, str, str]], scalars: list[int]) -> list[Buffer]:
    """The pointer parameters' buffers: data zero-filled, index-like ones ranged, pointer tables real
    addresses (:mod:`.contents`)."""
    out: list[Buffer] = []
    far = reach(GENERIC_ELEMS, scalars)
    for pname, var, elem in ptrs:
        size = cpp_int(GENERIC_ELEMS)
        kind = index_kind(pname, elem)
        if is_pointer_table(pname, elem):
            pool = names.fresh(f"{var}_pool")
            names.take(f"n_{pool}")
            pool_buf, fill = pointer_table(var, elem, pool)
            out += [pool_buf, Buffer(var, elem, size, fill, "inout", f"(generic, fixed size; addresses of {pool})")]
        elif kind is not None:
            fill, what = index_fill(kind, far, GENERIC_TOKENS, c.dims.num_experts)
            out.append(Buffer(var, elem, size, fill, "inout", f"(generic, fixed size; {what})"))
        else:
            out.append(Buffer(var, elem, size, zero(), "inout", "(generic, fixed size)"))
    return out


def _tparam_split(p: str) -> tuple[str, str]:
    """(kind, name) of a template parameter declaration ("int const N = 4" -> ("int const", "N"))."""
    m = re.match(r"(.*?)([A-Za-z_][A-Za-z0-9_]*)\s*(=.*)?$", p.strip())
    return (m.group(1).strip(), m.group(2)) if m else ("", "")


def _bound_expr(text: Any, bound: set[str], dim: bool = True) -> str | None:
    if not text or not isinstance(text, str):
        return None
    t = " ".join(text.split())
    names = set(_IDENT.findall(t)) - _CPP_WORDS
    if names and not names <= bound:
        return None
    if re.search(r"[;{}\"']", t):
        return None
    if not dim:
        return t
    return f"dim3({t})" if not t.startswith("dim3") else t

