"""Entry: :func:`invoke_cuda` -- a complete C++ host program for one extracted CUDA kernel.

File conventions (the writer/verifier rely on them):

* kernel unit:          ``<stem>.cu``       (stem = ``vkc.write.names.safe_stem(name)``)
* invocation example:   ``<stem>_main.cu``  (``#include "<stem>.cu"`` is its first include)
* binary:               ``<stem>``
* marker line:          ``// VKC_INSTANTIATE: <qualified kernel><<args>>``
"""
from __future__ import annotations

import dataclasses
import zlib
from functools import lru_cache
from typing import Any

import jinja2

import vkc
from vkc.errors import InvocationError
from vkc.invoke.cuda import generic
from vkc.invoke.cuda.dims import Dims, resolve
from vkc.invoke.cuda.recipes import Ctx, find
from vkc.invoke.cuda.spec import Buffer, Plan, Stmt, comment_text, cpp_str
from vkc.records import Extraction, Invocation, ModelConfig, SourceTree
from vkc.write.names import safe_stem

NVCC_FLAGS = ("-std=c++17 -arch=sm_90 --expt-relaxed-constexpr --expt-extended-lambda -DENABLE_FP8")
TORCH_INCLUDE = ("-I$(python -c 'import torch,os;print(os.path.join(os.path.dirname(torch.__file__),"
                 "\"include\"))')")
MARKER = "// VKC_INSTANTIATE: "


def main_file_name(stem: str) -> str:
    """File name of the invocation example for a kernel unit ``<stem>.cu``."""
    return f"{stem}_main.cu"


def build_command(stem: str, include_flags: tuple[str, ...] = ()) -> str:
    extra = "".join(f" {f}" for f in include_flags)
    return f"nvcc {NVCC_FLAGS} {TORCH_INCLUDE}{extra} -o {stem} {main_file_name(stem)}"


def instantiation_marker(instantiation: str) -> str:
    """The verifier's marker line (vkc.verify.cuda_compile.instantiation_line when present)."""
    try:
        from vkc.verify.cuda_compile import instantiation_line
    except ImportError:  # pragma: no cover - the verifier is optional
        return MARKER + instantiation
    name, _, args = instantiation.partition("<")
    return instantiation_line(name, args[:-1] if args else None)


@lru_cache(maxsize=1)
def _env() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("vkc.invoke.cuda", "templates"),
        undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
        keep_trailing_newline=True, autoescape=False)


def qualified_name(extraction: Extraction) -> str:
    k = extraction.kernel
    return k.qualified or f"{k.file}:{k.name}"


def invoke_cuda(tree: SourceTree, extraction: Extraction, model: ModelConfig, workload: str | None, *,
                command: str, name: str) -> Invocation:
    """Build the invocation example (host program) for ``extraction`` at ``model``'s shapes."""
    if extraction.kernel_type != "cuda":
        raise InvocationError(f"{name} is a {extraction.kernel_type} kernel, not CUDA")
    if workload not in (None, "prefill", "decode"):
        raise InvocationError(f"unknown workload {workload!r}", hint="use prefill or decode")
    stem = safe_stem(name)
    qual = qualified_name(extraction)
    dims = resolve(model)
    recipe = find(qual)
    inferred = workload is None
    if recipe is not None:
        wl = workload or recipe.default_workload
        recipe.check_workload(qual, wl)
        plan = recipe.build(Ctx(tree, extraction, dims, wl, qual))
        if extraction.kernel.qualname and extraction.kernel.qualname != plan.kernel_symbol:
            # the extractor knows the namespace the unit declares the kernel in
            plan = dataclasses.replace(plan, kernel_symbol=extraction.kernel.qualname)
        why = (f"inferred: {qual} runs in {' and '.join(recipe.workloads)}; "
               f"{recipe.default_workload} is the default") if inferred else "given"
    else:
        wl = workload or "prefill"
        plan = generic.build(Ctx(tree, extraction, dims, wl, qual))
        why = "inferred: generic default" if inferred else "given"
    include_flags = tuple(str(f) for f in extraction.facts.get("include_flags", ()) or ()
                          if "TORCH_INCLUDE" not in str(f))  # the torch include is always given
    header = _header(tree, extraction, model, dims, wl, why, plan, command, stem, include_flags)
    if recipe is not None and recipe.family == "allreduce":  # multi-GPU program: its own template
        from vkc.invoke.cuda.recipes.allreduce import render as render_allreduce
        code = render_allreduce(_env(), plan, header, stem=stem, name=name, model_id=model.model_id, workload=wl,
                                marker=instantiation_marker(plan.instantiation))
    else:
        code = _render(plan, header, stem, name, model.model_id, wl)
    _parse_check(code, name)
    handoff = dataclasses.replace(
        extraction.handoff,
        grid_expr=plan.grid_expr or extraction.handoff.grid_expr,
        meta_params={**dict(extraction.handoff.meta_params), "template_args": list(plan.template_args),
                     "instantiation": plan.instantiation, "block": plan.block_expr},
        smem_formula=plan.smem_expr if plan.smem_expr not in ("", "0") else extraction.handoff.smem_formula,
    )
    facts: dict[str, Any] = {
        "unit_file": f"{stem}.cu", "main_file": main_file_name(stem), "binary": stem,
        "build_command": build_command(stem, include_flags), "instantiation": plan.instantiation,
        "marker": instantiation_marker(plan.instantiation), "type_includes": _type_includes(plan), "recipe": "generic" if plan.untraced else qual,
        "untraced": plan.untraced, "workload_inferred": inferred, "min_gpus": plan.min_gpus,
        "grid": plan.grid_expr, "block": plan.block_expr, "smem": plan.smem_expr,
    }
    return Invocation(code=code, handoff=handoff, workload=wl, model_id=model.model_id,
                      header="\n".join(f"// {h}" for h in header), facts=facts)


