"""Split evaluated C++/CUDA files into namespace-scope items and compute the identifier
closure of a kernel (the unit of a file and its repo headers: :mod:`vkc.extract.cuda.unit`)."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from vkc.cxx import pp, ts
from vkc.cxx.text import line_of

_IDENT = re.compile(r"[A-Za-z_]\w*")
_KEYWORDS = frozenset(["alignas", "alignof", "asm", "auto", "bool", "break", "case", "catch", "char", "class", "const", "constexpr", "const_cast", "continue", "decltype", "default", "delete", "do", "double", "dynamic_cast", "else", "enum", "explicit", "export", "extern", "false", "float", "for", "friend", "goto", "if", "inline", "int", "long", "mutable", "namespace", "new", "noexcept", "nullptr", "operator", "private", "protected", "public", "register", "reinterpret_cast", "return", "short", "signed", "sizeof", "static", "static_assert", "static_cast", "struct", "switch", "template", "this", "throw", "true", "try", "typedef", "typeid", "typename", "union", "unsigned", "using", "virtual", "void", "volatile", "while", "defined", "__global__", "__device__", "__host__", "__shared__", "__constant__", "__forceinline__", "__restrict__", "if_constexpr", "define", "undef", "include", "pragma", "endif", "ifdef", "ifndef", "elif"])
CONTAINER_TYPES = ("namespace_definition", "linkage_specification", "preproc_if", "preproc_ifdef",
                   "preproc_elif", "preproc_else", "preproc_elifdef")
SKIP_TYPES = ("comment", ";", "preproc_include", "preproc_call", "{", "}", "#endif", "#else")


@dataclass
class Item:
    file: str
    line: int
    text: str
    defines: set[str]
    refs: set[str]
    chain: tuple[tuple[str, str, str], ...]   # (key, open text, close text) containers
    kind: str
    is_global: bool = False
    host_only: bool = False
    order: tuple[int, int] = (0, 0)
    kernel_name: str | None = None


@dataclass
class Unit:
    items: list[Item] = field(default_factory=list)
    system_includes: list[tuple[str, str]] = field(default_factory=list)   # (header, from file)
    missing_includes: list[tuple[str, str]] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    # headers vLLM's build generates that the unit includes (tree-relative path -> generator command),
    # and the items whose text inlines one (an #include inside a function body)
    generated: dict[str, str] = field(default_factory=dict)
    generated_in: dict[str, set[int]] = field(default_factory=dict)


_DEVICE_MARK = re.compile(r"\b(__device__|__global__|constexpr|DINLINE|HOST_DEVICE_INLINE|DEVICE_INLINE|"
                          r"C10_HOST_DEVICE|C10_DEVICE|MAYBE_HOST_DEVICE|CUTLASS_\w*DEVICE|CUTE_\w*DEVICE|"
                          r"__quickreduce_device_inline__|FORCE_INLINE|VLLM_\w*DEVICE\w*)\b")
HOST_MARKERS = re.compile(r"torch::stable|torch::Tensor|at::Tensor|\bTORCH_CHECK|STD_TORCH_CHECK|<<<|"
                          r"cudaLaunchKernelEx|c10::cuda|at::cuda|torch::stable|pybind11|TORCH_LIBRARY|"
                          r"at::ScalarType|std::optional<torch|get_current_cuda_stream|cudaFuncSetAttribute|"
                          r"cublas\w*|AT_DISPATCH|VLLM_STABLE_DISPATCH|THO_DISPATCH")


def _idents(text: str) -> set[str]:
    text = pp.strip_comments(text)
    text = re.sub(r'"(?:\\.|[^"\\])*"', " ", text)
    return {t for t in _IDENT.findall(text) if t not in _KEYWORDS}


def _declarator_names(node: ts.Node, data: bytes) -> set[str]:
    out: set[str] = set()
    d: ts.Node | None = node
    # dig to the declared identifier through pointer/reference/function/array declarators
    while d is not None:
        if d.type in ("identifier", "type_identifier", "field_identifier", "operator_name",
                      "destructor_name"):
            out.add(ts.text_of(d, data))
            return out
        if d.type in ("qualified_identifier", "template_function", "template_type"):
            t = ts.text_of(d, data)
            parts = [p for p in re.split(r"::", re.sub(r"<.*>", "", t, flags=re.S)) if p]
            out.update(p.strip() for p in parts)
            return out
        nxt = d.child_by_field_name("declarator")
        if nxt is None:
            nxt = next((c for c in d.named_children if c.type.endswith("declarator")
                        or c.type in ("identifier", "qualified_identifier", "field_identifier")), None)
        d = nxt
    return out


def _defines(node: ts.Node, data: bytes) -> set[str]:
    t = node.type
    if t == "template_declaration":
        inner = [c for c in node.named_children if c.type not in ("template_parameter_list", "comment")]
        out: set[str] = set()
        for c in inner:
            out |= _defines(c, data)
        return out
    if t in ("function_definition", "declaration", "field_declaration"):
        out = set()
        for c in node.children_by_field_name("declarator"):
            out |= _declarator_names(c, data)
        ty = node.child_by_field_name("type")
        if ty is not None and ty.type in ("struct_specifier", "class_specifier", "union_specifier",
                                          "enum_specifier") and ty.child_by_field_name("body") is not None:
            out |= _defines(ty, data)
        return out
    if t in ("struct_specifier", "class_specifier", "union_specifier", "enum_specifier"):
        out = set()
        n = node.child_by_field_name("name")
        if n is not None:
            out.add(re.sub(r"<.*", "", ts.text_of(n, data), flags=re.S).split("::")[-1].strip())
        if t == "enum_specifier":
            body = node.child_by_field_name("body")
            if body is not None:
                for e in body.named_children:
                    if e.type == "enumerator":
                        nm = e.child_by_field_name("name")
                        if nm is not None:
                            out.add(ts.text_of(nm, data))
        return out
    if t == "type_definition":
        out = set()
        for c in node.children_by_field_name("declarator"):
            out |= _declarator_names(c, data)
        ty = node.child_by_field_name("type")
        if ty is not None and ty.child_by_field_name("body") is not None:
            out |= _defines(ty, data)
        return out
    if t == "alias_declaration":
        n = node.child_by_field_name("name")
        return {ts.text_of(n, data)} if n is not None else set()
    if t == "namespace_alias_definition":
        n = node.child_by_field_name("name")
        return {ts.text_of(n, data)} if n is not None else set()
    if t in ("preproc_def", "preproc_function_def"):
        n = node.child_by_field_name("name")
        return {ts.text_of(n, data)} if n is not None else set()
    if t == "concept_definition":
        n = node.child_by_field_name("name")
        return {ts.text_of(n, data)} if n is not None else set()
    if t == "using_declaration":
        txt = ts.text_of(node, data)
        if re.match(r"using\s+namespace\b", txt):
            return set()
        ids = re.findall(r"[A-Za-z_]\w*", txt)
        return {ids[-1]} if len(ids) > 1 else set()
    if t == "expression_statement":
        # e.g. a macro invocation at namespace scope, STATIC_ASSERT(...)
        return set()
    return set()


def _pp_open(node: ts.Node, data: bytes, text_fn) -> tuple[str, str]:
    """Opening directive text of a preproc_if/ifdef (up to its first child item)."""
    cond = node.child_by_field_name("condition")
    if node.type == "preproc_if" and cond is not None:
        return f"#if {ts.text_of(cond, data).strip()}", "#endif"
    raw = text_fn(node).split("\n", 1)[0].strip()
    return raw, "#endif"


def split_items(relpath: str, text: str) -> list[Item]:
    """Namespace-scope items of one evaluated file (includes blanked by the caller)."""
    sp = _Splitter(relpath, text)
    sp.visit(sp.root, ())
    return sp.items


class _Children:
    """A node stand-in holding a filtered list of children (branches of a preprocessor block)."""

    def __init__(self, children: list[ts.Node]) -> None:
        self.children = children


class _Splitter:
    """The namespace-scope items of one file, walking tree-sitter's tree through namespace,
    ``extern "C"`` and preprocessor containers (each becomes a link of the item's chain)."""

    def __init__(self, relpath: str, text: str) -> None:
        self.relpath, self.text = relpath, text
        tree, self.data = ts.parse(text)
        self.root = tree.root_node
        self.b2c = ts.byte_to_char(self.data)
        self.sub = ts.presubstitute(text)
        self.items: list[Item] = []

    def extend_back(self, s: int) -> int:
        """Include attribute macros blanked for parsing (DINLINE, __launch_bounds__...)."""
        text, sub = self.text, self.sub
        while True:
            ls = text.rfind("\n", 0, s) + 1
            if sub[ls:s].strip() == "" and text[ls:s].strip() != "" and not text[ls:s].lstrip().startswith(("/", "#")):
                s = ls
                continue
            if ls == s and ls > 0:
                pls = text.rfind("\n", 0, ls - 1) + 1
                if sub[pls:ls].strip() == "" and text[pls:ls].strip() != "" and not text[pls:ls].lstrip().startswith(("/", "#", "*")):
                    s = pls
                    continue
            return s

    def tx(self, n: ts.Node) -> str:
        return self.text[self.b2c(n.start_byte):self.b2c(n.end_byte)]

    def visit(self, node: Any, chain: tuple) -> None:
        kids = node.children
        i = 0
        while i < len(kids):
            c = kids[i]
            i += 1
            if c.type in SKIP_TYPES or c.type.startswith("#") or not c.is_named and c.type not in (";",):
                continue
            if self._container(c, chain):
                continue
            start, end = c.start_byte, c.end_byte
            if i < len(kids) and kids[i].type == ";":
                end = kids[i].end_byte
                i += 1
            self._item(c, start, end, chain)

    def _container(self, c: ts.Node, chain: tuple) -> bool:
        """Visit a namespace / extern "C" / #if container; False when ``c`` is an item."""
        data = self.data
        if c.type == "namespace_definition":
            nm = c.child_by_field_name("name")
            name = ts.text_of(nm, data) if nm is not None else ""
            body = c.child_by_field_name("body")
            key = f"ns:{name}:{c.start_byte}" if not name else f"ns:{name}"
            if body is not None:
                self.visit(body, chain + ((key, f"namespace {name} {{".replace("  ", " "),
                                           f"}}  // namespace {name}".rstrip()),))
            return True
        if c.type == "linkage_specification":
            body = c.child_by_field_name("body")
            val = c.child_by_field_name("value")
            lk = ts.text_of(val, data) if val is not None else '"C"'
            if body is not None and body.type == "declaration_list":
                self.visit(body, chain + ((f"extern:{c.start_byte}", f"extern {lk} {{", f"}}  // extern {lk}"),))
                return True
            return False
        if c.type in ("preproc_if", "preproc_ifdef"):
            open_t, _close_t = _pp_open(c, data, self.tx)
            self.visit_pp(c, chain, open_t, c.start_byte)
            return True
        return False

    def _item(self, c: ts.Node, start: int, end: int, chain: tuple) -> None:
        text = self.text
        s, e = self.extend_back(self.b2c(start)), self.b2c(end)
        body = text[s:e]
        defs = _defines(c, self.data)
        if c.type == "ERROR":
            defs = _guess_defines(body)
        if c.type in ("preproc_def", "preproc_function_def"):
            refs = _idents(re.sub(r"^\s*#\s*define\s+\w+", "", body))
        else:
            refs = _idents(body)
        head = body.split("{", 1)[0]
        is_fn = c.type == "function_definition" or (
            c.type == "template_declaration"
            and any(k.type == "function_definition" for k in c.named_children))
        is_global = is_fn and bool(re.search(r"\b__global__\b", head))
        host_only = bool(is_fn and not _DEVICE_MARK.search(head)) or bool(HOST_MARKERS.search(body))
        if c.type in ("preproc_def", "preproc_function_def"):
            host_only = bool(re.search(r"<<<|TORCH_CHECK|torch::stable|AT_DISPATCH|THO_DISPATCH|"
                                       r"cudaLaunchKernelEx|\bSTD_TORCH", body))
        self.items.append(Item(self.relpath, line_of(text, s), body, defs, refs - set(), chain, c.type,
                               is_global=is_global, host_only=host_only))

    def visit_pp(self, node: ts.Node, chain: tuple, open_t: str, key0: int) -> None:
        # the if-branch: children before the alternative
        data, tx = self.data, self.tx
        alt = node.child_by_field_name("alternative")
        fake_children = [k for k in node.children if k is not alt]
        self._visit_list(fake_children, chain + ((f"pp:{key0}:0", open_t, "#endif"),))
        branch = 1
        prefix = open_t
        while alt is not None:
            if alt.type == "preproc_else":
                o = prefix + "\n#else"
                self._visit_list(alt.children, chain + ((f"pp:{key0}:{branch}", o, "#endif"),))
                break
            cond = alt.child_by_field_name("condition")
            ctext = ts.text_of(cond, data).strip() if cond is not None else tx(alt).split("\n", 1)[0]
            o = prefix + "\n#elif " + ctext if alt.type == "preproc_elif" else prefix + "\n" + tx(alt).split("\n", 1)[0]
            nxt = alt.child_by_field_name("alternative")
            self._visit_list([k for k in alt.children if k is not nxt],
                             chain + ((f"pp:{key0}:{branch}", o, "#endif"),))
            prefix = prefix + "\n#elif " + ctext if alt.type == "preproc_elif" else prefix
            alt = nxt
            branch += 1

    def _visit_list(self, children: list[ts.Node], chain: tuple) -> None:
        kids = [k for k in children if k.type not in ("#if", "#ifdef", "#ifndef", "#elif", "#else", "#endif")
                and k.type != "preproc_directive"]
        # drop the condition node and identifier (name) of ifdef
        kids = [k for k in kids if not (k.parent is not None and (k == k.parent.child_by_field_name("condition")
                                                                  or k == k.parent.child_by_field_name("name")))]
        self.visit(_Children(kids), chain)


def _guess_defines(body: str) -> set[str]:
    out: set[str] = set()
    for m in re.finditer(r"\b(?:struct|class|union|enum(?:\s+class)?)\s+([A-Za-z_]\w*)", body):
        out.add(m.group(1))
    call = re.search(r"([A-Za-z_]\w*)\s*\(", body.split("{", 1)[0])
    if call:
        out.add(call.group(1))
    return out


def _ns_paths(it: Item) -> set[str]:
    """Every namespace path (and prefix) an item is declared in."""
    parts: list[str] = []
    for key, _o, _c in it.chain:
        if key.startswith("ns:"):
            name = key[3:]
            if not name or name.startswith(":") or not re.fullmatch(r"[\w:]+", name):
                continue
            parts += [x for x in name.split("::") if x]
    return {"::".join(parts[:i]) for i in range(1, len(parts) + 1)}


def _is_include_guard(it: Item) -> bool:
    """``#define X_H`` (no value) inside its own ``#ifndef X_H``."""
    if it.kind != "preproc_def" or len(it.defines) != 1:
        return False
    name = next(iter(it.defines))
    if not re.fullmatch(r"\s*#\s*define\s+" + re.escape(name) + r"\s*(//[^\n]*)?\s*", it.text):
        return False   # ``#ifndef X / #define X value``: a default, not a guard
    return any(re.match(r"#\s*(ifndef\s+|if\s+!\s*defined\s*\(?\s*)" + re.escape(name) + r"\b", o.strip())
               for _k, o, _c in it.chain)


def _condition_refs(it: Item) -> list[str]:
    """Names the ``#if`` conditions around an item test (``#if FEATURE_SUPPORTED`` needs
    the ``#define FEATURE_SUPPORTED`` of the unit, else the item silently vanishes)."""
    out: list[str] = []
    for key, open_t, _close in it.chain:
        if key.startswith("pp:"):
            out += sorted(_idents(open_t))
    return out


def closure(unit: Unit, kernel_item: Item) -> list[Item]:
    """Items needed by ``kernel_item``: transitive closure over identifiers."""
    by_name: dict[str, list[Item]] = {}
    for it in unit.items:
        if it.host_only or (it.is_global and it is not kernel_item) or _is_include_guard(it):
            continue
        for d in it.defines:
            by_name.setdefault(d, []).append(it)
    keep: dict[int, Item] = {id(kernel_item): kernel_item}
    work = list(kernel_item.refs) + _condition_refs(kernel_item)
    seen = set(kernel_item.defines)
    while work:
        name = work.pop()
        if name in seen:
            continue
        seen.add(name)
        for it in by_name.get(name, ()):
            if id(it) not in keep:
                keep[id(it)] = it
                work.extend(it.refs)
                work.extend(_condition_refs(it))
    # namespace names that are macros (namespace MARLIN_NAMESPACE_NAME {): keep the #define
    kept_ns = {c[0].split(":")[1] for it in keep.values() for c in it.chain if c[0].startswith("ns:")}
    for ns in sorted(kept_ns):
        for it in by_name.get(ns, ()):
            if id(it) not in keep and it.kind in ("preproc_def", "preproc_function_def"):
                keep[id(it)] = it
    # using-directives of namespaces the kept code lives in or uses (a namespace of the
    # unit none of whose items is kept would not be declared: the directive goes too)
    kept_paths = set().union(*(_ns_paths(it) for it in keep.values()))
    unit_paths = set().union(*(_ns_paths(it) for it in unit.items))
    for it in unit.items:
        m = re.match(r"using\s+namespace\s+([\w:]+)\s*;", it.text.strip())
        if m and id(it) not in keep:
            ns = m.group(1).lstrip(":")
            if ns in kept_paths or ns not in unit_paths and (
                    ns.split("::")[0] in kept_ns or ns.split("::")[0] in ("std", "cooperative_groups", "cub")):
                keep[id(it)] = it
    return sorted(keep.values(), key=lambda it: it.order)
