"""Split evaluated C++/CUDA files into namespace-scope items, inline repo headers in
include order, and compute the identifier closure of a kernel."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from vkc.index.cxx import pp, ts
from vkc.index.cxx.model import line_of

_IDENT = re.compile(r"[A-Za-z_]\w*")
_KEYWORDS = frozenset("""alignas alignof asm auto bool break case catch char class const constexpr
const_cast continue decltype default delete do double dynamic_cast else enum explicit export extern
false float for friend goto if inline int long mutable namespace new noexcept nullptr operator private
protected public register reinterpret_cast return short signed sizeof static static_assert static_cast
struct switch template this throw true try typedef typeid typename union unsigned using virtual void
volatile while defined __global__ __device__ __host__ __shared__ __constant__ __forceinline__
__restrict__ if_constexpr define undef include pragma endif ifdef ifndef elif""".split())
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
    d = node
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
    tree, data = ts.parse(text)
    b2c = ts.byte_to_char(data)
    sub = ts.presubstitute(text)

    def extend_back(s: int) -> int:
        """Include attribute macros blanked for parsing (DINLINE, __launch_bounds__...)."""
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

    def tx(n: ts.Node) -> str:
        return text[b2c(n.start_byte):b2c(n.end_byte)]

    items: list[Item] = []

    def visit(node: ts.Node, chain: tuple):
        kids = node.children
        i = 0
        while i < len(kids):
            c = kids[i]
            i += 1
            if c.type in SKIP_TYPES or c.type.startswith("#") or not c.is_named and c.type not in (";",):
                continue
            if c.type == "namespace_definition":
                nm = c.child_by_field_name("name")
                name = ts.text_of(nm, data) if nm is not None else ""
                body = c.child_by_field_name("body")
                key = f"ns:{name}:{c.start_byte}" if not name else f"ns:{name}"
                if body is not None:
                    visit(body, chain + ((key, f"namespace {name} {{".replace("  ", " "),
                                          f"}}  // namespace {name}".rstrip()),))
                continue
            if c.type == "linkage_specification":
                body = c.child_by_field_name("body")
                val = c.child_by_field_name("value")
                lk = ts.text_of(val, data) if val is not None else '"C"'
                if body is not None and body.type == "declaration_list":
                    visit(body, chain + ((f"extern:{c.start_byte}", f"extern {lk} {{", f"}}  // extern {lk}"),))
                    continue
            if c.type in ("preproc_if", "preproc_ifdef"):
                open_t, close_t = _pp_open(c, data, tx)
                visit_pp(c, chain, open_t, c.start_byte)
                continue
            start, end = c.start_byte, c.end_byte
            if i < len(kids) and kids[i].type == ";":
                end = kids[i].end_byte
                i += 1
            s, e = extend_back(b2c(start)), b2c(end)
            body = text[s:e]
            defs = _defines(c, data)
            if c.type == "ERROR":
                defs = _guess_defines(body)
            if c.type in ("preproc_def", "preproc_function_def"):
                refs = _idents(body.split(None, 2)[-1] if body.count(" ") else "") - defs
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
            items.append(Item(relpath, line_of(text, s), body, defs, refs - set(), chain, c.type,
                              is_global=is_global, host_only=host_only))

    def visit_pp(node: ts.Node, chain: tuple, open_t: str, key0: int):
        # the if-branch: children before the alternative
        alt = node.child_by_field_name("alternative")
        fake_children = [k for k in node.children if k is not alt]
        _visit_list(fake_children, chain + ((f"pp:{key0}:0", open_t, "#endif"),))
        branch = 1
        prefix = open_t
        while alt is not None:
            if alt.type == "preproc_else":
                o = prefix + "\n#else"
                _visit_list(alt.children, chain + ((f"pp:{key0}:{branch}", o, "#endif"),))
                break
            cond = alt.child_by_field_name("condition")
            ctext = ts.text_of(cond, data).strip() if cond is not None else tx(alt).split("\n", 1)[0]
            o = prefix + "\n#elif " + ctext if alt.type == "preproc_elif" else prefix + "\n" + tx(alt).split("\n", 1)[0]
            nxt = alt.child_by_field_name("alternative")
            _visit_list([k for k in alt.children if k is not nxt], chain + ((f"pp:{key0}:{branch}", o, "#endif"),))
            prefix = prefix + "\n#elif " + ctext if alt.type == "preproc_elif" else prefix
            alt = nxt
            branch += 1

    class _Fake:
        def __init__(self, children):
            self.children = children

    def _visit_list(children, chain):
        kids = [k for k in children if k.type not in ("#if", "#ifdef", "#ifndef", "#elif", "#else", "#endif")
                and k.type != "preproc_directive"]
        # drop the condition node and identifier (name) of ifdef
        kids = [k for k in kids if not (k.parent is not None and (k == k.parent.child_by_field_name("condition")
                                                                  or k == k.parent.child_by_field_name("name")))]
        visit(_Fake(kids), chain)

    visit(tree.root_node, ())
    return items


def _merge_split_kernels(root: Path, rel: str, text: str, items: list[Item]) -> list[Item]:
    """Re-join a kernel whose braces are split by ``#if`` (tree-sitter yields fragments):
    the items inside the kernel's textual span (model's fallback) become one item."""
    from vkc.index.cxx.model import file_model
    try:
        kernels = file_model(str(root), rel).kernels
    except Exception:
        return items
    lines = text.split("\n")
    items = _split_error_spans(rel, text, items, [k for k in kernels if not k.rocm_only])
    for k in kernels:
        if k.rocm_only:
            continue
        s_line = line_of(text, k.start)
        # an item holding the kernel and running past its end (error recovery swallowed
        # the next definitions): cut it at the kernel's end and re-split the rest
        over = [it for it in items if it.line <= k.line and k.name in it.defines
                and it.line + it.text.count("\n") > k.end_line >= it.line]
        if over:
            it = over[0]
            it_end = it.line + it.text.count("\n")
            lines_all = text.split("\n")
            head = "\n".join(lines_all[it.line - 1:k.end_line])
            masked = "\n".join(ln if k.end_line < i + 1 <= it_end else "" for i, ln in enumerate(lines_all))
            rest = split_items(rel, masked)
            for r in rest:
                r.chain = it.chain + r.chain
            kit = Item(rel, it.line, head, {k.name} | {d for d in it.defines if d in head},
                       _idents(head), it.chain, it.kind, is_global=True, host_only=False)
            pos = items.index(it)
            items = items[:pos] + [kit] + rest + items[pos + 1:]
            continue
        inside = [it for it in items if s_line <= it.line <= k.end_line]
        if not inside or (len(inside) == 1 and k.name in inside[0].defines):
            continue
        if any(k.name in it.defines and it.kind in ("function_definition", "template_declaration")
               and it.line <= k.line <= it.line + it.text.count("\n") for it in inside):
            continue
        # fragments may sit outside their namespace in the error-recovered tree: the
        # model's qualified name tells the namespaces
        chain = tuple((f"ns:{ns}", f"namespace {ns} {{", f"}}  // namespace {ns}")
                      for ns in k.qualname.split("::")[:-1] if ns)
        body = "\n".join(lines[s_line - 1:k.end_line])
        merged = Item(rel, s_line, body, {k.name}, _idents(body) - {k.name}, chain, "function_definition",
                      is_global=True, host_only=False)
        pos = items.index(inside[0])
        items = [it for it in items if all(it is not x for x in inside)]
        items.insert(pos, merged)
    return items


def _ns_chain(qualname: str) -> tuple:
    return tuple((f"ns:{ns}", f"namespace {ns} {{", f"}}  // namespace {ns}")
                 for ns in qualname.split("::")[:-1] if ns)


def _split_error_spans(rel: str, text: str, items: list[Item], kernels) -> list[Item]:
    """An error-recovery item swallowing whole kernels (a kernel's braces split by ``#if``
    break the parse of everything after it): the kernels' lines become their own items
    and the rest of the span is re-split with them blanked."""
    lines = text.split("\n")
    out: list[Item] = []
    for it in items:
        it_end = it.line + it.text.count("\n")
        inner = [k for k in kernels if it.kind == "ERROR" and k.name not in it.defines
                 and it.line <= line_of(text, k.start) and k.end_line <= it_end]
        if not inner:
            out.append(it)
            continue
        spans = [(line_of(text, k.start), k.end_line) for k in inner]
        masked = "\n".join(ln if it.line <= i + 1 <= it_end and not any(a <= i + 1 <= b for a, b in spans)
                           else "" for i, ln in enumerate(lines))
        rest = split_items(rel, masked)
        for r in rest:
            r.chain = it.chain + r.chain
        for k, (a, b) in zip(inner, spans):
            body = "\n".join(lines[a - 1:b])
            rest.append(Item(rel, a, body, {k.name}, _idents(body) - {k.name}, it.chain + _ns_chain(k.qualname),
                             "function_definition", is_global=True, host_only=False))
        out += sorted(rest, key=lambda x: x.line)
    return out


def _guess_defines(body: str) -> set[str]:
    out: set[str] = set()
    for m in re.finditer(r"\b(?:struct|class|union|enum(?:\s+class)?)\s+([A-Za-z_]\w*)", body):
        out.add(m.group(1))
    m = re.search(r"([A-Za-z_]\w*)\s*\(", body.split("{", 1)[0])
    if m:
        out.add(m.group(1))
    return out


def resolve_include(root: Path, including: str, target: str) -> str | None:
    cands = [(root / including).parent / target, root / "csrc" / target, root / target]
    for c in cands:
        try:
            c = c.resolve()
            if c.is_file() and root.resolve() in c.parents:
                return c.relative_to(root.resolve()).as_posix()
        except OSError:
            continue
    return None


_INC_LINE = re.compile(r'^[ \t]*#[ \t]*include[ \t]*([<"])([^>"]+)[>"].*$', re.M)
_PRAGMA_ONCE = re.compile(r"^[ \t]*#[ \t]*pragma[ \t]+once.*$", re.M)


def build_unit(root: Path, relpath: str) -> Unit:
    """All items of ``relpath`` and its repo-local include closure, in include order."""
    unit = Unit()
    visited: set[str] = set()
    counter = [0]

    def process(rel: str, prefix: tuple = ()):
        if rel in visited:
            return
        visited.add(rel)
        unit.files.append(rel)
        raw = (root / rel).read_text(encoding="utf-8", errors="replace")
        text, _ = pp.evaluate_conditionals(raw, pp.CUDA)
        incs = []
        for m in _INC_LINE.finditer(text):
            incs.append((line_of(text, m.start()), m.group(2), m.group(1) == '"'))
        blank = _INC_LINE.sub(lambda m: " " * len(m.group(0)), text)
        blank = _PRAGMA_ONCE.sub(lambda m: " " * len(m.group(0)), blank)
        items = _merge_split_kernels(root, rel, blank, split_items(rel, blank))
        idx = 0
        for line, target, quoted in incs:
            while idx < len(items) and items[idx].line < line:
                _push(items[idx], prefix)
                idx += 1
            local = resolve_include(root, rel, target) if quoted else None
            if local is None and quoted:
                local = None if target.endswith((".h", ".cuh", ".hpp", ".inl")) is False else None
            if local is not None and local.startswith("csrc/"):
                process(local, prefix + _enclosing_chain(blank, items, idx, line))
            elif quoted and not _is_external(target):
                unit.missing_includes.append((target, rel))
            else:
                unit.system_includes.append((target, rel))
        for it in items[idx:]:
            _push(it, prefix)

    def _push(it: Item, prefix: tuple = ()):
        if prefix:
            it.chain = prefix + it.chain
        counter[0] += 1
        it.order = (counter[0], 0)
        unit.items.append(it)

    process(relpath)
    return unit


def _enclosing_chain(text: str, items: list[Item], idx: int, line: int) -> tuple:
    """Namespaces open at an ``#include`` in the middle of a namespace body (the
    included header's items belong to it)."""
    if idx == 0 or idx >= len(items):
        return ()
    prev, nxt = items[idx - 1], items[idx]
    common = []
    for a, b in zip(prev.chain, nxt.chain):
        if a[0] != b[0]:
            break
        if a[0].startswith("ns:"):      # include guards (#ifndef X_H) are not repeated
            common.append(a)
    if not common:
        return ()
    lines = text.split("\n")
    between = lines[prev.line - 1 + prev.text.count("\n") + 1:line - 1]
    if any(re.match(r"\s*}", ln) for ln in between):
        return ()
    return tuple(common)


_EXTERNAL_PREFIXES = ("cutlass/", "cute/", "cub/", "cuda/", "thrust/", "torch/", "ATen/", "c10/",
                      "cooperative_groups", "flashinfer/", "hip/", "cuda_", "cuda.h", "mma.h", "cusparse",
                      "nvml", "cutlass_extensions/")


def _is_external(target: str) -> bool:
    return target.startswith(_EXTERNAL_PREFIXES)


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
