"""The reference check of a CUDA host program (issue 13): the lookup, the check script and the template context.

A CUDA example that carries a reference (:func:`vkc.reference.find_cuda_reference`) embeds a Python
script (``templates/check.py.j2``, one C++ string literal a line, ``templates/check.cuh.j2``): with
``VKC_CHECK=1``, and always at SMALL, the program poisons the output buffers, dumps every buffer
before the checked launch and the outputs after it (the ``VKC_DUMP_DIR`` format), writes the script
beside the dumps and runs it; the script applies vLLM's own PyTorch computation to the dumped inputs and
compares, and its verdict (``check=PASS|FAIL max_abs_err=... max_rel_err=... written=...``) ends the
RESULT line.  Two mappings (:mod:`vkc.reference.cuda_table`): ``host`` (a recipe's flat device buffers
by host variable, the manifest's values as ``v``) and ``wrapped`` (the op's arguments by schema name:
the traced views of the dumped storages and the traced non-tensor values).
"""
from __future__ import annotations

import math
import re
import struct
from collections.abc import Mapping, Sequence
from typing import Any

from vkc.invoke.cuda.literals import comment_text
from vkc.reference import ReferenceLookup, outputs_literal
from vkc.reference.records import Reference
from vkc.templating import render

__all__ = ["CTYPES", "check_context", "host_check", "poison_pattern", "reference_header", "script_of", "torch_dtype",
           "with_reference"]

CHECK_TEMPLATE = "vkc.invoke.cuda/check.py.j2"
# C++ element type (as the dump manifest names it) -> torch dtype name
CTYPES: dict[str, str] = {
    "c10::BFloat16": "bfloat16", "__nv_bfloat16": "bfloat16", "c10::Half": "float16", "__half": "float16",
    "half": "float16", "float": "float32", "double": "float64", "c10::Float8_e4m3fn": "float8_e4m3fn",
    "__nv_fp8_e4m3": "float8_e4m3fn", "c10::Float8_e5m2": "float8_e5m2", "__nv_fp8_e5m2": "float8_e5m2",
    "int8_t": "int8", "uint8_t": "uint8", "int16_t": "int16", "int": "int32", "int32_t": "int32",
    "int64_t": "int64", "long": "int64", "bool": "bool",
}
_SIZES = {"bfloat16": 2, "float16": 2, "float32": 4, "float64": 8, "float8_e4m3fn": 1, "float8_e5m2": 1,
          "int8": 1, "uint8": 1, "int16": 2, "int32": 4, "int64": 8, "bool": 1}
# a quiet NaN of each floating dtype, as its little-endian bits
_NAN_BITS = {"bfloat16": 0x7FC0, "float16": 0x7E00, "float32": 0x7FC00000, "float64": 0x7FF8000000000000,
             "float8_e4m3fn": 0x7F, "float8_e5m2": 0x7F}


def torch_dtype(ctype: str) -> str | None:
    return CTYPES.get(ctype.replace("const ", "").strip())


def poison_pattern(dtype: str) -> tuple[int, int] | None:
    """(bit pattern, element size) the check poisons an output of ``dtype`` with: a quiet NaN for floating
    dtypes, the minimum for signed integers; None where no sentinel exists (bool, unsigned)."""
    if dtype in _NAN_BITS:
        return _NAN_BITS[dtype], _SIZES[dtype]
    if dtype in ("int8", "int16", "int32", "int64"):
        size = _SIZES[dtype]
        return 1 << (8 * size - 1), size
    return None


def _plain(v: Any) -> bool:
    if v is None or isinstance(v, (bool, int, str)):
        return True
    if isinstance(v, float):
        return math.isfinite(v)
    return isinstance(v, (list, tuple)) and all(_plain(x) for x in v)


