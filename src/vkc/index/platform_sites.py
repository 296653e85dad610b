"""Import sites of vLLM's modules, each tagged with the platform guard around it.

Used by :mod:`vkc.index.platform_graph` (the rules are there).  Sites: ``import a.b``
(``a`` and ``a.b``), ``from a.b import c`` (``a``, ``a.b`` and ``a.b.c`` when it is a module),
relative and star imports, ``importlib.import_module("literal")`` (``package=`` a literal or
``__name__``/``__package__``), at any depth (function and class bodies too).  The guard is
the conjunction of the enclosing ``if``/``elif``/``else`` tests plus the negated test of an
earlier ``if`` of the same block whose body ends in ``return``/``raise``/``continue``/``break``
with no ``else``; :func:`evaluate` gives a test's value on CUDA and on any platform.

Cost: parsing all of ``vllm/`` takes far too long, so a file is cut textually into pieces at
its column-0 statements (long classes again at their members) and only the pieces that can
hold a guarded site are parsed: an indented import and an ``if`` test naming a platform or
``TYPE_CHECKING``, or an ``import_module`` call.  The other imports are taken by regex
(:func:`vkc.index.triton_files.import_edges`) as unguarded.  A piece that does not parse
makes the whole file parsed.  Trees the Triton scan already parsed are walked instead, and
statements whose lines hold no ``import`` are skipped.
"""
from __future__ import annotations

import ast
import re
from bisect import bisect_left
from collections import Counter
from collections.abc import Iterable, Mapping
from itertools import pairwise
from typing import NamedTuple

from vkc.index.triton_files import import_edges, resolve_relative
from vkc.index.triton_scopes import NON_CUDA

Tri = bool | None            # three-valued truth: True, False, unknown

_INDENTED_IMPORT = re.compile(r"^[ \t]+(?:from[ \t]+\.*[\w.]*[ \t]+import|import[ \t]+\w)", re.M)
_IF_HEAD = re.compile(r"\n[ \t]*(?:el)?if\b([^:]*)")         # searched in "\n" + text
_CUDA_TEST = re.compile(r"\bis_cuda(?:_alike)?\b")
_NEGATIVE_OPS = (ast.NotEq, ast.IsNot, ast.NotIn)
_TERMINAL = (ast.Return, ast.Raise, ast.Continue, ast.Break)


class Site(NamedTuple):
    src: str        # importing module
    dst: str        # imported module
    kind: str       # "cuda" | "platform"
    guard: str      # the deciding test (platform sites), else ""


def _not(v: Tri) -> Tri:
    return None if v is None else not v


def _and(vs: Iterable[Tri]) -> Tri:
    vals = list(vs)
    if any(v is False for v in vals):
        return False
    return True if all(v is True for v in vals) else None


def _or(vs: Iterable[Tri]) -> Tri:
    vals = list(vs)
    if any(v is True for v in vals):
        return True
    return False if all(v is False for v in vals) else None


def evaluate(test: ast.expr) -> tuple[Tri, Tri]:
    """(value on CUDA, value on any platform) of an ``if`` test."""
    if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
        c, a = evaluate(test.operand)
        return _not(c), _not(a)
    if isinstance(test, ast.BoolOp):
        parts = [evaluate(v) for v in test.values]
        fold = _and if isinstance(test.op, ast.And) else _or
        return fold(p[0] for p in parts), fold(p[1] for p in parts)
    if isinstance(test, (ast.Name, ast.Attribute)) and _last_name(test) == "TYPE_CHECKING":
        return False, False
    if isinstance(test, ast.Constant):
        return bool(test.value), bool(test.value)
    text = ast.unparse(test)
    if NON_CUDA.search(text):
        negative = (isinstance(test, ast.Compare) and len(test.ops) == 1
                    and isinstance(test.ops[0], _NEGATIVE_OPS))
        return negative, None
    if _CUDA_TEST.search(text):
        return True, None
    return None, None


