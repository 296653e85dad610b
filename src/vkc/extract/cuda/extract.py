"""Build the self-contained translation unit ("V1": torch header-only types kept) and
the handoff/facts for one CUDA kernel."""
from __future__ import annotations

import re
from pathlib import Path

import jinja2

import vkc
from vkc.errors import ExtractionError
from vkc.extract.cuda import launch as L
from vkc.extract.cuda import resolve as R
from vkc.extract.cuda.items import Item, Unit, build_unit, closure
from vkc.extract.cuda.refs import namespaces as _namespaces
from vkc.extract.cuda.refs import resolve_refs as _resolve_refs
from vkc.index.cxx.model import file_model
from vkc.index.cxx.text import split_top, tparam_name
from vkc.records import Extraction, Handoff, KernelEntry, SourceTree

_ENV = jinja2.Environment(loader=jinja2.PackageLoader("vkc.extract.cuda", "templates"),
                          undefined=jinja2.StrictUndefined, keep_trailing_newline=True,
                          trim_blocks=True, lstrip_blocks=True)

_STD = {"algorithm", "array", "cassert", "cfloat", "climits", "cmath", "cstddef", "cstdint", "cstdio",
        "cstdlib", "cstring", "functional", "initializer_list", "iterator", "limits", "memory",
        "numeric", "tuple", "type_traits", "utility", "assert.h", "float.h", "limits.h", "math.h",
        "stdint.h", "stddef.h", "stdio.h", "stdlib.h", "string.h", "cuda/std/", "optional", "atomic",
        "bit", "cfenv", "complex", "variant", "string", "vector", "map", "unordered_map", "set", "sstream",
        "iostream", "numbers"}
_KEEP_PREFIX = ("cuda_", "cuda/", "cub/", "cooperative_groups", "mma.h", "cuda.h", "vector_types.h",
                "torch/headeronly/util/", "torch/headeronly/macros/", "c10/util/", "cutlass/", "cute/",
                "curand", "thrust/", "nv/", "crt/")
_DROP = ("torch/headeronly/core/Dispatch",)
# angle-bracket headers that are host-only or absent from a CUDA toolkit (cuBLAS is absent)
_HOST_ONLY = ("torch/", "ATen/", "c10/", "pybind11", "Python.h", "hip/", "hipcub/", "rocprim",
              "cublas", "cublasLt", "cusparse", "cusolver", "nvml", "nccl", "mpi", "Aten/",
              "iostream", "fstream", "thread", "mutex", "deque", "filesystem", "sys/", "unistd.h",
              "dlfcn.h", "fcntl.h", "c10d/", "torch_utils", "flashinfer/")
_NATIVE_TYPES = {"float", "double", "int", "bool", "char", "short", "long", "unsigned", "signed",
                 "half", "__half", "half2", "__half2", "__nv_bfloat16", "__nv_bfloat162", "nv_bfloat16",
                 "nv_bfloat162", "__nv_fp8_e4m3", "__nv_fp8_e5m2", "true", "false", "nullptr", "void",
                 "uint8_t", "uint16_t", "uint32_t", "uint64_t", "int8_t", "int16_t", "int32_t", "int64_t",
                 "size_t", "sizeof", "const", "float2", "float4", "int4", "uint4", "std", "c10", "vllm",
                 "static_cast", "MIN", "MAX"}
_TORCH_TYPES = {"c10::Half": "torch/headeronly/util/Half.h", "c10::BFloat16": "torch/headeronly/util/BFloat16.h",
                "c10::Float8_e4m3fn": "torch/headeronly/util/Float8_e4m3fn.h",
                "c10::Float8_e4m3fnuz": "torch/headeronly/util/Float8_e4m3fnuz.h",
                "c10::Float8_e5m2": "torch/headeronly/util/Float8_e5m2.h",
                "c10::ScalarType": "torch/headeronly/core/ScalarType.h"}
_NS_HEADERS = ((r"\bcub::", "cub/"), (r"\b(cooperative_groups|cg)::", "cooperative_groups"),
               (r"\bcuda::std::", "cuda/std"), (r"\bcuda::ptx::", "cuda/ptx"), (r"\bnvcuda::", "mma.h"),
               (r"\bCUDART_\w+", "math_constants"), (r"\bcuda::(barrier|pipeline|memcpy_async)", "cuda/"))
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


def _choose_launch(tree: SourceTree, kernel: KernelEntry):
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


def _first_launch(tree: SourceTree, kernel: KernelEntry):
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


