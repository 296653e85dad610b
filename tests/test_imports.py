"""vkc's import graph: no cycles, no stage importing another stage's private names.

Every module of ``src/vkc`` is parsed with ``ast``; every ``import vkc...`` / ``from vkc...
import`` / relative import is an edge, at module level and inside functions alike (a lazy
import only hides a cycle; it does not remove it). ``from pkg import name`` is an edge to
``pkg.name`` when that is a module, else to ``pkg``.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parent.parent / "src"
PKG = SRC / "vkc"
# the one deliberate exception: ``vkc.__getattr__`` imports the public API on attribute access
# (after ``vkc`` is initialised), while every module that reads ``vkc.__version__`` imports ``vkc``
ALLOWED_EDGES = frozenset({("vkc", "vkc.api")})


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(PKG.rglob("*.py"))}


def _resolve(mod: str, is_pkg: bool, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = mod.split(".")
    if not is_pkg:
        base = base[:-1]
    base = base[:len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _imports(mod: str, path: Path, modules: dict[str, Path]) -> list[tuple[str, str, int]]:
    """(target module, imported name or "", line) for every vkc import of ``mod``."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    is_pkg = path.name == "__init__.py"
    out: list[tuple[str, str, int]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(a.name, "", node.lineno) for a in node.names if a.name.split(".")[0] == "vkc"]
        elif isinstance(node, ast.ImportFrom):
            target = _resolve(mod, is_pkg, node)
            if target.split(".")[0] != "vkc":
                continue
            for a in node.names:
                sub = f"{target}.{a.name}"
                out.append((sub, "", node.lineno) if sub in modules else (target, a.name, node.lineno))
    return out


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for mod, path in modules.items():
        for target, _name, _line in _imports(mod, path, modules):
            while target not in modules and "." in target:  # vkc.x.y.attr -> vkc.x.y
                target = target.rsplit(".", 1)[0]
            if target in modules and target != mod and (mod, target) not in ALLOWED_EDGES:
                graph[mod].add(target)
    return graph


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each as one cycle
    through its members, sorted: every import cycle shows up in exactly one of them."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    comps: list[list[str]] = []

    def strong(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                comps.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            strong(v)
    return sorted(_one_cycle(graph, c) for c in comps)


def _one_cycle(graph: dict[str, set[str]], comp: list[str]) -> list[str]:
    """A concrete cycle inside a strongly connected component, from its first module back to it."""
    members, start = set(comp), comp[0]
    prev: dict[str, str] = {}
    todo = [start]
    while todo:  # breadth-first from start until an edge returns to start
        v = todo.pop(0)
        for w in sorted(graph[v] & members):
            if w == start:
                path = [v]
                while path[-1] != start:
                    path.append(prev[path[-1]])
                return [*reversed(path), start]
            if w not in prev:
                prev[w] = v
                todo.append(w)
    raise AssertionError(comp)


def test_cycle_finder_finds_a_cycle():
    g = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert find_cycles(g) == [["a", "b", "c", "a"]]
    assert find_cycles({"a": {"b"}, "b": set()}) == []


def test_graph_sees_function_level_and_relative_imports():
    g = _graph()
    assert "vkc.errors" in g["vkc.cli"]                 # module level
    assert "vkc.index.listing" in g["vkc.cli"]          # inside a function
    assert "vkc.index.build" in g["vkc.index"]          # from vkc.index.build import ...


def test_no_import_cycles():
    cycles = find_cycles(_graph())
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


def _stage(mod: str) -> str:
    parts = mod.split(".")
    return parts[1] if len(parts) > 2 or (len(parts) == 2 and (PKG / parts[1]).is_dir()) else mod


@pytest.mark.parametrize("leaf", ["vkc.errors", "vkc.records", "vkc.naming", "vkc.dtypes", "vkc.atomic"])
def test_leaves_import_no_stage(leaf):
    modules = _modules()
    if leaf not in modules:
        pytest.skip(f"{leaf} does not exist")
    allowed = {"vkc.errors", "vkc.records"}
    bad = sorted(t for t, _n, _l in _imports(leaf, modules[leaf], modules)
                 if t.split(".")[0] == "vkc" and t not in allowed and t != leaf)
    assert not bad, f"{leaf} is a leaf but imports {bad}"


def test_no_cross_stage_private_imports():
    """``from vkc.<stage>... import _name`` from another stage reaches into its private parts."""
    modules = _modules()
    bad = []
    for mod, path in modules.items():
        for target, name, line in _imports(mod, path, modules):
            private = name.startswith("_") or target.rsplit(".", 1)[-1].startswith("_") and name == ""
            if private and name != "__version__" and _stage(target) != _stage(mod):
                bad.append(f"{path.relative_to(SRC)}:{line}: {target} {name}".rstrip())
    assert not bad, "cross-stage private imports:\n" + "\n".join(bad)
