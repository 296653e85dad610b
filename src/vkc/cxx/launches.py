"""Kernel launch sites in C++ source: chevron launches, ``cudaLaunchKernelEx`` /
``hipLaunchKernelGGL`` calls, and launches inside ``#define`` bodies."""
from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from vkc.cxx import pp, ts
from vkc.cxx.text import line_of, split_top

__all__ = ["LAUNCH_API", "Launch", "enclosing_function", "function_ranges", "launches_in", "macro_defs",
           "macro_launches"]

LAUNCH_API = {"cudaLaunchKernelEx": "launch_ex", "hipLaunchKernelGGL": "launch_ex"}


@dataclass
class Launch:
    file: str
    line: int
    form: str                       # chevron | launch_ex | macro
    wrapper: str | None
    text: str
    callee: str                     # callee expression text (template args included)
    base: str                       # bare callee identifier
    template_args: str | None
    config: list[str]               # chevron: grid, block[, smem[, stream]]; launch_ex: config expr
    args: list[str]
    start: int                      # char offset of the launch statement in the view text
    macro: str | None = None        # name of the #define holding the launch
    macro_params: tuple[str, ...] = ()
    kernels: list[str] = field(default_factory=list)   # resolved kernel bare names


def _base_name(expr: str) -> str:
    e = expr.strip().lstrip("&*(").strip()
    e = re.sub(r"^\(\s*void\s*\*\s*\)", "", e).strip().lstrip("&")
    head = e.split("<", 1)[0]
    head = head.split("::")[-1].strip().rstrip(")")
    return head


def _template_args(callee: str) -> str | None:
    i = callee.find("<")
    if i < 0:
        return None
    j = callee.rfind(">")
    return " ".join(callee[i + 1:j].split()) if j > i else None


def macro_defs(text: str) -> dict[str, tuple[tuple[str, ...], str, int]]:
    out: dict[str, tuple[tuple[str, ...], str, int]] = {}
    lines = text.split("\n")
    for s, e in pp.logical_lines(lines):
        m = re.match(r"\s*#\s*define\s+(\w+)(\(([^)]*)\))?\s?(.*)$", "\n".join(lines[s:e]), re.S)
        if not m:
            continue
        params = tuple(p.replace("\\", " ").strip() for p in m.group(3).split(",")) if m.group(2) else ()
        body = m.group(4)
        out.setdefault(m.group(1), (params, body, s + 1))
    return out


def launches_in(text: str, root: ts.Node, data: bytes, b2c: Callable[[int], int], relpath: str,
                 base_offset: int = 0, base_text: str | None = None) -> list[Launch]:
    out: list[Launch] = []
    full = base_text if base_text is not None else text
    for n in ts.walk(root):
        if n.type != "call_expression":
            continue
        fn = n.child_by_field_name("function")
        if fn is None:
            continue
        ks = next((c for c in n.children if c.type == "kernel_call_syntax"), None)
        argl = n.child_by_field_name("arguments")
        args = split_top(ts.text_of(argl, data)[1:-1]) if argl is not None else []
        if ks is not None:
            callee = ts.text_of(fn, data)
            cfg = split_top(ts.text_of(ks, data)[3:-3])
            form = "chevron"
        else:
            fname = ts.text_of(fn, data)
            if fname not in LAUNCH_API or not args:
                continue
            form = LAUNCH_API[fname]
            if fname == "hipLaunchKernelGGL":
                callee, cfg, args = args[0], args[1:5], args[5:]
            else:
                callee, cfg, args = args[1], [args[0]], args[2:]
        stmt = n
        while stmt.parent is not None and stmt.parent.type not in (
                "compound_statement", "translation_unit", "declaration_list", "if_statement",
                "for_statement", "while_statement"):
            if stmt.type in ("expression_statement", "return_statement", "declaration"):
                break
            stmt = stmt.parent
        off = base_offset + b2c(stmt.start_byte)
        out.append(Launch(
            file=relpath, line=line_of(full, off), form=form, wrapper=None,
            text=ts.text_of(stmt, data), callee=" ".join(callee.split()), base=_base_name(callee),
            template_args=_template_args(" ".join(callee.split())), config=cfg, args=args, start=off))
    return out


def function_ranges(root: ts.Node, data: bytes, b2c: Callable[[int], int]) -> list[tuple[int, int, str]]:
    out: list[tuple[int, int, str]] = []
    for n in ts.walk(root):
        if n.type == "function_definition":
            name = ts.decl_name(n, data)
            if name:
                out.append((b2c(n.start_byte), b2c(n.end_byte), name))
    return out


def enclosing_function(functions: list[tuple[int, int, str]], off: int) -> str | None:
    best = None
    for s, e, name in functions:
        if s <= off < e and (best is None or s >= best[0]):
            best = (s, e, name)
    return best[2] if best else None


def macro_launches(relpath: str, text: str, macros: dict[str, tuple[tuple[str, ...], str, int]],
                   functions: list[tuple[int, int, str]]) -> list[Launch]:
    out: list[Launch] = []
    lines = text.split("\n")
    for name, (params, body, mline) in sorted(macros.items(), key=lambda kv: kv[1][2]):
        if "<<<" not in body and "cudaLaunchKernelEx" not in body and "hipLaunchKernelGGL" not in body:
            continue
        flat = body.replace("\\\n", " \n")
        wrapped = "void __vkc_macro__() {\n" + flat + "\n;}\n"
        tree, data = ts.parse(wrapped)
        b2c = ts.byte_to_char(data)
        # offset of body inside the file: the define line start + prefix
        define_line = lines[mline - 1]
        body_off = sum(len(x) + 1 for x in lines[:mline - 1]) + define_line.find(body.split("\n")[0][:20] or "")
        prefix = len("void __vkc_macro__() {\n")
        for la in launches_in(wrapped, tree.root_node, data, b2c, relpath):
            rel = la.start - prefix
            la.line = mline + flat.count("\n", 0, max(rel, 0))
            la.start = body_off + max(rel, 0)
            la.form = "macro"
            la.macro = name
            la.macro_params = params
            # wrapper: the function holding the first use of the macro
            use = re.compile(r"\b" + re.escape(name) + r"\b")
            for m in use.finditer(text):
                if line_of(text, m.start()) == mline:
                    continue
                w = enclosing_function(functions, m.start())
                if w:
                    la.wrapper = w
                    break
            out.append(la)
    return out