def _subst(expr: str, mapping: dict[str, str]) -> str:
    for k, v in mapping.items():
        if k and v is not None:
            expr = re.sub(r"(?<![\w:.])" + re.escape(k) + r"\b(?!\s*::)", v, expr)
    return expr


def _unbound(args: str, known: set[str]) -> list[str]:
    out = []
    for a in split_top(args, keep_empty_last=True):
        if not a:
            continue
        s = re.sub(r"[A-Za-z_][\w]*(::[A-Za-z_~][\w]*)+", " ", a)  # qualified names are concrete
        s = re.sub(r"::\s*[A-Za-z_]\w*", " ", s).replace("typename", " ").replace("template", " ")
        ids = [t for t in re.findall(r"[A-Za-z_]\w*", s) if t not in known and t not in _NATIVE_TYPES]
        if ids:
            out.append(a)
    return out


def extract_cuda(tree: SourceTree, kernel: KernelEntry) -> Extraction:
    """Self-contained unit + handoff for a CUDA kernel (raises ExtractionError)."""
    if kernel.rocm_only:
        raise ExtractionError(f"{kernel.qualname} ({kernel.file}:{kernel.line}) is ROCm-only",
                              hint="pick a CUDA kernel; ROCm kernels are not extracted for nvcc")
    root = Path(tree.root)
    unit = build_unit(root, kernel.file)
    kit = _kernel_item(unit, kernel)
    # parameter names shadow namespace-scope names in the body (a host fragment
    # ``Idx_t stride_x = ...;`` left at namespace scope by a broken parse must not be pulled in)
    kparams = _kernel_params(tree, kernel)
    ptype_ids = {t for ty, _n in kparams for t in re.findall(r"[A-Za-z_]\w*", ty)}
    kit.refs -= {n for _t, n in kparams if n and n not in ptype_ids}
    fm, la = _choose_launch(tree, kernel)
    facts_launch, dispatch, all_disp, insts, unbound, choices = None, None, [], {}, [], {}
    set_attrs: list[str] = []
    launch_attrs: list[str] = []
    targs = None
    if la is not None:
        cfg = L.launch_config(fm, la)
        targs = L.alias_template_args(fm, la, kernel)
        dispatch, all_disp = L.dispatch_info(tree, fm, la)
        facts_launch = {"file": la.file, "line": la.line, "wrapper": la.wrapper, "form": la.form,
                        "text": la.text, **cfg, "template_args": targs, "macro": la.macro}
        set_attrs = L.host_statements(fm, la, kernel, "cudaFuncSetAttribute")
        scope = L._function_text(fm, la)
        launch_attrs = sorted({" ".join(m.group(0).split()) for m in
                               re.finditer(r"\w+(?:\[\d+\])?\.id\s*=\s*cudaLaunchAttribute\w+", scope)})
        launch_attrs += sorted({" ".join(m.group(0).split()) for m in
                                re.finditer(r"\w+(?:\[\d+\])?\.val\.\w+(?:\.\w+)?\s*=\s*[^;]+", scope)})
    # --- instantiations
    known_defs = set().union(*(it.defines for it in unit.items)) if unit.items else set()
    if targs:
        base = _subst(targs, L.macro_actuals(fm, la))
        consts, scoped = L.shadowed_dispatch_names(fm, la, all_disp, L.local_constants(fm, la))
        for _ in range(3):
            base = _subst(base, consts)
        for d in all_disp:
            for var, vals in d.get("values", {}).items():
                if re.search(r"\b" + re.escape(var) + r"\b", base):
                    choices[var] = {"chosen": vals[0], "cases": vals, "macro": d["macro"]}
                    base = _subst(base, {var: vals[0]})
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
                base = _subst(base, {tv: first})
        if dispatch and dispatch.get("cases"):
            for dt, vals in dispatch["cases"].items():
                insts[dt] = _subst(base, dict(zip(dispatch["type_vars"], vals)))
        elif dispatch and dispatch.get("dtype_map"):
            for dt, ty in dispatch["dtype_map"].items():
                insts[dt] = _subst(base, {ptv: ty, **{v: m[dt] for v, m in follow.items()}})
        else:
            insts["default"] = base
        for v in insts.values():
            for u in _unbound(v, known_defs):
                if u not in unbound:
                    unbound.append(u)
    variants: list[dict] = []
    if kernel.template_params and (not insts or unbound or any(not v for v in insts.values())):
        r = _resolve_refs(tree, kernel, unit, known_defs)
        if r is not None:
            insts, rchoices, variants = r
            choices = {**choices, **rchoices}
            unbound = []
    if insts:
        # the instantiation is written at global scope: qualify names of the unit's namespaces
        ns_of, _ = _namespaces(unit)
        insts = {k: ", ".join(R.qualify(None, R.split_targs(v), ns_of)) if v else v for k, v in insts.items()}
    # --- closure (kernel + names used in the chosen template arguments)
    extra_roots = set()
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
    body_text = "\n".join(it.text for it in kept) + "\n" + " ".join(insts.values())
    _check_external(unit, kept, body_text, kernel)
    chunks = _render_items(kept)
    includes = _includes(unit, body_text, {it.file for it in kept})
    flags = ["-I$TORCH_INCLUDE"] if any(i.startswith(("torch/", "c10/")) for i in includes) else []
    unit_text = _ENV.get_template("unit.cu.j2").render(
        vkc_version=vkc.__version__, vllm_label=tree.label, qualname=kernel.qualname,
        kernel_file=kernel.file, kernel_line=kernel.line, flags_text="".join(" " + f for f in flags), includes=includes,
        chunks=chunks, unit_file_hint="<stem>.cu (stem = vkc.write.names.safe_stem(name))")
    unit_text = re.sub(r"\n{3,}", "\n\n", unit_text)
    params = _kernel_params(tree, kernel)
    tnames = [re.split(r"[\s*&]+", re.sub(r"\s*=.*$", "", p).replace("(", " ").replace(")", " ").strip())
              for p in kernel.template_params]
    tnames = [tparam_name(p) for p in kernel.template_params]
    pref = insts.get("bfloat16") or (next(iter(insts.values())) if insts else None)
    meta = {}
    if pref:
        vals = split_top(pref, keep_empty_last=True)
        for i, n in enumerate(tnames):
            meta[n] = vals[i] if i < len(vals) else "(default)"
    leaf = [kernel.qualname]
    if la is not None:
        for other in _siblings(tree, kernel, la):
            if other not in leaf:
                leaf.append(other)
    notes = []
    if la is not None:
        notes.append(f"launched from {la.wrapper or '?'} at {la.file}:{la.line} ({la.form})")
    notes += set_attrs + launch_attrs
    if unbound:
        notes.append("template args bound by host values: " + ", ".join(unbound))
    smem = facts_launch["smem"] if facts_launch else None
    handoff = Handoff(
        leaf_symbols=tuple(leaf), arg_order=tuple(n for _, n in params),
        grid_expr=(facts_launch or {}).get("grid") or "",
        meta_params=meta,
        guards={"dtype": sorted(dispatch["dtype_map"]) if dispatch else None,
                "dispatch": dispatch["macro"] if dispatch else None,
                "arch": sorted(set(re.findall(r"__CUDA_ARCH__\s*[<>=!]+\s*\d+", kit.text)))},
        smem_formula=None if smem in (None, "0", "0u") else smem,
        stride_semantics="bytes" if any("byte" in n.lower() and "stride" in n.lower() for _, n in params) else "elements",
        notes=tuple(notes))
    example = None
    if pref is not None:
        vals = split_top(pref, keep_empty_last=True)
        for i, v in enumerate(vals):
            if v in unbound and i < len(kernel.template_params) and re.match(
                    r"(typename|class)\b", kernel.template_params[i]):
                vals[i] = "__nv_bfloat16"
        example = ", ".join(vals)
        if _unbound(example, known_defs):
            example = None
    facts = {
        "params": [{"type": t, "name": n} for t, n in params],
        "template_params": list(kernel.template_params),
        "template_param_names": tnames,
        "launch": facts_launch,
        "dispatch": dispatch,
        "dispatch_all": all_disp,
        "instantiations": insts,
        "unbound_template_args": unbound,
        # bf16 instantiation with unbound typename args set to __nv_bfloat16 (None if
        # non-type args stay unbound): what vkc's own compile checks use
        "example_instantiation": example,
        "template_arg_choices": choices,
        # every fully bound instantiation found at the call sites (when the launch site
        # alone does not bind the arguments): {"args", "dtype", "bindings", "origin"}
        "instantiation_variants": variants,
        "set_attributes": set_attrs,
        "launch_attributes": launch_attrs,
        "include_flags": flags,
        "unit_file": UNIT_NOTE,
        "qualname": kernel.qualname,
        "kernel_line": kernel.line,
        "inlined_from": sorted({it.file for it in kept}),
    }
    return Extraction(kernel=kernel, kernel_type="cuda", source_code=unit_text, handoff=handoff, facts=facts)


