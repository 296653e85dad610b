"""Render a CUDA :class:`~vkc.invoke.cuda.plan.Plan` into its host program (``<stem>_main.cu``).

Templates come from the one environment (:mod:`vkc.templating`): ``vkc.invoke.cuda/host.cu.j2``
for single-GPU programs, or the recipe's own ``template`` (the multi-GPU all-reduce program),
whose extra context its recipe module provides.  Every program is parsed with tree-sitter-cuda
after rendering; a syntax error is a vkc bug (InvocationError).
"""
from __future__ import annotations

import zlib
from collections.abc import Mapping
from typing import Any

import jinja2

from vkc.errors import InvocationError
from vkc.invoke.core.recipe import Recipe
from vkc.invoke.cuda.literals import comment_text, cpp_str
from vkc.invoke.cuda.plan import Buffer, Plan, Stmt
from vkc.invoke.cuda.recipe_path import recipe_template_context
from vkc.templating import render
from vkc.toolchain.nvcc import instantiation_line

__all__ = ["HOST_TEMPLATE", "MARKER", "instantiation_marker", "render_program", "type_includes"]

HOST_TEMPLATE = "vkc.invoke.cuda/host.cu.j2"
MARKER = "// VKC_INSTANTIATE: "
_COPIED = ("csrc/", "vllm/")          # origins that are files of the vLLM tree: "// from <file>:<line>"
_TYPE_HEADERS = (("c10::BFloat16", "torch/headeronly/util/BFloat16.h"), ("c10::Half", "torch/headeronly/util/Half.h"),
                 ("c10::Float8_e4m3fn", "torch/headeronly/util/Float8_e4m3fn.h"))


def instantiation_marker(instantiation: str) -> str:
    """The verifier's marker line for ``qualname<args>`` (:func:`vkc.toolchain.nvcc.instantiation_line`)."""
    name, _, args = instantiation.partition("<")
    return instantiation_line(name, args[:-1] if args else None)


def type_includes(plan: Plan) -> list[str]:
    """Torch header-only type headers the host side names (the unit may be generic in them)."""
    text = " ".join((*plan.template_args, *(b.ctype for b in plan.buffers), *(s.code for s in plan.consts)))
    return [h for t, h in _TYPE_HEADERS if t in text]


def render_program(plan: Plan, header: list[str], *, recipe: Recipe | None, stem: str, name: str, model_id: str,
                   workload: str, check: Mapping[str, Any] | None = None) -> str:
    """The host program: ``header`` (comment lines), the unit include, the marker, the launch; ``check``: the
    reference check's context (:func:`vkc.invoke.cuda.refcheck.check_context`), host template only."""
    ctx = _common_context(plan, header, stem=stem, name=name, model_id=model_id, workload=workload)
    if recipe is not None and recipe.template:
        template = recipe.template
        ctx.update(recipe_template_context(recipe, plan))
    else:
        template = HOST_TEMPLATE
        ctx.update(_host_context(plan, check or {}))
    try:
        code = render(template, **ctx)
    except jinja2.UndefinedError as e:  # a recipe bug, not a user error
        raise InvocationError(f"invocation template for {name} is incomplete: {e}") from e
    _parse_check(code, name)
    return code


def _common_context(plan: Plan, header: list[str], *, stem: str, name: str, model_id: str,
                    workload: str) -> dict[str, Any]:
    return {
        "header": header, "unit": f"{stem}.cu", "marker": instantiation_marker(plan.instantiation),
        "consts": [_stmt(s) for s in plan.consts], "launch_stmts": [_stmt(s) for s in plan.launch_stmts],
        "kernel_name": comment_text(name).replace('"', "").replace("%", ""),
        "kernel_name_lit": cpp_str(name), "model_lit": cpp_str(model_id), "workload_lit": cpp_str(workload),
    }


def _host_context(plan: Plan, check: Mapping[str, Any]) -> dict[str, Any]:
    buffers = [_buffer(b) for b in plan.buffers]
    dump_names = set(plan.dump) if plan.dump else {b.name for b in plan.buffers}
    if check.get("reference"):    # the check reads every buffer's dump
        dump_names = {b.name for b in plan.buffers}
    values = list(plan.dump_values) + [v for v in check.get("reference_values", ()) if v not in plan.dump_values]
    return {
        "reference": bool(check.get("reference")), "check_lines": list(check.get("check_lines", ())),
        "poison": list(check.get("poison", ())),
        "instantiation": plan.instantiation, "type_includes": type_includes(plan), "min_gpus": plan.min_gpus,
        "scale": plan.scale, "derived": [_stmt(s) for s in plan.derived], "buffers": buffers,
        "dump_buffers": [b for b in buffers if b["name"] in dump_names], "dump_values": values,
        "checks": plan.checks, "set_attributes": [_stmt(s) for s in plan.set_attributes],
        "grid": plan.grid, "block": plan.block, "smem": plan.smem, "args": list(plan.args),
        "bytes_moved": _bytes_moved(plan),
    }


def _stmt(s: Stmt) -> dict[str, Any]:
    comments = []
    if s.origin:
        comments.append(("from " if s.origin.startswith(_COPIED) else "") + s.origin)
    if s.note:
        comments.append(s.note)
    return {"code": s.code, "comments": [comment_text(c) for c in comments]}


def _buffer(b: Buffer) -> dict[str, Any]:
    return {
        "name": b.name, "ctype": b.ctype, "count": b.count, "shape": comment_text(b.shape),
        "fill_text": comment_text(b.fill.describe()), "kind": b.fill.kind, "a": b.fill.a, "b": b.fill.b,
        "c": b.fill.c, "seed": zlib.crc32(b.name.encode()), "code_lines": b.fill.code.strip().splitlines(),
        "role": b.role, "ctype_text": "".join(ch for ch in b.ctype if ch.isalnum() or ch in ":_"),
        "is_float": any(k in b.ctype.lower() for k in _FLOAT_MARKS),
    }


_FLOAT_MARKS = ("float", "double", "half", "bfloat16", "fp8", "e4m3", "e5m2")


def _bytes_moved(plan: Plan) -> str:
    if plan.bytes_moved:
        return plan.bytes_moved
    mult = {"in": 1, "out": 1, "inout": 2, "ws": 0}
    terms = [f"{mult[b.role]}.0 * n_{b.name} * sizeof({b.ctype})" for b in plan.buffers if mult[b.role]]
    return " + ".join(terms) or "0"


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
            return int(n.start_point[0]) + 1
        stack.extend(n.children)
    return 0