def check_context(found: ReferenceLookup, *, name: str, mode: str, out_dtypes: Mapping[str, Sequence[str]],
                  views: Mapping[str, Any] | None = None, values: Mapping[str, Any] | None = None,
                  aliases: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The template variables of the check (``reference`` False when there is none): the rendered script's
    lines and the reference's output rows; ``aliases``: the program's type aliases (``IdxT`` -> ``int32_t``),
    which the manifest's buffer lines name."""
    ref = found.reference
    if ref is None:
        return {"reference": False}
    outs = outputs_literal(ref, out_dtypes)
    rows = [(p, i, poison, tols, o.view) for (p, i, poison, tols), o in zip(outs, ref.spec.outputs)]
    script = render(CHECK_TEMPLATE, check="python", name=name, reference_code=ref.code,
                    reference_imports=[i for i in ref.imports if i != "import torch"], reference_entry=ref.entry,
                    reference_args=list(ref.spec.args), mode=mode, views=dict(views or {}),
                    values={c: {k: x for k, x in vs.items() if _plain(x)} for c, vs in (values or {}).items()},
                    reference_outputs=rows,
                    ctypes={**CTYPES, **{a: CTYPES[t] for a, t in sorted((aliases or {}).items()) if t in CTYPES}})
    return {"reference": True, "check_lines": [ln + "\n" for ln in script.splitlines()],
            "reference_values": list(ref.spec.values)}


def reference_header(ref: Reference, out_dtypes: Mapping[str, Sequence[str]]) -> list[tuple[str, str]]:
    """The header's ``reference`` / ``tolerance`` / ``reference notes`` fields (comment text)."""
    tols = []
    for param, tol in ref.output_tolerance:
        for dtype in out_dtypes.get(param, ()) or ("default",):
            atol, rtol = tol.for_dtype(dtype)
            tols.append(f"{param} ({dtype}): atol={atol:g} rtol={rtol:g} ({tol.origin})")
    extra = [f"pieces: {', '.join(ref.pieces)}"]
    if ref.stubs:
        extra.append(f"not extracted (raise if reached): {', '.join(ref.stubs)}")
    if ref.spec.note:
        extra.append(ref.spec.note)
    extra.append("check: VKC_CHECK=1 (always at SMALL) poisons the outputs, launches once, dumps the buffers and "
                 "runs the embedded script (python3, or VKC_PYTHON) against them; its verdict ends the RESULT line")
    def text(lines: Sequence[str]) -> str:
        return "\n".join(comment_text(ln) for ln in lines)

    return [("reference", text([f"{ref.source} {ref.origin} ({ref.spec.function})"])), ("tolerance", text(tols)),
            ("reference notes", text(extra))]


def pattern_literal(bits: int) -> str:
    """``0x...ULL`` of a poison pattern (C++)."""
    return f"0x{struct.pack('>Q', bits).hex().lstrip('0') or '0'}ULL"


_USING = re.compile(r"^using (\w+) = ([\w:<> ]+);$")


def _aliases(plan: Any) -> dict[str, str]:
    """The element types a recipe names by a ``using X = T;`` statement of its program (a wrapper's template
    alias: ``using IdxT = int32_t;``, ``using scalar_t = c10::BFloat16;``), for its buffers' ctypes."""
    out: dict[str, str] = {}
    for st in (*getattr(plan, "consts", ()), *getattr(plan, "derived", ()), *getattr(plan, "launch_stmts", ())):
        m = _USING.match(st.code.strip())
        if m:
            out[m.group(1)] = out.get(m.group(2).strip(), m.group(2).strip())
    return out


def host_check(tree: Any, key: str, plan: Any, mode: str, name: str
               ) -> tuple[ReferenceLookup, dict[str, Any], list[tuple[str, str]]]:
    """A recipe example's reference (keyed by kernel, for the plan's wrapper): the lookup, the host template's
    check context (with the poisoned buffers) and the header fields."""
    from vkc.reference.cuda_find import find_cuda_reference

    bufs = {b.name: b for b in plan.buffers}
    targs = {f"template_arg{i}": a for i, a in enumerate(plan.template_args)}   # a host row's ``requires``
    found = find_cuda_reference(tree, key, mode=mode, wrapper=plan.wrapper, names=set(bufs), values=targs)
    ref = found.reference
    if ref is None:
        return found, {"reference": False}, []
    dtypes: dict[str, list[str]] = {}
    aliases = {a: t for a, t in _aliases(plan).items() if a in {b.ctype for b in plan.buffers}}
    for o in ref.spec.outputs:
        dt = torch_dtype(aliases.get(bufs[o.param].ctype, bufs[o.param].ctype))
        if dt is None:
            return (ReferenceLookup(None, f"output {o.param}: no torch dtype for {bufs[o.param].ctype}"),
                    {"reference": False}, [])
        dtypes[o.param] = [dt]
    ctx = check_context(found, name=name, mode="host", out_dtypes=dtypes,
                        values={"host": {"template_args": list(plan.template_args)}}, aliases=aliases)
    poison: list[dict[str, Any]] = []
    for o in ref.spec.outputs:
        pat = poison_pattern(dtypes[o.param][0]) if o.poison else None
        if pat is not None and o.param not in {p["name"] for p in poison}:
            poison.append({"name": o.param, "ctype": bufs[o.param].ctype, "pattern": pattern_literal(pat[0]),
                           "size": pat[1]})
    ctx["poison"] = poison
    return found, ctx, reference_header(ref, dtypes)


def with_reference(fields: list[tuple[str, str]], ref_fields: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """The header's fields with the reference's after ``invocation`` (at the end when there is none)."""
    if not ref_fields:
        return fields
    keys = [k for k, _v in fields]
    at = keys.index("invocation") + 1 if "invocation" in keys else len(fields)
    return [*fields[:at], *ref_fields, *fields[at:]]


_C_ESCAPE = re.compile(r"\\([0-7]{1,3}|.)")


def script_of(program: str) -> str | None:
    """The check script a host program embeds (its ``kScript`` literals decoded), None when it has none."""
    start = program.find("static const char* const kScript[] = {")
    if start < 0:
        return None
    end = program.index("    nullptr};", start)
    out = []
    for line in program[start:end].splitlines()[1:]:
        lit = line.strip().removesuffix(",")
        body = lit[1:-1]
        out.append(_C_ESCAPE.sub(lambda m: chr(int(m.group(1), 8)) if m.group(1)[0] in "01234567" else m.group(1),
                                 body))
    return "".join(out)


def _call_literals(ev: Any, schema: Sequence[Any], bound: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """(views, values) of one op call: schema argument -> (storage, dtype, sizes, strides, offset) for each
    argument that is one tensor, and the traced (or schema-default) value of every other argument."""
    from vkc.invoke.cuda.wrapped.args import _default_value, _tensors
    from vkc.modeltrace.records import ScalarArg, TensorArg

    views: dict[str, Any] = {}
    many: set[str] = set()
    for (arg, t, _w), view in zip(_tensors(ev, tuple(schema)), bound.views):
        if arg in views:
            many.add(arg)
        views[arg] = (view.storage, t.dtype, list(t.shape), list(t.stride), t.offset)
    for arg in many:
        del views[arg]
    passed = dict(ev.args)
    values: dict[str, Any] = {}
    for a in schema:
        if a.name in views or a.name in many:
            continue
        raw = passed.get(a.name)
        if a.name in passed:
            values[a.name] = raw.value if isinstance(raw, ScalarArg) else (None if isinstance(raw, TensorArg) else raw)
        elif a.default is not None:
            values[a.name] = _default_value(a)
    return views, values


def wrapped_check(tree: Any, op: str, schema: Sequence[Any], calls: Sequence[tuple[str, Any, Any]], mode: str,
                  name: str) -> tuple[ReferenceLookup, dict[str, Any], dict[str, list[dict[str, Any]]],
                                      list[tuple[str, str]]]:
    """A wrapper-compiled example's reference (keyed by op): the lookup, the template's check context, the
    storages each configuration poisons, and the header fields.  ``calls``: (config, event, Bound)."""
    from vkc.reference.cuda_find import find_cuda_reference

    lits = {cname: _call_literals(ev, schema, bound) for cname, ev, bound in calls}
    found = ReferenceLookup(None, "no op call")
    for cname, (views, values) in lits.items():
        found = find_cuda_reference(tree, op, mode=mode, names={*views, *values}, values=values)
        if found.reference is None:
            return found, {"reference": False}, {}, []
        missing = [o.param for o in found.reference.spec.outputs if o.param not in views]
        if missing:
            return (ReferenceLookup(None, f"{cname}: output(s) {missing} are not one tensor of the call"),
                    {"reference": False}, {}, [])
    ref = found.reference
    assert ref is not None
    dtypes = {o.param: sorted({lits[c][0][o.param][1] for c in lits}) for o in ref.spec.outputs}
    storages = {cname: {s.name: s for s in bound.storages} for cname, _ev, bound in calls}
    poison: dict[str, list[dict[str, Any]]] = {}
    for cname, (views, _values) in lits.items():
        rows: list[dict[str, Any]] = []
        for o in ref.spec.outputs:
            storage, dtype = views[o.param][0], views[o.param][1]
            pat = poison_pattern(dtype) if o.poison else None
            if pat is not None and storage not in {r["name"] for r in rows}:
                rows.append({"name": storage, "nbytes": storages[cname][storage].nbytes,
                             "pattern": pattern_literal(pat[0]), "size": pat[1]})
        poison[cname] = rows
    ctx = check_context(found, name=name, mode="wrapped", out_dtypes=dtypes,
                        views={c: v for c, (v, _x) in lits.items()}, values={c: x for c, (_v, x) in lits.items()})
    return found, ctx, poison, reference_header(ref, dtypes)