def _kernel_params(tree: SourceTree, kernel: KernelEntry) -> list[tuple[str, str]]:
    fm = file_model(str(tree.root), kernel.file)
    for k in fm.kernels:
        if k.line == kernel.line and k.name == kernel.name:
            return k.params
    return []


def _siblings(tree: SourceTree, kernel: KernelEntry, la) -> list[str]:
    from vkc.index.cuda_scan import scan_cuda_cached
    out = []
    for k in scan_cuda_cached(tree):
        if k.name == kernel.name:
            continue
        if any(s.wrapper == la.wrapper and s.file == la.file and s.form != "indirect" for s in k.launch_sites):
            out.append(k.qualname)
    return out


def _check_external(unit: Unit, kept: list[Item], body: str, kernel: KernelEntry) -> None:
    if re.search(r"\b(cutlass|cute)::", body):
        hdrs = sorted({h for h, _ in unit.system_includes if h.startswith(("cutlass/", "cute/"))})
        raise ExtractionError(
            f"{kernel.qualname} needs CUTLASS headers ({', '.join(hdrs[:3]) or 'cutlass/...'}), "
            "which are not in the vLLM source distribution",
            hint="CUTLASS/CuTe is fetched by vLLM's CMake at build time; pick a non-CUTLASS kernel")
    if unit.missing_includes:
        used_files = {it.file for it in kept}
        miss = sorted({t for t, f in unit.missing_includes if f in used_files})
        if miss and any(re.search(r"\b" + re.escape(Path(m).stem) + r"\b", body) for m in miss) or (
                miss and kernel.file in {f for t, f in unit.missing_includes}):
            raise ExtractionError(
                f"{kernel.qualname} needs headers missing from the source tree ({', '.join(miss)}); "
                "they are generated at build time",
                hint="these headers come from vLLM's build (e.g. generate_kernels.py); pick another kernel")


