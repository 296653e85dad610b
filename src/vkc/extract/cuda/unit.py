"""The unit of one csrc file: its items and those of its repo-local headers, in include order
(headers inlined where they are included, inside the namespaces open there)."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from vkc.cxx import pp
from vkc.cxx.text import line_of
from vkc.extract.cuda.items import Item, Unit, _idents, split_items

__all__ = ["build_unit", "resolve_include"]


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


def _merge_split_kernels(root: Path, rel: str, text: str, items: list[Item]) -> list[Item]:
    """Re-join a kernel whose braces are split by ``#if`` (tree-sitter yields fragments):
    the items inside the kernel's textual span (model's fallback) become one item."""
    from vkc.cxx.model import file_model
    try:
        kernels = file_model(str(root), rel).kernels
    except Exception:  # noqa: BLE001 - no model of the file: keep the items as split
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


def _split_error_spans(rel: str, text: str, items: list[Item], kernels: list[Any]) -> list[Item]:
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
