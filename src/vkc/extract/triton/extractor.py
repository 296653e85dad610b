"""``extract_triton``: a KernelEntry -> a self-contained Triton module + handoff."""
from __future__ import annotations

import ast
import re

import vkc
from vkc.errors import ExtractionError
from vkc.extract.triton import platform_profile
from vkc.extract.triton.closure import AUTOTUNE, HEURISTICS, Collector
from vkc.extract.triton.evaluator import Program
from vkc.extract.triton.modinfo import find_def, module_of_file, source_segment
from vkc.extract.triton.render import render_module
from vkc.extract.triton.runtime_fallback import RuntimeFallback
from vkc.extract.triton.values import ExtRef, FuncRef, Unresolved
from vkc.records import Extraction, Handoff, KernelEntry, SourceTree

_PROGRAMS: dict[str, Program] = {}


def program_for(tree: SourceTree) -> Program:
    """One Program (parsed modules, memoized values) per tree root, reused across kernels."""
    key = str(tree.root)
    if key not in _PROGRAMS:
        _PROGRAMS[key] = Program(tree.root, fallback=RuntimeFallback(tree.root, sha256=tree.sha256))
    return _PROGRAMS[key]


def extract_triton(tree: SourceTree, kernel: KernelEntry) -> Extraction:
    """Extract ``kernel`` (a Triton jit function) as a standalone module."""
    if kernel.rocm_only:
        raise ExtractionError(
            f"{kernel.qualified or kernel.qualname} ({kernel.file}:{kernel.line}) is not built for CUDA"
            + (f": {kernel.platform_note}" if kernel.platform_note else " (ROCm-only definition)"),
            hint="pick a CUDA kernel; vkc collects kernels for NVIDIA GPUs")
    prog = program_for(tree)
    notes_before = len(prog.notes)
    module = kernel.module or module_of_file(kernel.file)
    info = prog.module(module)
    if info is None:
        raise ExtractionError(f"{kernel.file} not found in {tree.root}", hint="check the kernel index")
    node, classes = find_def(info, kernel.qualname, kernel.line)
    if node is None:
        raise ExtractionError(f"no function {kernel.qualname} in {kernel.file}",
                              hint="the kernel index and the source tree disagree")
    entry_name = kernel.qualname.split(".")[-1]
    module = _scope_for_nested(prog, info, node, kernel)
    info = prog.module(module)
    decos = [_deco_path(prog, module, d) for d in node.decorator_list]
    if not any(p in JIT_LIKE for p in decos):
        raise ExtractionError(
            f"{kernel.qualified or kernel.qualname}: no decorator resolves to triton.jit / gluon.jit on CUDA",
            hint="the kernel is defined for another platform (e.g. under `if current_platform.is_rocm()`) "
                 "or uses a non-Triton DSL")
    col = Collector(prog)
    fallback_before = prog.used_fallback
    prog.used_fallback = False
    try:
        kind = "jit"
        ref = FuncRef(module, entry_name, kind)
        key = (module, entry_name)
        if classes or info.bindings.get(entry_name) is None or info.bindings[entry_name].node is not node:
            key = (module, "::" + kernel.qualname)
            col.items.pop(key, None)
            from vkc.extract.triton.closure import Item
            it = Item(key, "func", module, entry_name, node, jit=True)
            col.items[key] = it
            col.order.append(key)
            col.queue.append(it)
        else:
            key = col.func_item(ref, node)
        col.run()
    except Unresolved as e:
        raise ExtractionError(f"{kernel.qualname}: {e}", hint="the kernel depends on runtime state") from None
    header = {"vkc_version": vkc.__version__, "vllm_label": tree.label, "file": kernel.file, "line": kernel.line,
              "qualified": kernel.qualified or f"{module}:{kernel.qualname}", "profile": platform_profile.NAME}
    text, names, keys = render_module(col, key, header)
    runtime_fallback = prog.used_fallback
    prog.used_fallback = prog.used_fallback or fallback_before
    notes = list(dict.fromkeys(col.notes + prog.notes[notes_before:]))
    if runtime_fallback:
        notes.append("runtime fallback used: a value came from importing the vLLM module on CPU")
    funcs = [k for k in keys if col.items[k].kind in ("func", "class")]
    helpers = [k for k in funcs if k != key]
    params = _params(info, node, text, names[key])
    handoff = Handoff(
        leaf_symbols=tuple([names[key]] + [names[k] for k in helpers]),
        arg_order=tuple(p["name"] for p in params),
        grid_expr=_grid_expr(kernel),
        meta_params=_meta(prog, module, node, params, kernel),
        guards={},
        smem_formula=None,
        stride_semantics="elements",
        notes=tuple(notes),
    )
    facts = {
        "entry_symbol": names[key],
        "params": params,
        "autotuned": any(p in AUTOTUNE for p in decos),
        "heuristics": any(p in HEURISTICS for p in decos),
        "helpers": [f"{k[0]}.{col.items[k].name}" for k in helpers],
        "closure_modules": sorted({k[0] for k in funcs}),
        "uses_libdevice": "from triton.language.extra import libdevice" in text,
        "runtime_fallback": runtime_fallback,
        "gluon": any(p and "gluon" in p for p in decos),
        "module_file": kernel.file,
    }
    return Extraction(kernel=kernel, kernel_type="triton", source_code=text, handoff=handoff, facts=facts)


