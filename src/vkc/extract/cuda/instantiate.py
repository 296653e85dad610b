"""The template instantiations of a CUDA kernel: what its launch site and dtype dispatch bind.

:func:`launch_facts` reads the chosen launch site (config, template arguments, the dtype
dispatch around it, host-set attributes); :func:`instantiations` turns them into one
instantiation per dispatched dtype (falling back to the call-site resolver of
:mod:`vkc.extract.cuda.refs` when the launch site alone does not bind every argument).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from vkc.cxx.launches import Launch
from vkc.cxx.model import FileModel
from vkc.cxx.text import split_top
from vkc.extract.cuda import launch as L
from vkc.extract.cuda import resolve as R
from vkc.extract.cuda.defaults import qualify
from vkc.extract.cuda.items import Unit
from vkc.extract.cuda.refs import namespaces, resolve_refs
from vkc.records import KernelEntry, SourceTree

__all__ = ["NATIVE_TYPES", "Instantiations", "LaunchFacts", "instantiations", "launch_facts", "subst", "unbound_args"]

NATIVE_TYPES = {"float", "double", "int", "bool", "char", "short", "long", "unsigned", "signed",
                "half", "__half", "half2", "__half2", "__nv_bfloat16", "__nv_bfloat162", "nv_bfloat16",
                "nv_bfloat162", "__nv_fp8_e4m3", "__nv_fp8_e5m2", "true", "false", "nullptr", "void",
                "uint8_t", "uint16_t", "uint32_t", "uint64_t", "int8_t", "int16_t", "int32_t", "int64_t",
                "size_t", "sizeof", "const", "float2", "float4", "int4", "uint4", "std", "c10", "vllm",
                "static_cast", "MIN", "MAX"}


@dataclass
class LaunchFacts:
    """What the chosen launch site says (all empty without one)."""
    facts: dict[str, Any] | None = None        # the ``launch`` fact: file, line, wrapper, form, text, config
    dispatch: dict[str, Any] | None = None     # the dtype dispatch that binds the kernel's scalar type
    all_dispatch: list[dict[str, Any]] = field(default_factory=list)
    template_args: str | None = None           # the launch's template argument text
    set_attributes: list[str] = field(default_factory=list)
    launch_attributes: list[str] = field(default_factory=list)


@dataclass
class Instantiations:
    by_dtype: dict[str, str] = field(default_factory=dict)        # dtype (or "default") -> template args
    unbound: list[str] = field(default_factory=list)              # args bound only by host values
    choices: dict[str, Any] = field(default_factory=dict)         # dispatch variable -> chosen value
    variants: list[dict[str, Any]] = field(default_factory=list)  # resolved call-site instantiations


def subst(expr: str, mapping: dict[str, str]) -> str:
    for k, v in mapping.items():
        if k and v is not None:
            expr = re.sub(r"(?<![\w:.])" + re.escape(k) + r"\b(?!\s*::)", v, expr)
    return expr


def unbound_args(args: str, known: set[str]) -> list[str]:
    """The template arguments of ``args`` that still name something unknown."""
    out = []
    for a in split_top(args, keep_empty_last=True):
        if not a:
            continue
        s = re.sub(r"[A-Za-z_][\w]*(::[A-Za-z_~][\w]*)+", " ", a)  # qualified names are concrete
        s = re.sub(r"::\s*[A-Za-z_]\w*", " ", s).replace("typename", " ").replace("template", " ")
        ids = [t for t in re.findall(r"[A-Za-z_]\w*", s) if t not in known and t not in NATIVE_TYPES]
        if ids:
            out.append(a)
    return out


def launch_facts(tree: SourceTree, fm: FileModel | None, la: Launch | None, kernel: KernelEntry) -> LaunchFacts:
    if la is None or fm is None:
        return LaunchFacts()
    cfg = L.launch_config(fm, la)
    targs = L.alias_template_args(fm, la, kernel)
    dispatch, all_disp = L.dispatch_info(tree, fm, la)
    facts = {"file": la.file, "line": la.line, "wrapper": la.wrapper, "form": la.form,
             "text": la.text, **cfg, "template_args": targs, "macro": la.macro}
    scope = L._function_text(fm, la)
    launch_attrs = sorted({" ".join(m.group(0).split()) for m in
                           re.finditer(r"\w+(?:\[\d+\])?\.id\s*=\s*cudaLaunchAttribute\w+", scope)})
    launch_attrs += sorted({" ".join(m.group(0).split()) for m in
                            re.finditer(r"\w+(?:\[\d+\])?\.val\.\w+(?:\.\w+)?\s*=\s*[^;]+", scope)})
    return LaunchFacts(facts=facts, dispatch=dispatch, all_dispatch=all_disp, template_args=targs,
                       set_attributes=L.host_statements(fm, la, kernel, "cudaFuncSetAttribute"),
                       launch_attributes=launch_attrs)


def instantiations(tree: SourceTree, kernel: KernelEntry, unit: Unit, fm: FileModel | None, la: Launch | None,
                   lf: LaunchFacts, known_defs: set[str]) -> Instantiations:
    """One instantiation per dispatched dtype, qualified for global scope."""
    out = Instantiations()
    if lf.template_args and fm is not None and la is not None:
        _from_launch(fm, la, lf, known_defs, out)
    if kernel.template_params and (not out.by_dtype or out.unbound or any(not v for v in out.by_dtype.values())):
        r = resolve_refs(tree, kernel, unit, known_defs)
        if r is not None:
            out.by_dtype, rchoices, out.variants = r
            out.choices = {**out.choices, **rchoices}
            out.unbound = []
    if out.by_dtype:
        # the instantiation is written at global scope: qualify names of the unit's namespaces
        ns_of, _ = namespaces(unit)
        out.by_dtype = {k: ", ".join(qualify(None, R.split_targs(v), ns_of)) if v else v
                        for k, v in out.by_dtype.items()}
    return out


def _from_launch(fm: FileModel, la: Launch, lf: LaunchFacts, known_defs: set[str], out: Instantiations) -> None:
    """The launch's template arguments with macro actuals, local constants and the dispatches'
    values substituted (first case of each nested dispatch other than the primary one)."""
    assert lf.template_args is not None
    dispatch, all_disp, choices, insts = lf.dispatch, lf.all_dispatch, out.choices, out.by_dtype
    base = subst(lf.template_args, L.macro_actuals(fm, la))
    consts, scoped = L.shadowed_dispatch_names(fm, la, all_disp, L.local_constants(fm, la))
    for _ in range(3):
        base = subst(base, consts)
    for d in all_disp:
        for var, vals in d.get("values", {}).items():
            if re.search(r"\b" + re.escape(var) + r"\b", base):
                choices[var] = {"chosen": vals[0], "cases": vals, "macro": d["macro"]}
                base = subst(base, {var: vals[0]})
    # the name each dtype dispatch binds (nested ones of the same name: see launch.py)
    bound_as = {id(d): (scoped[i] or d.get("type_var")) for i, d in enumerate(all_disp)}
    ptv = bound_as.get(id(dispatch)) if dispatch else None
    follow: dict[str, dict[str, str]] = {}
    # nested type dispatches other than the primary (fp8_t, idx_t ...): first case
    for d in all_disp:
        tv = bound_as[id(d)]
        if d is dispatch or not d.get("dtype_map") or not tv or (dispatch and tv == ptv):
            continue
        if re.search(r"\b" + re.escape(tv) + r"\b", base):
            if dispatch and ptv and ptv != dispatch.get("type_var") and not dispatch.get("cases") \
                    and set(dispatch["dtype_map"]) <= set(d["dtype_map"]):
                follow[tv] = d["dtype_map"]   # same dtypes (query_t/cache_t): the model's dtype
                continue
            first = next(iter(d["dtype_map"].values()))
            choices[d["type_var"]] = {"chosen": first, "cases": list(d["dtype_map"].values()),
                                      "macro": d["macro"]}
            base = subst(base, {tv: first})
    if dispatch and dispatch.get("cases"):
        for dt, vals in dispatch["cases"].items():
            insts[dt] = subst(base, dict(zip(dispatch["type_vars"], vals)))
    elif dispatch and dispatch.get("dtype_map"):
        for dt, ty in dispatch["dtype_map"].items():
            insts[dt] = subst(base, {ptv or "": ty, **{v: m[dt] for v, m in follow.items()}})
    else:
        insts["default"] = base
    for v in insts.values():
        for u in unbound_args(v, known_defs):
            if u not in out.unbound:
                out.unbound.append(u)