def _last_name(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    return node.attr if isinstance(node, ast.Attribute) else None


Cond = tuple[ast.expr, bool]      # an enclosing test and whether the site is in its body


class _Modules:
    """The tree's module names, with a memo of the existing prefixes of a dotted name."""

    def __init__(self, paths: Mapping[str, str]):
        self.paths = paths
        self._memo: dict[str, list[str]] = {}

    def __contains__(self, name: object) -> bool:
        return name in self.paths

    def prefixes(self, dotted: str) -> list[str]:
        """``a.b.c`` -> those of ``a``, ``a.b``, ``a.b.c`` that are modules of the tree."""
        out = self._memo.get(dotted)
        if out is None:
            parts = dotted.split(".")
            out = self._memo[dotted] = [p for i in range(1, len(parts) + 1)
                                        if (p := ".".join(parts[:i])) in self.paths]
        return out


def _import_lines(text: str) -> list[int]:
    """1-based numbers of the lines of ``text`` holding ``import``."""
    out: list[int] = []
    line, last = 1, 0
    i = text.find("import")
    while i != -1:
        line += text.count("\n", last, i)
        last = i
        if not out or out[-1] != line:
            out.append(line)
        i = text.find("import", i + 6)
    return out


class _SiteWalker:
    """The import sites of one parsed module (or part of one), with their guards."""

    def __init__(self, name: str, is_pkg: bool, modules: _Modules, dynamic: bool, import_lines: list[int]):
        self.name, self.is_pkg, self.modules, self.dynamic = name, is_pkg, modules, dynamic
        self.import_lines = import_lines
        self.sites: list[tuple[list[str], Tri, Tri, str]] = []    # (targets, cuda, any, guard)
        self._memo: dict[int, tuple[Tri, Tri]] = {}

    def block(self, stmts: list[ast.stmt], conds: tuple[Cond, ...]) -> None:
        for st in stmts:
            self.stmt(st, conds)
            if isinstance(st, ast.If) and not st.orelse and st.body and isinstance(st.body[-1], _TERMINAL):
                conds = conds + ((st.test, False),)

    def stmt(self, st: ast.stmt, conds: tuple[Cond, ...]) -> None:
        lines = self.import_lines
        i = bisect_left(lines, st.lineno)
        if i == len(lines) or lines[i] > (st.end_lineno or st.lineno):
            return          # no import in its lines
        if isinstance(st, ast.Import):
            self.add([t for a in st.names for t in self.prefixes(a.name)], conds)
        elif isinstance(st, ast.ImportFrom):
            base = resolve_relative(self.name, self.is_pkg, st.level, st.module or "")
            targets = self.prefixes(base)
            targets += [f"{base}.{a.name}" for a in st.names if f"{base}.{a.name}" in self.modules]
            self.add(targets, conds)
        elif isinstance(st, ast.If):
            self.calls(st.test, conds)
            self.block(st.body, conds + ((st.test, True),))
            self.block(st.orelse, conds + ((st.test, False),))
        elif isinstance(st, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            self.block(st.body, conds)
        elif isinstance(st, (ast.For, ast.AsyncFor, ast.While, ast.With, ast.AsyncWith)):
            for child in ast.iter_child_nodes(st):
                if isinstance(child, ast.expr):
                    self.calls(child, conds)
            self.block(st.body, conds)
            self.block(getattr(st, "orelse", []), conds)
        elif isinstance(st, ast.Try) or type(st).__name__ == "TryStar":
            for body in (st.body, *(h.body for h in st.handlers), st.orelse, st.finalbody):  # type: ignore[attr-defined]
                self.block(body, conds)
        elif type(st).__name__ == "Match":
            for case in st.cases:  # type: ignore[attr-defined]
                self.block(case.body, conds)
        else:
            self.calls(st, conds)

    def calls(self, node: ast.AST, conds: tuple[Cond, ...]) -> None:
        """``importlib.import_module("literal")`` calls in a simple statement or expression."""
        if not self.dynamic:
            return
        for n in ast.walk(node):
            if isinstance(n, ast.Call) and _import_module_call(n):
                name = self.literal_module(n)
                if name:
                    self.add(self.prefixes(name), conds)

    def literal_module(self, call: ast.Call) -> str | None:
        arg = call.args[0]
        if not (isinstance(arg, ast.Constant) and isinstance(arg.value, str)):
            return None
        name: str = arg.value
        if not name.startswith("."):
            return name
        pkg = call.args[1] if len(call.args) > 1 else next((k.value for k in call.keywords if k.arg == "package"), None)
        if isinstance(pkg, ast.Constant) and isinstance(pkg.value, str):
            base = pkg.value
        elif isinstance(pkg, ast.Name) and pkg.id in ("__name__", "__package__"):
            base = self.name if (self.is_pkg or pkg.id == "__name__") else self.name.rpartition(".")[0]
        else:
            return None
        dots = len(name) - len(name.lstrip("."))
        return resolve_relative(base, True, dots, name[dots:])

    def prefixes(self, dotted: str) -> list[str]:
        return self.modules.prefixes(dotted)

    def value(self, cond: Cond) -> tuple[Tri, Tri]:
        test, in_body = cond
        v = self._memo.get(id(test))
        if v is None:
            v = self._memo[id(test)] = evaluate(test)
        return v if in_body else (_not(v[0]), _not(v[1]))

    def add(self, targets: list[str], conds: tuple[Cond, ...]) -> None:
        if not targets:
            return
        vals = [self.value(x) for x in conds]
        c, a = _and(v[0] for v in vals), _and(v[1] for v in vals)
        guard = next((_guard_text(x) for x, v in zip(reversed(conds), reversed(vals)) if v[0] is False), "")
        self.sites.append((targets, c, a, guard))


def _guard_text(cond: Cond) -> str:
    test, in_body = cond
    if in_body:
        return ast.unparse(test)
    if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
        return ast.unparse(test.operand)
    return f"not ({ast.unparse(test)})"


def _import_module_call(call: ast.Call) -> bool:
    f = call.func
    name = f.attr if isinstance(f, ast.Attribute) else f.id if isinstance(f, ast.Name) else None
    return name == "import_module" and bool(call.args)


_TOP = re.compile(r"\n(?=[A-Za-z_@])(?!(?:else|elif|except|finally)\b)")
_MEMBER = re.compile(r"\n    (?=[A-Za-z_@])(?!(?:else|elif|except|finally)\b)")
_CLASS_HEAD = re.compile(r"(?:@[^\n]*\n)*class\b")
_SPLIT_CLASS = 20_000        # class chunks longer than this are cut into member chunks


def _cut(text: str, starts: re.Pattern[str], deco: str) -> list[tuple[int, int]]:
    """(start, end) offsets of the statements of ``text`` that begin where ``starts`` matches
    (a line after a decorator line, which starts with ``deco``, continues its statement)."""
    cuts = [0]
    for m in starts.finditer(text):
        i = m.start() + 1
        if not text.startswith(deco, text.rfind("\n", 0, i - 1) + 1):
            cuts.append(i)
    cuts.append(len(text))
    return list(pairwise(cuts))


def guarded_chunks(text: str) -> list[tuple[str, bool]]:
    """Pieces of ``text`` that may hold a guarded import site (source, is a class member).

    The text is cut textually at column-0 statements (not ``else``/``elif``/``except``/
    ``finally``, not a decorated line); long class bodies again at their members.  A piece
    is kept when it has an indented import and an ``if`` test naming a platform or
    ``TYPE_CHECKING``, or an ``import_module`` call.  The caller parses the whole file when
    a piece does not parse; the other pieces' imports are unguarded.
    """
    hits = []
    i = text.find("import")
    while i != -1:
        line = text.rfind("\n", 0, i) + 1
        if text.startswith("import_module", i) or (text[line] in " \t" and _INDENTED_IMPORT.match(text, line)):
            hits.append(i)
        i = text.find("import", i + 6)
    if not hits:
        return []
    out: list[tuple[str, bool]] = []
    for a, b in _cut(text, _TOP, "@"):
        if not any(a <= h < b for h in hits):
            continue
        chunk = text[a:b]
        if len(chunk) > _SPLIT_CLASS and _CLASS_HEAD.match(chunk):
            for c, d in _cut(chunk, _MEMBER, "    @"):
                if any(a + c <= h < a + d for h in hits) and _guarded(chunk[c:d]):
                    out.append((chunk[c:d], c > 0))
        elif _guarded(chunk):
            out.append((chunk, False))
    return out


def _guarded(text: str) -> bool:
    if "import_module" in text:
        return True
    if "import" not in text or not _INDENTED_IMPORT.search(text):
        return False
    return any("TYPE_CHECKING" in (h := m.group(1)) or NON_CUDA.search(h) for m in _IF_HEAD.finditer("\n" + text))


def _dedent(member: str) -> str:
    lines = member.splitlines(keepends=True)
    if any(line.strip() and not line.startswith("    ") for line in lines):
        raise SyntaxError("not a class member")
    return "".join(line[4:] for line in lines)


def _regex_sites(mod: str, text: str, is_pkg: bool, paths: _Modules,
                 edges: list[tuple[str, str | None]] | None = None) -> list[Site]:
    out: list[Site] = []
    for base, name in edges if edges is not None else import_edges(text, mod, is_pkg):
        dsts = paths.prefixes(base)
        if name is not None and f"{base}.{name}" in paths:
            dsts = [*dsts, f"{base}.{name}"]
        out.extend(Site(mod, d, "cuda", "") for d in dsts if d != mod)
    return out


def _ast_sites(mod: str, tree: ast.Module, text: str, is_pkg: bool, paths: _Modules, dynamic: bool) -> list[Site]:
    walker = _SiteWalker(mod, is_pkg, paths, dynamic, _import_lines(text))
    walker.block(tree.body, ())
    out: list[Site] = []
    for targets, c, a, guard in walker.sites:
        kind = "cuda" if c is not False else "platform" if a is not False else None
        if kind is not None:
            out.extend(Site(mod, d, kind, guard if kind == "platform" else "") for d in targets if d != mod)
    return out


def module_sites(mod: str, text: str, is_pkg: bool, paths: Mapping[str, str] | _Modules,
                 tree: ast.Module | None = None,
                 edges: list[tuple[str, str | None]] | None = None) -> list[Site]:
    """The live import sites of one module: by AST where a site may be guarded, else by regex
    (``edges``: this module's :func:`vkc.index.triton_files.import_edges`, if known)."""
    if "import" not in text:
        return []
    if not isinstance(paths, _Modules):
        paths = _Modules(paths)
    dynamic = "import_module" in text
    if tree is not None:
        return _ast_sites(mod, tree, text, is_pkg, paths, dynamic)
    pieces = guarded_chunks(text)
    if not pieces:
        return _regex_sites(mod, text, is_pkg, paths, edges)
    out: list[Site] = []
    try:
        for piece, member in pieces:
            code = _dedent(piece) if member else piece
            out += _ast_sites(mod, ast.parse(code), code, is_pkg, paths, dynamic)
    except (SyntaxError, ValueError):
        try:
            return _ast_sites(mod, ast.parse(text), text, is_pkg, paths, dynamic)
        except (SyntaxError, ValueError):
            return _regex_sites(mod, text, is_pkg, paths, edges)
    # the rest by regex: every edge of the file, less those the parsed pieces hold
    rest = Counter(_regex_sites(mod, text, is_pkg, paths, edges))
    rest.subtract(_regex_sites(mod, "".join(p for p, _ in pieces), is_pkg, paths))
    return out + [s for s, n in sorted(rest.items(), key=lambda x: (x[0].dst, x[0].src)) for _ in range(n) if n > 0]


def import_sites(paths: Mapping[str, str], texts: Mapping[str, str], pkgs: set[str],
                 trees: Mapping[str, ast.Module] | None = None,
                 edges: Mapping[str, list[tuple[str, str | None]]] | None = None) -> list[Site]:
    """Every live import site between modules of ``paths`` (dead ``TYPE_CHECKING`` sites dropped).

    ``trees``: modules already parsed; ``edges``: modules' regex import edges already found."""
    trees, edges = trees or {}, edges or {}
    modules = _Modules(paths)
    out: list[Site] = []
    for mod in sorted(paths):
        out += module_sites(mod, texts[mod], mod in pkgs, modules, trees.get(mod), edges.get(mod))
    return out
