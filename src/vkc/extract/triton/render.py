"""Final names, ordering and the text of the generated module."""
from __future__ import annotations

import ast
import re
import textwrap
from collections import defaultdict

from vkc.errors import ExtractionError
from vkc.extract.triton.closure import Collector, Edit, Item, Key, apply_edits
from vkc.extract.triton.values import CANONICAL, IMPORT_ORDER, IMPORTS
from vkc.templating import render

_ALLOWED_PKGS = {"triton", "torch", "math"}
_RESERVED = set(CANONICAL.values()) | {"tl", "triton"}


def assign_names(col: Collector, entry: Key) -> dict[Key, str]:
    names: dict[Key, str] = {}
    groups: dict[str, list[Key]] = defaultdict(list)
    for k in col.order:
        it = col.items[k]
        if it.kind == "module":
            names[k] = it.name
        else:
            groups[it.name].append(k)
    taken = set(names.values())
    for name in sorted(groups):
        keys = groups[name]
        if len(keys) > 1 and all(col.items[k].kind in ("alias", "const", "import") for k in keys):
            probe = {k: name for k in keys}
            texts = {col.items[k].render({**names, **probe}) for k in keys}
            if len(texts) == 1:
                for k in keys:
                    names[k] = name
                taken.add(name)
                continue
        keeper = None
        if name not in _RESERVED:
            if entry in keys:
                keeper = entry
            else:
                same = [k for k in keys if k[0] == entry[0]]
                keeper = same[0] if same else (keys[0] if len(keys) == 1 else None)
        for k in keys:
            if k == keeper:
                names[k] = name
                continue
            parts = k[0].split(".")
            for n in range(1, len(parts) + 1):
                cand = "_".join(parts[-n:]) + "_" + name
                if cand not in taken and cand not in groups:
                    break
            names[k] = cand
            col.notes.append(f"renamed {k[0]}.{name} to {cand} (name collision)")
        if keeper is not None:
            taken.add(name)
        taken.update(names[k] for k in keys)
    return names


def order(col: Collector, entry: Key) -> list[Key]:
    seen: set[Key] = set()
    out: list[Key] = []

    def visit(k: Key, stack: tuple):
        if k in seen or k in stack:
            return
        for d in col.items[k].deps:
            visit(d, stack + (k,))
        seen.add(k)
        out.append(k)
    visit(entry, ())
    return out


def _def_name_edit(info, node, kind: str) -> Edit:
    line = node.lineno
    text = info.lines[line - 1]
    m = re.search(rf"\b{'class' if kind == 'class' else 'def'}\s+({re.escape(node.name)})\b", text)
    if m is None:
        raise ExtractionError(f"cannot find the definition line of {node.name} in {info.file}:{line}")
    return Edit((line, m.start(1)), (line, m.end(1)), None)  # render set by caller


def block_text(col: Collector, it: Item, names: dict[Key, str]) -> str:
    info = col.prog.module(it.module)
    node = it.node
    first = min([node.lineno] + [d.lineno for d in node.decorator_list])
    # keep a comment block that sits directly above the definition
    while first > 1 and info.lines[first - 2].lstrip().startswith("#"):
        first -= 1
    ren = _def_name_edit(info, node, it.kind)
    ren.render = lambda n, k=it.key: n[k]
    indent = len(info.lines[first - 1]) - len(info.lines[first - 1].lstrip())
    start = (first, 0)
    end = (node.end_lineno, len(info.lines[node.end_lineno - 1].rstrip("\r\n")))
    text = apply_edits(info, start, end, it.edits + [ren], names)
    if indent:
        text = textwrap.dedent(text)
    # drop lines emptied by removed decorators
    lines = [ln for ln in text.split("\n")]
    out = []
    for i, ln in enumerate(lines):
        if ln.strip() == "" and i < len(lines) - 1 and _is_decorator_zone(lines, i):
            continue
        out.append(ln.rstrip())
    return "\n".join(out)


def _is_decorator_zone(lines, i) -> bool:
    for ln in lines[i + 1:]:
        s = ln.strip()
        if s == "":
            continue
        return s.startswith(("@", "def ", "class ", "async def "))
    return False


def render_module(col: Collector, entry: Key, header: dict) -> tuple[str, dict[Key, str], list[Key]]:
    names = assign_names(col, entry)
    keys = order(col, entry)
    used_mods = sorted({names[k] for k in keys if col.items[k].kind == "module"},
                       key=lambda m: IMPORT_ORDER.index(m) if m in IMPORT_ORDER else 99)
    imports = [IMPORTS[m] for m in used_mods]
    extra_imports, glob, blocks, emitted = [], [], [], set()
    for k in keys:
        it = col.items[k]
        if it.kind == "module":
            continue
        if it.kind in ("import", "alias", "const"):
            line = it.render(names)
            if line in emitted:
                continue
            emitted.add(line)
            if it.kind == "import" and line.split()[1].split(".")[0] not in _ALLOWED_PKGS:
                raise ExtractionError(
                    f"{header['qualified']} needs the external package of `{line}`",
                    hint="only triton, torch and math may be imported by a standalone kernel module")
            (extra_imports if it.kind == "import" else glob).append(line)
        else:
            blocks.append(block_text(col, it, names))
    text = render("vkc.extract.triton/module.py.j2", imports=imports + extra_imports, globals=glob,
                  blocks=blocks, **header)
    text = text.rstrip() + "\n"
    try:
        ast.parse(text)
    except SyntaxError as e:
        raise ExtractionError(f"generated module for {header['qualified']} does not parse: {e.msg} "
                              f"(line {e.lineno})", hint="report this as a vkc bug") from None
    return text, names, keys