# ---------------------------------------------------------------- header
def _n(v: Any) -> str:
    return "n/a" if v is None else str(v)


def _header(tree: SourceTree, ex: Extraction, model: ModelConfig, d: Dims, wl: str, why: str, plan: Plan,
            command: str, stem: str, include_flags: tuple[str, ...]) -> list[str]:
    k = ex.kernel
    launch = ex.facts.get("launch") or {}
    h = [
        f"vkc {vkc.__version__} -- invocation example (CUDA host program) for one vLLM kernel"
        + (" [untraced/generic: no recipe for this kernel; compile-only quality]" if plan.untraced else ""),
        f"vLLM: {tree.version} ({tree.origin})",
        f"KERNEL: {plan.kernel_symbol} at {k.file}:{k.line}",
        f"WRAPPER: {plan.wrapper or 'n/a'}",
    ]
    if launch.get("file"):
        h.append(f"LAUNCH SITE (extractor): {launch.get('file')}:{launch.get('line')} ({launch.get('wrapper')})")
    h += [
        f"MODEL_NAME: {model.model_id}",
        f"  H_q={_n(d.h_q)} H_kv={_n(d.h_kv)} Dh={_n(d.head_dim)} hidden_size={d.hidden} max_ctx={d.max_ctx} "
        f"dtype={d.dtype}",
        f"  intermediate_size={_n(d.intermediate)} num_experts={_n(d.num_experts)} top_k={_n(d.topk)} "
        f"moe_intermediate_size={_n(d.moe_intermediate)} kv_lora_rank={_n(d.kv_lora_rank)} "
        f"qk_rope_head_dim={_n(d.qk_rope_head_dim)} rms_norm_eps={d.eps}",
        f"  flags: {', '.join(d.flags) or 'none'}",
    ]
    h += [f"  warning: {w}" for w in d.warnings]
    h += [
        f"WORKLOAD: {wl} ({why})",
        f"INSTANTIATION: {plan.instantiation}",
        f"  dispatch: {plan.dispatch or 'n/a'}",
        f"GRID: {plan.grid_expr or plan.grid}  BLOCK: {plan.block_expr or plan.block}  "
        f"SMEM: {plan.smem_expr or plan.smem} bytes",
        f"SIZING: {plan.scale.name} fills ~20% of free GPU memory clamped to [2 GiB, 8 GiB]"
        f" (SMALL_SANITY=1: {plan.scale.small}); {plan.scale.note}" if plan.min_gpus == 1 else
        f"SIZING: {plan.scale.note} (SMALL_SANITY=1: {plan.scale.name}={plan.scale.small})",
    ]
    h += [f"CONFIG: {s}" for s in model.sources] or ["CONFIG: n/a"]
    h += [
        f"COMMAND: {command}",
        f"BUILD: {build_command(stem, include_flags)}",
        f"RUN: ./{stem}   (env: SMALL_SANITY=1 small shapes; VKC_DUMP_DIR=<dir> dumps buffers + manifest.txt)"
        if plan.min_gpus == 1 else
        f"RUN: ./{stem}   (env: SMALL_SANITY=1 small sizes; VKC_WORLD_SIZE=2|4|6|8 ranks, default the largest "
        f"that fits the visible GPUs; VKC_ITERS=<n>; exit code 2 with fewer than {plan.min_gpus} GPUs)",
        "PRINTS: RESULT kernel=<name> model=<id> workload=<w> config=FULL|SMALL time_ms=<x> GB/s=<y>",
    ]
    h += [f"NOTE: {n}" for n in plan.notes]
    return [comment_text(x) for x in h]