def _render_items(kept: list[Item]) -> list[str]:
    chunks: list[str] = []
    stack: list[tuple[str, str, str]] = []
    for it in kept:
        chain = list(it.chain)
        common = 0
        while common < min(len(stack), len(chain)) and stack[common][0] == chain[common][0]:
            common += 1
        while len(stack) > common:
            chunks.append(stack.pop()[2])
        for c in chain[common:]:
            chunks.append(c[1])
            stack.append(c)
        chunks.append(f"// from {it.file}:{it.line}\n{_dedent(it.text)}")
    while stack:
        chunks.append(stack.pop()[2])
    return chunks


def _dedent(text: str) -> str:
    return text.rstrip()


def _includes(unit: Unit, body: str, used_files: set[str]) -> list[str]:
    out: list[str] = []

    def add(h: str):
        if h not in out:
            out.append(h)

    add("cuda_runtime.h")
    add("cstdint")
    if re.search(r"\b(half2?|__half2?)\b", body):
        add("cuda_fp16.h")
    if re.search(r"\b(__nv_bfloat162?|nv_bfloat162?)\b", body):
        add("cuda_bf16.h")
    if re.search(r"\b__nv_fp8\w*", body):
        add("cuda_fp8.h")
    uses_torch = bool(re.search(r"\b(c10|torch|at)::", body))
    for h, f in unit.system_includes:
        if f not in used_files or h.startswith(_DROP):
            continue
        if h.startswith(("torch/", "c10/")):
            if uses_torch and (h in _TORCH_TYPES.values() or h.startswith("torch/headeronly/macros/")):
                add(h)
            continue
        if h.startswith(_KEEP_PREFIX) or h in _STD or not h.startswith(_HOST_ONLY):
            add(h)
    # headers of a library the kept code uses, even when the file that included it
    # contributed no item (e.g. <cub/cub.cuh> via cub_helpers.h)
    for pat, prefix in _NS_HEADERS:
        if re.search(pat, body):
            for h, _f in unit.system_includes:
                if h.startswith(prefix):
                    add(h)
    if re.search(r"\bprintf\s*\(", body):
        add("cstdio")
    for ty, h in _TORCH_TYPES.items():
        short = ty.split("::")[-1]
        if re.search(r"\b(c10|torch::headeronly|at)::" + re.escape(short) + r"\b", body):
            add(h)
    return out
