"""Per-file static model of a csrc file: kernel definitions and launch sites (found by
:mod:`vkc.cxx.launches`)."""
from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from vkc.cxx import pp, ts
from vkc.cxx.launches import Launch, enclosing_function, function_ranges, launches_in, macro_defs, macro_launches
from vkc.cxx.text import line_of, split_top

CXX_SUFFIXES = (".cu", ".cuh", ".h", ".hpp", ".inl", ".cpp", ".cc", ".c", ".cxx")
_GLOBAL = re.compile(r"\b__global__\b")
_ROCM_BUILTIN = re.compile(
    r"\b(__builtin_amdgcn_\w+|__gfx\w*__|__hip_\w+|hip[A-Z]\w+|__builtin_nontemporal_\w+|"
    r"__lds\w*|__builtin_amdgcn|amd_mfma\w*|__llvm_amdgcn\w*|__ockl_\w+|__ocml_\w+)\b")


@dataclass
class KernelDef:
    name: str
    qualname: str
    line: int
    end_line: int
    template_params: tuple[str, ...]
    start: int             # char offsets of the definition (template header included) in the view text
    end: int
    params: list[tuple[str, str]]   # (type, name) in order
    rocm_only: bool = False
    body: str = ""


@dataclass
class FileModel:
    relpath: str
    text: str                        # CUDA view (build-config conditionals resolved)
    rocm_text: str
    kernels: list[KernelDef]
    launches: list[Launch]
    functions: list[tuple[int, int, str]]   # (start, end, name) of function definitions
    macros: dict[str, tuple[tuple[str, ...], str, int]]  # name -> (params, body, line)


def _params(fn: ts.Node, data: bytes) -> list[tuple[str, str]]:
    d = fn.child_by_field_name("declarator")
    while d is not None and d.type != "function_declarator":
        d = d.child_by_field_name("declarator")
    out: list[tuple[str, str]] = []
    if d is None:
        return out
    plist = d.child_by_field_name("parameters")
    if plist is None:
        return out
    for p in plist.named_children:
        if p.type not in ("parameter_declaration", "optional_parameter_declaration"):
            continue
        full = " ".join(ts.text_of(p, data).split())
        name = None
        for n in ts.walk(p):
            if n.type == "identifier":
                name = ts.text_of(n, data)
        if name is None:
            out.append((full, ""))
            continue
        # type = declaration text minus the (last) name
        idx = full.rfind(name)
        typ = (full[:idx] + full[idx + len(name):]).strip()
        if "=" in typ:
            typ = typ.split("=")[0].strip()
        out.append((" ".join(typ.split()), name))
    return out


def _namespaces(node: ts.Node, data: bytes) -> list[str]:
    out = []
    p = node.parent
    while p is not None:
        if p.type == "namespace_definition":
            n = p.child_by_field_name("name")
            if n is not None:
                out.append(ts.text_of(n, data))
        p = p.parent
    return list(reversed(out))


def _in_error(node: ts.Node) -> bool:
    p = node.parent
    while p is not None:
        if p.type == "ERROR":
            return True
        p = p.parent
    return False


def _scan_tree(relpath: str, text: str, rocm_view: bool) -> tuple[list[KernelDef], list[ts.Node],
                                                                  tuple[bytes, Callable[[int], int]]]:
    tree, data = ts.parse(text)
    b2c = ts.byte_to_char(data)
    kernels: list[KernelDef] = []
    masked = None
    for n in ts.walk(tree.root_node, skip=("compound_statement",)):
        if n.type != "function_definition":
            continue
        body = n.child_by_field_name("body")
        if body is None:
            continue
        head = text[b2c(n.start_byte):b2c(body.start_byte)]
        if not _GLOBAL.search(head) and not (n.prev_sibling is not None and n.prev_sibling.type == "ERROR"
                                              and _GLOBAL.search(ts.text_of(n.prev_sibling, data))):
            continue
        name = ts.decl_name(n, data)
        if not name:
            continue
        start_node = n.parent if n.parent is not None and n.parent.type == "template_declaration" else n
        tparams: tuple[str, ...] = ()
        if start_node is not n:
            pl = start_node.child_by_field_name("parameters")
            if pl is not None:
                tparams = tuple(" ".join(ts.text_of(c, data).split()) for c in pl.named_children
                                if c.type != "comment")
        bare = name.split("::")[-1]
        ns = _namespaces(n, data)
        if _in_error(n):
            # error recovery may detach the definition from its namespace: read the text
            if masked is None:
                masked = _mask_comments(ts.presubstitute(text))
            ns = _text_namespaces(masked, b2c(start_node.start_byte))
        qual = "::".join(ns + [name])
        # the line of the __global__ keyword's declaration (after any template header)
        line = line_of(text, b2c(n.start_byte))
        # error recovery can stretch a definition whose braces are split by #if over the
        # following code: the textual brace match bounds it
        bstart, kend = b2c(body.start_byte), b2c(n.end_byte)
        if masked is None:
            masked = _mask_comments(ts.presubstitute(text))
        tend = _match_brace(masked, bstart) if masked[bstart:bstart + 1] == "{" else kend
        kend = min(kend, tend)
        src_head = text[b2c(n.start_byte):b2c(body.start_byte)]
        kernels.append(KernelDef(
            name=bare, qualname=qual, line=line, end_line=line_of(text, max(kend - 1, 0)),
            template_params=tparams, start=b2c(start_node.start_byte), end=kend,
            params=_params(n, data), rocm_only=rocm_view or relpath.startswith("csrc/rocm/"),
            body=text[bstart:kend]))
        del src_head
    kernels += _fallback_kernels(relpath, text, kernels, rocm_view, tree.root_node, data, b2c)
    return kernels, [tree.root_node], (data, b2c)