# ---------------------------------------------------------------- render
def _stmt(s: Stmt) -> dict[str, Any]:
    comments = []
    if s.origin:
        comments.append(("from " if s.origin.startswith("csrc/") else "") + s.origin)
    if s.note:
        comments.append(s.note)
    return {"code": s.code, "comments": [comment_text(c) for c in comments]}


def _buffer(b: Buffer) -> dict[str, Any]:
    return {
        "name": b.name, "ctype": b.ctype, "count": b.count, "shape": comment_text(b.shape),
        "fill_text": comment_text(b.fill.describe()), "kind": b.fill.kind, "a": b.fill.a, "b": b.fill.b,
        "c": b.fill.c, "seed": zlib.crc32(b.name.encode()), "code_lines": b.fill.code.strip().splitlines(),
        "role": b.role, "ctype_text": "".join(ch for ch in b.ctype if ch.isalnum() or ch in ":_"),
    }


def _bytes_moved(plan: Plan) -> str:
    if plan.bytes_moved:
        return plan.bytes_moved
    mult = {"in": 1, "out": 1, "inout": 2, "ws": 0}
    terms = [f"{mult[b.role]}.0 * n_{b.name} * sizeof({b.ctype})" for b in plan.buffers if mult[b.role]]
    return " + ".join(terms) or "0"


_TYPE_HEADERS = (("c10::BFloat16", "torch/headeronly/util/BFloat16.h"), ("c10::Half", "torch/headeronly/util/Half.h"),
                 ("c10::Float8_e4m3fn", "torch/headeronly/util/Float8_e4m3fn.h"))


def _type_includes(plan: Plan) -> list[str]:
    """Torch header-only type headers the host side names (the unit may be generic in them)."""
    text = " ".join((*plan.template_args, *(b.ctype for b in plan.buffers), *(s.code for s in plan.consts)))
    return [h for t, h in _TYPE_HEADERS if t in text]


def _render(plan: Plan, header: list[str], stem: str, name: str, model_id: str, wl: str) -> str:
    buffers = [_buffer(b) for b in plan.buffers]
    dump_names = set(plan.dump) if plan.dump else {b.name for b in plan.buffers}
    ctx = {
        "header": header, "unit": f"{stem}.cu", "instantiation": plan.instantiation,
        "marker": instantiation_marker(plan.instantiation), "type_includes": _type_includes(plan),
        "min_gpus": plan.min_gpus, "kernel_name": comment_text(name).replace('"', "").replace("%", ""),
        "consts": [_stmt(s) for s in plan.consts], "scale": plan.scale,
        "derived": [_stmt(s) for s in plan.derived], "buffers": buffers,
        "dump_buffers": [b for b in buffers if b["name"] in dump_names],
        "dump_values": list(plan.dump_values),
        "checks": plan.checks, "launch_stmts": [_stmt(s) for s in plan.launch_stmts],
        "set_attributes": [_stmt(s) for s in plan.set_attributes],
        "grid": plan.grid, "block": plan.block, "smem": plan.smem, "args": list(plan.args),
        "bytes_moved": _bytes_moved(plan), "kernel_name_lit": cpp_str(name),
        "model_lit": cpp_str(model_id), "workload_lit": cpp_str(wl),
    }
    try:
        return _env().get_template("host.cu.j2").render(**ctx)
    except jinja2.UndefinedError as e:  # a recipe bug, not a user error
        raise InvocationError(f"invocation template for {name} is incomplete: {e}") from e


def _parse_check(code: str, name: str) -> None:
    """Parse the program with tree-sitter-cuda; a syntax error is a vkc bug."""
    try:
        import tree_sitter as ts
        import tree_sitter_cuda as tsc
    except ImportError:  # pragma: no cover - both are dependencies
        return
    tree = ts.Parser(ts.Language(tsc.language())).parse(code.encode())
    if tree.root_node.has_error:
        line = _first_error_line(tree.root_node)
        raise InvocationError(f"generated host program for {name} does not parse (line {line})",
                              hint="this is a vkc bug; please report it with the command line")


def _first_error_line(node: Any) -> int:
    stack = [node]
    while stack:
        n = stack.pop(0)
        if n.type == "ERROR" or n.is_missing:
            return n.start_point[0] + 1
        stack.extend(n.children)
    return 0
