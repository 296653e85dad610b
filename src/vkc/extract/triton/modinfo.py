"""Per-module tables of top-level bindings, with platform-conditional branches resolved."""
from __future__ import annotations

import ast
import functools
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class Binding:
    kind: str                       # def | class | assign | import | importfrom | override | ambiguous
    module: str
    name: str
    node: Any = None             # FunctionDef / ClassDef / Assign / AnnAssign, or None
    value: ast.expr | None = None
    index: tuple[int, ...] = ()     # position inside a tuple-unpacking assignment
    target: str = ""                # import: absolute module path
    attr: str = ""                  # importfrom: imported name
    note: str = ""                  # how a conditional branch was chosen
    override: Any = None
    candidates: list[Binding] = field(default_factory=list)
    test: ast.expr | None = None


@dataclass
class ModuleInfo:
    name: str
    file: str                       # relative to the tree root
    path: Path
    text: str
    lines: list[str]
    tree: ast.Module
    is_package: bool
    bindings: dict[str, Binding] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    complete: bool = False


def module_file(root: Path, module: str) -> tuple[Path, bool] | None:
    base = root.joinpath(*module.split("."))
    if base.with_suffix(".py").is_file():
        return base.with_suffix(".py"), False
    if (base / "__init__.py").is_file():
        return base / "__init__.py", True
    return None


def module_of_file(rel: str) -> str:
    parts = rel[:-3].split("/") if rel.endswith(".py") else rel.split("/")
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def load(root: Path, module: str) -> ModuleInfo | None:
    found = module_file(root, module)
    if found is None:
        return None
    path, is_pkg = found
    text = path.read_text(encoding="utf-8")
    return ModuleInfo(module, path.relative_to(root).as_posix(), path, text,
                      text.splitlines(keepends=True), ast.parse(text, filename=str(path)), is_pkg)


_SEGMENT_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+\Z")


@functools.lru_cache(maxsize=128)
def _segment_lines(text: str) -> list[str]:
    """``text`` split the way :func:`ast.get_source_segment` splits it (at \\r, \\n, \\r\\n)."""
    return _SEGMENT_LINE.findall(text)


def source_segment(text: str, node: Any) -> str | None:
    """:func:`ast.get_source_segment` with the line split cached per text (the stdlib one
    re-splits the whole module on every call)."""
    try:
        if node.end_lineno is None or node.end_col_offset is None:
            return None
        first, last = node.lineno - 1, node.end_lineno - 1
        col, end_col = node.col_offset, node.end_col_offset
    except AttributeError:
        return None
    lines = _segment_lines(text)
    if first == last:
        return lines[first].encode()[col:end_col].decode()
    return "".join([lines[first].encode()[col:].decode(), *lines[first + 1:last],
                    lines[last].encode()[:end_col].decode()])


def absolute(info: ModuleInfo, level: int, module: str | None) -> str:
    if level == 0:
        return module or ""
    pkg = info.name.split(".")
    if not info.is_package:
        pkg = pkg[:-1]
    if level > 1:
        pkg = pkg[: len(pkg) - (level - 1)]
    return ".".join(pkg + ([module] if module else []))


TestEval = Callable[[ast.expr], bool | None]


def walk(info: ModuleInfo, stmts: list[ast.stmt], test_eval: TestEval, note: str = "") -> None:
    """Bind the names the statements define; ``if`` branches chosen by ``test_eval``."""
    b = info.bindings
    for st in stmts:
        if isinstance(st, ast.Import):
            for a in st.names:
                if a.asname:
                    b[a.asname] = Binding("import", info.name, a.asname, st, target=a.name, note=note)
                else:
                    top = a.name.split(".")[0]
                    b[top] = Binding("import", info.name, top, st, target=top, note=note)
        elif isinstance(st, ast.ImportFrom):
            mod = absolute(info, st.level, st.module)
            for a in st.names:
                if a.name == "*":
                    continue
                nm = a.asname or a.name
                b[nm] = Binding("importfrom", info.name, nm, st, target=mod, attr=a.name, note=note)
        elif isinstance(st, (ast.FunctionDef, ast.AsyncFunctionDef)):
            b[st.name] = Binding("def", info.name, st.name, st, note=note)
        elif isinstance(st, ast.ClassDef):
            b[st.name] = Binding("class", info.name, st.name, st, note=note)
        elif isinstance(st, ast.Assign):
            for tgt in st.targets:
                _bind_target(info, tgt, st, st.value, (), note)
        elif isinstance(st, ast.AnnAssign) and st.value is not None and isinstance(st.target, ast.Name):
            b[st.target.id] = Binding("assign", info.name, st.target.id, st, value=st.value, note=note)
        elif isinstance(st, ast.If):
            verdict = test_eval(st.test)
            where = f"{info.file}:{st.lineno}"
            cond = source_segment(info.text, st.test) or "?"
            if verdict is True:
                walk(info, st.body, test_eval, f"took `if {cond}` branch at {where}")
            elif verdict is False:
                walk(info, st.orelse, test_eval, f"took the else branch of `if {cond}` at {where}")
            else:
                before = dict(b)
                walk(info, st.body, test_eval, note)
                body_b = dict(b)
                b.clear(); b.update(before)
                walk(info, st.orelse, test_eval, note)
                else_b = dict(b)
                b.clear(); b.update(before)
                for nm in sorted(set(body_b) | set(else_b)):
                    x, y = body_b.get(nm), else_b.get(nm)
                    if x is y:
                        b[nm] = x
                        continue
                    cands = [c for c in (x, y) if c is not None and c is not before.get(nm)]
                    b[nm] = Binding("ambiguous", info.name, nm, st, candidates=cands, test=st.test,
                                    note=f"condition `{cond}` at {where} not statically known")
        elif isinstance(st, ast.Try):
            for h in st.handlers:
                walk(info, h.body, test_eval, note)
            walk(info, st.body, test_eval, note)
            walk(info, st.orelse, test_eval, note)
            walk(info, st.finalbody, test_eval, note)
        elif isinstance(st, ast.With):
            walk(info, st.body, test_eval, note)