JIT_LIKE = {"triton.jit", "triton.runtime.jit", "triton.experimental.gluon.jit", "triton.autotune",
            "triton.heuristics"}


def _deco_path(prog: Program, module: str, d: ast.expr) -> str | None:
    try:
        v = prog.eval(d.func if isinstance(d, ast.Call) else d, module)
    except Unresolved:
        return None
    return v.path if isinstance(v, ExtRef) else None


def _enclosing(tree, node) -> list[ast.FunctionDef]:
    chain: list[ast.FunctionDef] = []

    def rec(n, stack):
        for c in ast.iter_child_nodes(n):
            if c is node:
                chain.extend(stack)
                return True
            st = stack + [c] if isinstance(c, (ast.FunctionDef, ast.AsyncFunctionDef)) else stack
            if rec(c, st):
                return True
        return False
    rec(tree, [])
    return chain


def _scope_for_nested(prog: Program, info, node, kernel) -> str:
    """A kernel defined inside a factory function: allowed when it only uses module globals
    and imports made in the enclosing function; returns the module (or a derived scope)."""
    outer = _enclosing(info.tree, node)
    if not outer:
        return info.name
    imports: list[ast.stmt] = []
    local: set[str] = set()
    for f in outer:
        a = f.args
        local |= {p.arg for p in a.posonlyargs + a.args + a.kwonlyargs + [x for x in (a.vararg, a.kwarg) if x]}
        for st in ast.walk(f):
            if st is node:
                continue
            if isinstance(st, (ast.Import, ast.ImportFrom)):
                imports.append(st)
            elif isinstance(st, ast.Name) and isinstance(st.ctx, ast.Store):
                local.add(st.id)
            elif isinstance(st, (ast.FunctionDef, ast.AsyncFunctionDef)) and st is not node and st not in outer:
                local.add(st.name)
    own = {n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
    own |= {a.arg for a in ast.walk(node) if isinstance(a, ast.arg)}
    free = {n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)} - own
    captured = sorted((free & local) - {node.name})
    if captured:
        raise ExtractionError(
            f"{kernel.qualname} closes over locals of the enclosing function {outer[-1].name} "
            f"({', '.join(captured[:4])}) ({info.file}:{outer[-1].lineno})",
            hint="kernels closing over locals of an enclosing function cannot be made standalone")
    scope = f"{info.name}.<{'.'.join(f.name for f in outer)}>"
    if scope not in prog.modules:
        import copy
        derived = copy.copy(info)
        derived.bindings = dict(info.bindings)
        derived.name = info.name  # relative imports resolve against the real module
        from vkc.extract.triton import modinfo
        modinfo.walk(derived, imports, lambda t: None)
        derived.name = scope
        for b in derived.bindings.values():
            if b.kind in ("import", "importfrom") and b.module == info.name and b.node in imports:
                b.module = scope
        prog.modules[scope] = derived
        prog.notes.append(f"{kernel.qualname} is built by the factory {outer[-1].name}(); extracted as a "
                          f"top-level function with the factory's imports")
    return scope


def _params(info, node: ast.FunctionDef, text: str, entry: str) -> list[dict]:
    """Parameters of the entry, defaults as they appear in the generated module."""
    gen = ast.parse(text)
    fn = next(n for n in ast.walk(gen) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and n.name == entry
              and n.lineno >= 0)
    a = fn.args
    pos = a.posonlyargs + a.args
    defaults = dict(zip([p.arg for p in pos[len(pos) - len(a.defaults):]], a.defaults))
    defaults.update({p.arg: d for p, d in zip(a.kwonlyargs, a.kw_defaults) if d is not None})
    out = []
    for p in pos + a.kwonlyargs:
        ann = source_segment(text, p.annotation) if p.annotation is not None else None
        d = defaults.get(p.arg)
        out.append({"name": p.arg, "annotation": ann,
                    "default": source_segment(text, d) if d is not None else None,
                    "constexpr": bool(ann and ann.replace(" ", "").split(".")[-1] == "constexpr")})
    return out


def _grid_expr(kernel: KernelEntry) -> str:
    for site in kernel.launch_sites:
        m = re.search(r"\[(.*?)\]\s*\(", site.text, re.S)
        if site.form == "grid" and m:
            return m.group(1).strip()
        return " ".join(site.text.split())[:300]  # non-[grid] launch: the launch text itself
    return ""


def _meta(prog, module, node, params, kernel) -> dict:
    meta: dict = {p["name"]: p["default"] for p in params if p["constexpr"]}
    for site in kernel.launch_sites[:1]:
        for opt in ("num_warps", "num_stages"):
            m = re.search(rf"\b{opt}\s*=\s*(\d+)\b", site.text)
            if m:
                meta[opt] = int(m.group(1))
    for d in node.decorator_list:
        path = _deco_path(prog, module, d)
        if path in AUTOTUNE and isinstance(d, ast.Call):
            key = next((k.value for k in d.keywords if k.arg == "key"), None)
            meta["autotune"] = {"key": source_segment(prog.module(module).text, key) if key else None,
                                "note": "configs chosen by the autotuner at launch"}
        if path in HEURISTICS and isinstance(d, ast.Call) and d.args and isinstance(d.args[0], ast.Dict):
            meta.setdefault("heuristics", [])
            meta["heuristics"] += [k.value for k in d.args[0].keys if isinstance(k, ast.Constant)]
    return meta
