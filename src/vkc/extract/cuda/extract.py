"""Build the self-contained translation unit ("V1": torch header-only types kept) and
the handoff/facts for one CUDA kernel."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from vkc.cxx.launches import Launch
from vkc.cxx.model import FileModel, file_model
from vkc.cxx.text import split_top, tparam_name
from vkc.errors import ExtractionError
from vkc.extract.cuda import launch as L
from vkc.extract.cuda.instantiate import Instantiations, LaunchFacts, instantiations, launch_facts, unbound_args
from vkc.extract.cuda.items import Item, Unit, closure
from vkc.extract.cuda.unit import build_unit
from vkc.extract.cuda.unit_text import check_external, render_unit
from vkc.records import Extraction, Handoff, KernelEntry, SourceTree

__all__ = ["UNIT_NOTE", "extract_cuda"]

UNIT_NOTE = "save source_code as <safe_stem(name)>.cu (vkc.write.names.safe_stem) beside the invocation"


def _kernel_item(unit: Unit, kernel: KernelEntry) -> Item:
    cands = [it for it in unit.items if it.file == kernel.file and kernel.name in it.defines
             and it.line <= kernel.line <= it.line + it.text.count("\n")]
    if not cands:
        cands = [it for it in unit.items if it.file == kernel.file
                 and it.line <= kernel.line <= it.line + it.text.count("\n") and "__global__" in it.text]
    if not cands:
        raise ExtractionError(f"cannot isolate the definition of {kernel.qualname} at {kernel.file}:{kernel.line}",
                              hint="the definition could not be parsed; report it to the vkc maintainers")
    it = min(cands, key=lambda i: len(i.text))
    it.defines.add(kernel.name)
    return it


def extract_cuda(tree: SourceTree, kernel: KernelEntry) -> Extraction:
    """Self-contained unit + handoff for a CUDA kernel (raises ExtractionError)."""
    if kernel.rocm_only:
        raise ExtractionError(f"{kernel.qualname} ({kernel.file}:{kernel.line}) is ROCm-only",
                              hint="pick a CUDA kernel; ROCm kernels are not extracted for nvcc")
    unit = build_unit(Path(tree.root), kernel.file)
    kit = _kernel_item(unit, kernel)
    # parameter names shadow namespace-scope names in the body (a host fragment
    # ``Idx_t stride_x = ...;`` left at namespace scope by a broken parse must not be pulled in)
    params = _kernel_params(tree, kernel)
    ptype_ids = {t for ty, _n in params for t in re.findall(r"[A-Za-z_]\w*", ty)}
    # (a typeless "parameter" is a macro standing for the list, MARLIN_KERNEL_PARAMS: a reference)
    kit.refs -= {n for t, n in params if n and t and n not in ptype_ids}
    fm, la = _choose_launch(tree, kernel)
    lf = launch_facts(tree, fm, la, kernel)
    known_defs = set().union(*(it.defines for it in unit.items)) if unit.items else set()
    inst = instantiations(tree, kernel, unit, fm, la, lf, known_defs)
    kept = _kept_items(tree, kernel, unit, kit, inst.by_dtype)
    body_text = "\n".join(it.text for it in kept) + "\n" + " ".join(inst.by_dtype.values())
    check_external(unit, kept, body_text, kernel)
    unit_text, flags = render_unit(tree, kernel, unit, kept, body_text)
    tnames = [tparam_name(p) for p in kernel.template_params]
    pref = inst.by_dtype.get("bfloat16") or (next(iter(inst.by_dtype.values())) if inst.by_dtype else None)
    handoff = _handoff(tree, kernel, kit, la, lf, inst, params, tnames, pref)
    facts = {
        "params": [{"type": t, "name": n} for t, n in params],
        "template_params": list(kernel.template_params),
        "template_param_names": tnames,
        "launch": lf.facts,
        "dispatch": lf.dispatch,
        "dispatch_all": lf.all_dispatch,
        "instantiations": inst.by_dtype,
        "unbound_template_args": inst.unbound,
        # bf16 instantiation with unbound typename args set to __nv_bfloat16 (None if
        # non-type args stay unbound): what vkc's own compile checks use
        "example_instantiation": _example(kernel, pref, inst.unbound, known_defs),
        "template_arg_choices": inst.choices,
        # every fully bound instantiation found at the call sites (when the launch site
        # alone does not bind the arguments): {"args", "dtype", "bindings", "origin"}
        "instantiation_variants": inst.variants,
        "set_attributes": lf.set_attributes,
        "launch_attributes": lf.launch_attributes,
        "include_flags": flags,
        "unit_file": UNIT_NOTE,
        "qualname": kernel.qualname,
        "kernel_line": kernel.line,
        "inlined_from": sorted({it.file for it in kept}),
    }
    return Extraction(kernel=kernel, kernel_type="cuda", source_code=unit_text, handoff=handoff, facts=facts)


def _kept_items(tree: SourceTree, kernel: KernelEntry, unit: Unit, kit: Item, insts: dict[str, str]) -> list[Item]:
    """The closure of the kernel and of the names its chosen template arguments use."""
    extra_roots: set[str] = set()
    for v in insts.values():
        extra_roots |= set(re.findall(r"[A-Za-z_]\w*", v))
    kit.refs |= extra_roots - {kernel.name}
    kept = closure(unit, kit)
    # enable_if overload sets: nvcc's host pass and device pass may pick different
    # members (e.g. a __CUDA_ARCH__-guarded trait), so the whole set is kept
    # (only overloads with the same parameter list: others would make &kernel<...> ambiguous)
    own_params = _kernel_params(tree, kernel)
    kdefs = [k for k in file_model(str(tree.root), kernel.file).kernels if k.name == kernel.name]

    def same_params(it: Item) -> bool:
        end = it.line + it.text.count("\n")
        return any(it.line <= k.line <= end and k.params == own_params for k in kdefs)

    overloads = [it for it in unit.items if it.is_global and it is not kit and it.file == kernel.file
                 and kernel.name in it.defines and same_params(it)]
    if overloads:
        for ov in overloads:
            kept += [x for x in closure(unit, ov) if all(x is not y for y in kept)]
        kept.sort(key=lambda it: it.order)
    return kept


def _handoff(tree: SourceTree, kernel: KernelEntry, kit: Item, la: Launch | None, lf: LaunchFacts,
             inst: Instantiations, params: list[tuple[str, str]], tnames: list[str], pref: str | None) -> Handoff:
    meta: dict[str, Any] = {}
    if pref:
        vals = split_top(pref, keep_empty_last=True)
        for i, n in enumerate(tnames):
            meta[n] = vals[i] if i < len(vals) else "(default)"
    leaf = [kernel.qualname]
    notes = []
    if la is not None:
        for other in _siblings(tree, kernel, la):
            if other not in leaf:
                leaf.append(other)
        notes.append(f"launched from {la.wrapper or '?'} at {la.file}:{la.line} ({la.form})")
    notes += lf.set_attributes + lf.launch_attributes
    if inst.unbound:
        notes.append("template args bound by host values: " + ", ".join(inst.unbound))
    smem = lf.facts["smem"] if lf.facts else None
    dispatch = lf.dispatch
    return Handoff(
        leaf_symbols=tuple(leaf), arg_order=tuple(n for _, n in params),
        grid_expr=(lf.facts or {}).get("grid") or "",
        meta_params=meta,
        guards={"dtype": sorted(dispatch["dtype_map"]) if dispatch else None,
                "dispatch": dispatch["macro"] if dispatch else None,
                "arch": sorted(set(re.findall(r"__CUDA_ARCH__\s*[<>=!]+\s*\d+", kit.text)))},
        smem_formula=None if smem in (None, "0", "0u") else smem,
        stride_semantics="bytes" if any("byte" in n.lower() and "stride" in n.lower() for _, n in params) else "elements",
        notes=tuple(notes))


def _example(kernel: KernelEntry, pref: str | None, unbound: list[str], known_defs: set[str]) -> str | None:
    """The preferred instantiation with unbound typename arguments set to ``__nv_bfloat16``."""
    if pref is None:
        return None
    vals = split_top(pref, keep_empty_last=True)
    for i, v in enumerate(vals):
        if v in unbound and i < len(kernel.template_params) and re.match(
                r"(typename|class)\b", kernel.template_params[i]):
            vals[i] = "__nv_bfloat16"
    example = ", ".join(vals)
    return None if unbound_args(example, known_defs) else example


def _choose_launch(tree: SourceTree, kernel: KernelEntry) -> tuple[FileModel | None, Launch | None]:
    """First direct launch site; one that spells the template arguments wins."""
    found = []
    for site in kernel.launch_sites:
        if site.form == "indirect":
            continue
        fm = file_model(str(tree.root), site.file)
        la = next((x for x in fm.launches if x.line == site.line), None)
        if la is not None:
            found.append((fm, la))
            if not kernel.template_params or L.alias_template_args(fm, la, kernel):
                return fm, la
    if found:
        return found[0]
    return _first_launch(tree, kernel)


def _first_launch(tree: SourceTree, kernel: KernelEntry) -> tuple[FileModel | None, Launch | None]:
    for site in kernel.launch_sites:
        if site.form == "indirect":
            continue
        fm = file_model(str(tree.root), site.file)
        for la in fm.launches:
            if la.line == site.line and (kernel.name in la.kernels or la.base == kernel.name
                                         or kernel.name in la.text):
                return fm, la
        for la in fm.launches:
            if la.line == site.line:
                return fm, la
    return None, None


def _kernel_params(tree: SourceTree, kernel: KernelEntry) -> list[tuple[str, str]]:
    fm = file_model(str(tree.root), kernel.file)
    for k in fm.kernels:
        if k.line == kernel.line and k.name == kernel.name:
            return k.params
    return []


def _siblings(tree: SourceTree, kernel: KernelEntry, la: Launch) -> list[str]:
    from vkc.index.build import scan_cuda_cached
    out = []
    for k in scan_cuda_cached(tree):
        if k.name == kernel.name:
            continue
        if any(s.wrapper == la.wrapper and s.file == la.file and s.form != "indirect" for s in k.launch_sites):
            out.append(k.qualname)
    return out