def lazy_globals(info: ModuleInfo) -> None:
    """A module constant bound to ``None`` and set, once, by the lazy-initialisation idiom of a module function
    (``global X`` / ``if X is None: X = value``, e.g. vllm/v1/attention/ops/ultraquant/triton_store.py:56
    ``_ensure_const_tables``, which its wrapper calls before the launch) is bound to that value: a kernel that
    reads ``X`` (``_MIDPOINTS_C.value[i]``) only runs after the initialiser did.  Any other assignment of ``X``
    in a function leaves ``X`` as it is."""
    b = info.bindings
    nones = {n for n, x in b.items() if x.kind == "assign" and not x.index and isinstance(x.value, ast.Constant)
             and x.value.value is None}
    sites: dict[str, int] = {}
    inits: dict[str, tuple[ast.FunctionDef, ast.Assign]] = {}
    for fn in (st for st in info.tree.body if isinstance(st, ast.FunctionDef)):
        declared = {n for st in ast.walk(fn) if isinstance(st, ast.Global) for n in st.names} & nones
        for st in ast.walk(fn):
            name = _assigned(st)
            if name in declared:
                sites[name] = sites.get(name, 0) + 1
            if isinstance(st, ast.If) and (name := _is_none_test(st.test)) in declared:
                body = [x for x in st.body if _assigned(x) == name]
                if len(body) == 1:
                    inits[name] = (fn, body[0])      # type: ignore[assignment]
    for name, (fn, st) in sorted(inits.items()):
        if sites.get(name) == 1:
            b[name] = Binding("assign", info.name, name, st, value=st.value,
                              note=f"set lazily by {fn.name} at {info.file}:{st.lineno} (None until then)")


def _assigned(st: ast.AST) -> str | None:
    """The one name a plain ``X = value`` assigns, else None."""
    if isinstance(st, ast.Assign) and len(st.targets) == 1 and isinstance(st.targets[0], ast.Name):
        return st.targets[0].id
    return None


def _is_none_test(test: ast.expr) -> str | None:
    """``X`` of an ``if X is None:`` test, else None."""
    if isinstance(test, ast.Compare) and isinstance(test.left, ast.Name) and len(test.ops) == 1 \
            and isinstance(test.ops[0], ast.Is) and isinstance(test.comparators[0], ast.Constant) \
            and test.comparators[0].value is None:
        return test.left.id
    return None


def _bind_target(info, tgt, st, value, index, note):
    if isinstance(tgt, ast.Name):
        info.bindings[tgt.id] = Binding("assign", info.name, tgt.id, st, value=value, index=index, note=note)
    elif isinstance(tgt, (ast.Tuple, ast.List)):
        for i, e in enumerate(tgt.elts):
            _bind_target(info, e, st, value, index + (i,), note)


def find_def(info: ModuleInfo, qualname: str, line: int) -> tuple[ast.AST, list[ast.ClassDef]]:
    """All defs matching ``qualname`` anywhere at module/class level -> the one at ``line``."""
    parts = qualname.split(".")
    found: list[tuple[ast.AST, list[ast.ClassDef]]] = []

    def scan(stmts, prefix, classes):
        for st in stmts:
            if isinstance(st, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                q = prefix + [st.name]
                if q == parts and not isinstance(st, ast.ClassDef):
                    found.append((st, classes))
                if parts[: len(q)] == q and len(q) < len(parts):
                    scan(st.body, q, classes + [st] if isinstance(st, ast.ClassDef) else classes)
            elif isinstance(st, ast.If):
                scan(st.body, prefix, classes)
                scan(st.orelse, prefix, classes)
            elif isinstance(st, ast.Try):
                scan(st.body, prefix, classes)
                for h in st.handlers:
                    scan(h.body, prefix, classes)
                scan(st.orelse, prefix, classes)
            elif isinstance(st, ast.With):
                scan(st.body, prefix, classes)

    scan(info.tree.body, [], [])
    if not found:
        return None, []  # type: ignore[return-value]

    def start(n):
        return min([n.lineno] + [d.lineno for d in n.decorator_list])

    found.sort(key=lambda f: (not (start(f[0]) <= line <= f[0].end_lineno), abs(start(f[0]) - line)))
    return found[0]