def _mask_comments(text: str) -> str:
    return re.sub(r"//[^\n]*|/\*.*?\*/", lambda m: re.sub(r"[^\n]", " ", m.group(0)), text, flags=re.S)


def _match_brace(s: str, i: int) -> int:
    """Index just past the brace/paren group opening at s[i]."""
    pairs = {"{": "}", "(": ")", "<": ">"}
    o, c = s[i], pairs[s[i]]
    depth = 0
    while i < len(s):
        if s[i] == o:
            depth += 1
        elif s[i] == c:
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    return len(s)


def _text_namespaces(masked: str, off: int) -> list[str]:
    out = []
    for m in re.finditer(r"\bnamespace\s+([A-Za-z_][\w:]*)\s*\{", masked[:off]):
        depth = 1   # still open at ``off`` only if its brace never closes before
        for ch in masked[m.end():off]:
            if ch == "{":
                depth += 1
            elif ch == "}":
                depth -= 1
                if depth == 0:
                    break
        if depth > 0:
            out.append(m.group(1))
    return out


def _fallback_kernels(relpath, text, found, rocm_view, root, data, b2c) -> list[KernelDef]:
    """Textual fallback for definitions tree-sitter could not parse (braces split by #if)."""
    masked = _mask_comments(ts.presubstitute(text))
    spans = [(k.start, k.end) for k in found]
    out: list[KernelDef] = []
    for m in _GLOBAL.finditer(masked):
        if any(s <= m.start() < e for s, e in spans):
            continue
        a, b = masked.find("{", m.end()), masked.find(";", m.end())
        if a < 0 or (0 <= b < a):
            continue
        head = masked[m.end():a]
        po = head.find("(")
        if po < 0:
            continue
        names = re.findall(r"[A-Za-z_]\w*", head[:po])
        if not names:
            continue
        name = names[-1]
        pend = _match_brace(head, po)
        end = _match_brace(masked, a)
        # template header right before __global__ (optionally 'static')
        before = masked[:m.start()].rstrip()
        start = m.start()
        tparams: tuple[str, ...] = ()
        for kw in ("static", "inline"):
            if before.endswith(kw):
                before = before[: -len(kw)].rstrip()
        if before.endswith(">"):
            t = before.rfind("template")
            if t >= 0 and re.fullmatch(r"template\s*<.*>", before[t:], re.S):
                start = t
                inner = before[t:][before[t:].find("<") + 1:-1]
                tparams = tuple(" ".join(x.split()) for x in split_top(inner))
        params = []
        for p in split_top(head[po + 1:pend - 1]):
            ids = re.findall(r"[A-Za-z_]\w*", p.split("=")[0])
            nm = ids[-1] if ids else ""
            i = p.rfind(nm)
            params.append((" ".join((p[:i] + p[i + len(nm):]).split()), nm))
        line = line_of(text, m.start())
        ns = _text_namespaces(masked, m.start())
        out.append(KernelDef(
            name=name, qualname="::".join(ns + [name]), line=line, end_line=line_of(text, end - 1),
            template_params=tparams, start=start, end=end, params=params,
            rocm_only=rocm_view or relpath.startswith("csrc/rocm/"), body=text[a:end]))
        spans.append((m.start(), end))
    return out


def build_file_model(root: Path, relpath: str) -> FileModel:
    raw = (root / relpath).read_text(encoding="utf-8", errors="replace")
    cuda_text, _ = pp.evaluate_conditionals(raw, pp.CUDA)
    rocm_text, _ = pp.evaluate_conditionals(raw, pp.ROCM)
    kernels, roots, (data, b2c) = _scan_tree(relpath, cuda_text, False)
    seen = {(k.line, k.name) for k in kernels}
    launches: list[Launch] = []
    functions = function_ranges(roots[0], data, b2c)
    launches += launches_in(cuda_text, roots[0], data, b2c, relpath)
    has_rocm_only = rocm_text != cuda_text
    if has_rocm_only:
        rk, rroots, (rdata, rb2c) = _scan_tree(relpath, rocm_text, True)
        for k in rk:
            if (k.line, k.name) not in seen:
                kernels.append(k)
        lines_seen = {la.line for la in launches}
        for la in launches_in(rocm_text, rroots[0], rdata, rb2c, relpath):
            if la.line not in lines_seen:
                launches.append(la)
        rfun = function_ranges(rroots[0], rdata, rb2c)
    else:
        rfun = functions
    hip_file = bool(re.search(r"^\s*#\s*include\s*<hip/", cuda_text, re.M))
    for k in kernels:
        if not k.rocm_only and (hip_file or _ROCM_BUILTIN.search(k.body)):
            k.rocm_only = True
    for la in launches:
        la.wrapper = enclosing_function(functions, la.start) or enclosing_function(rfun, la.start)
    macros = macro_defs(cuda_text)
    for name, (params, body, mline) in macro_defs(rocm_text).items():
        macros.setdefault(name, (params, body, mline))
    launches += macro_launches(relpath, cuda_text, macros, functions)
    kernels.sort(key=lambda k: k.line)
    launches.sort(key=lambda la: (la.line, la.start))
    return FileModel(relpath, cuda_text, rocm_text, kernels, launches, functions, macros)


@lru_cache(maxsize=512)
def file_model(root: str, relpath: str) -> FileModel:
    """Cached model of ``root/relpath`` (root: the tree root holding csrc/)."""
    return build_file_model(Path(root), relpath)
