"""Parsed modules and their scopes: the bindings the Triton scan resolves names in.

Every module, class and function becomes a :class:`Scope` holding its local
bindings (name -> list of :data:`Binding`).  Compound statements (``if``,
``try``, ``for``, ``with``) are flattened: a name bound in several branches keeps
all its bindings, and values are the union over them.  Jit functions defined
more than once under a module-level ``if``/``try`` (platform-conditional
definitions) are reduced to one by :func:`branch_score`.
"""
from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field
from typing import Any, cast

from vkc.index.triton_files import from_imports, plain_imports, resolve_relative

Key = tuple[str, str]        # (module, qualname)
# Binding kinds:
#   ("val", value)                   a known value (def, class)
#   ("expr", node, scope)            value of an expression evaluated in scope
#   ("iter", node, scope)            an element of an iterable expression (for-loop target)
#   ("unpack", node, i, scope)       element i of a tuple-valued expression (``a, b = f()``)
#   ("importmod", module)            ``import a.b as x`` / ``import a``
#   ("importfrom", module, name)     ``from module import name``
#   ("opaque",)                      bound to something the scan does not follow
Binding = tuple

_NON_CUDA = re.compile(r"rocm|\bhip\b|is_hip|xpu|is_cpu|(?<![a-z])tpu|gfx\d|\bamd\b|is_amd|intel|hpu|neuron", re.I)
_ROCM = re.compile(r"rocm|\bhip\b|is_hip|gfx\d|\bamd\b|is_amd", re.I)
NON_CUDA = _NON_CUDA          # a test naming a non-CUDA platform (vkc.index.platform_graph)
_TRITON_MODULES = ("triton", "gluon")


@dataclass(eq=False)
class Scope:
    kind: str                               # "module" | "class" | "function"
    mod: ModuleInfo
    node: Any                               # the def / class / module node
    qualname: str                           # "" for the module scope
    parent: Scope | None
    bindings: dict[str, list[Binding]] = field(default_factory=dict)
    params: tuple[str, ...] = ()            # function: every parameter name
    positional: tuple[str, ...] = ()        # function: positional parameters in order
    self_param: str | None = None           # method: name of self/cls
    self_kind: str = "inst"                 # "inst" (self) | "class" (cls)
    returns: list[ast.expr] = field(default_factory=list)
    is_jit: bool = False
    launcher_method: bool = False           # decorated with @kernel_launcher

    @property
    def key(self) -> Key:
        return (self.mod.name, self.qualname)

    def bind(self, name: str, binding: Binding) -> None:
        self.bindings.setdefault(name, []).append(binding)

    def class_scope(self) -> Scope | None:
        return self.parent if self.parent is not None and self.parent.kind == "class" else None


@dataclass(eq=False)
class JitDef:
    key: Key
    node: ast.FunctionDef | ast.AsyncFunctionDef
    scope: Scope
    score: int              # preference among platform-conditional alternatives
    rocm_only: bool


class ModuleInfo:
    """One parsed module: source text, AST, scopes and jit definitions."""

    def __init__(self, name: str, rel: str, text: str, is_pkg: bool):
        self.name = name
        self.rel = rel
        self.text = text
        self.is_pkg = is_pkg
        self.tree = ast.parse(text, filename=rel)
        self._lines: list[str] | None = None
        self._offsets: list[int] | None = None
        self.scope = Scope("module", self, self.tree, "", None)
        self.scopes: dict[int, Scope] = {}          # id(def node) -> scope
        self.jit_defs: list[JitDef] = []
        self.classes: list[Scope] = []
        self.functions: list[Scope] = []
        self.star_imports: list[str] = []
        self.triton_aliases, self.jit_aliases = _triton_aliases(text)
        _Builder(self).block(self.scope, self.tree.body, ())

    # -- source text -------------------------------------------------------
    @property
    def lines(self) -> list[str]:
        if self._lines is None:
            self._lines = self.text.splitlines()
        return self._lines

    def segment(self, node: Any, max_lines: int | None = None) -> str:
        """Source text of ``node`` (like ast.get_source_segment, without re-splitting)."""
        first, last = node.lineno, node.end_lineno or node.lineno
        if max_lines is not None:
            last = min(last, first + max_lines - 1)
        lines = self.lines[first - 1:last]
        if not lines:
            return ""
        if last == (node.end_lineno or node.lineno):
            end = lines[-1].encode()[: node.end_col_offset].decode(errors="replace")
            lines = lines[:-1] + [end]
        start = lines[0].encode()[node.col_offset:].decode(errors="replace")
        return "\n".join([start] + lines[1:]) if len(lines) > 1 else start

    def span(self, node: Any) -> tuple[int, int]:
        """Character offsets of the source lines of ``node``."""
        if self._offsets is None:
            offs, pos = [0], 0
            for line in self.text.splitlines(keepends=True):
                pos += len(line)
                offs.append(pos)
            self._offsets = offs
        offs = self._offsets
        start = offs[min(node.lineno - 1, len(offs) - 1)]
        end = offs[min(node.end_lineno or node.lineno, len(offs) - 1)]
        return start, end

    def search(self, pattern: re.Pattern[str], node: Any) -> bool:
        """Does ``pattern`` occur in the source lines of ``node``?"""
        start, end = self.span(node)
        return pattern.search(self.text, start, end) is not None

    def text_lines(self, first: int, count: int) -> str:
        return "\n".join(self.lines[first - 1:first - 1 + count])

    # -- decorators --------------------------------------------------------
    def is_jit_decorator(self, dec: ast.expr) -> bool:
        core = dec.func if isinstance(dec, ast.Call) else dec
        if isinstance(core, ast.Attribute) and core.attr == "jit":
            return isinstance(core.value, ast.Name) and core.value.id in self.triton_aliases
        return isinstance(core, ast.Name) and core.id in self.jit_aliases


def _triton_aliases(text: str) -> tuple[set[str], set[str]]:
    """Local names bound to the triton / gluon modules, and to ``triton.jit`` (by regex)."""
    mods = {"triton", "gluon"}
    jits: set[str] = set()
    if "import" not in text:
        return mods, jits
    for name, asname in plain_imports(text):
        if asname and name.startswith("triton") and name.split(".")[-1] in _TRITON_MODULES:
            mods.add(asname)
    for _, base, name, asname in from_imports(text):
        if name in _TRITON_MODULES and (base.startswith("triton") or base == "vllm.triton_utils"):
            mods.add(asname or name)
        elif name == "jit" and base.split(".")[0] == "triton":
            jits.add(asname or name)
    return mods, jits


def _test_text(mod: ModuleInfo, test: ast.expr) -> tuple[str, bool]:
    negated = False
    while isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
        negated, test = not negated, test.operand
    return mod.segment(test), negated


def branch_score(path: tuple[tuple[str, bool], ...]) -> tuple[int, bool]:
    """Preference of a definition reached through ``path`` ((test text, in body?) ...).

    The CUDA build wins: the ``else`` of a ROCm/XPU/CPU test, the body of any
    other test (``if TRITON3``, ``if HAS_TRITON``, ``if is_cuda()``), the ``try``
    body over its handlers.  Returns (score, reached only on ROCm).
    """
    score, rocm = 0, False
    for text, in_body in path:
        non_cuda = bool(_NON_CUDA.search(text))
        score += (-1 if in_body else 1) if non_cuda else (1 if in_body else -1)
        if in_body and _ROCM.search(text):
            rocm = True
    return score, rocm


class _Builder:
    """Fills a module's scopes (one pass over the AST)."""

    def __init__(self, mod: ModuleInfo):
        self.mod = mod

    def block(self, scope: Scope, stmts: list[ast.stmt], path: tuple) -> None:
        for st in stmts:
            self.stmt(scope, st, path)

    def stmt(self, scope: Scope, st: ast.stmt, path: tuple) -> None:
        if isinstance(st, (ast.FunctionDef, ast.AsyncFunctionDef)):
            self.function(scope, st, path)
        elif isinstance(st, ast.ClassDef):
            self.klass(scope, st, path)
        elif isinstance(st, ast.Assign):
            for target in st.targets:
                self.target(scope, target, st.value)
        elif isinstance(st, ast.AnnAssign):
            if st.value is not None:
                self.target(scope, st.target, st.value)
        elif isinstance(st, ast.AugAssign):
            pass
        elif isinstance(st, ast.Import):
            for a in st.names:
                if a.asname:
                    scope.bind(a.asname, ("importmod", a.name))
                else:
                    top = a.name.split(".")[0]
                    scope.bind(top, ("importmod", top))
        elif isinstance(st, ast.ImportFrom):
            base = resolve_relative(self.mod.name, self.mod.is_pkg, st.level, st.module or "")
            for a in st.names:
                if a.name == "*":
                    if scope.kind == "module":
                        self.mod.star_imports.append(base)
                    continue
                scope.bind(a.asname or a.name, ("importfrom", base, a.name))
        elif isinstance(st, ast.If):
            if scope.kind == "module":     # platform choice only matters at module level
                text, neg = _test_text(self.mod, st.test)
                self.block(scope, st.body, path + ((text, not neg),))
                self.block(scope, st.orelse, path + ((text, neg),))
            else:
                self.block(scope, st.body, path)
                self.block(scope, st.orelse, path)
        elif isinstance(st, ast.Try) or type(st).__name__ == "TryStar":
            st = cast(ast.Try, st)   # ast.TryStar (3.11+) has the same fields
            self.block(scope, st.body, path + (("try", True),))
            for h in st.handlers:
                if h.name:
                    scope.bind(h.name, ("opaque",))
                self.block(scope, h.body, path + (("try", False),))
            self.block(scope, st.orelse, path + (("try", True),))
            self.block(scope, st.finalbody, path)
        elif isinstance(st, (ast.For, ast.AsyncFor)):
            self.loop_target(scope, st.target, st.iter)
            self.block(scope, st.body, path)
            self.block(scope, st.orelse, path)
        elif isinstance(st, ast.While):
            self.block(scope, st.body, path)
            self.block(scope, st.orelse, path)
        elif isinstance(st, (ast.With, ast.AsyncWith)):
            for item in st.items:
                if item.optional_vars is not None:
                    self.opaque(scope, item.optional_vars)
            self.block(scope, st.body, path)
        elif isinstance(st, ast.Return):
            if st.value is not None and scope.kind == "function":
                scope.returns.append(st.value)
        elif type(st).__name__ == "Match":
            for case in st.cases:  # type: ignore[attr-defined]
                self.block(scope, case.body, path)

    def target(self, scope: Scope, target: ast.expr, value: ast.expr) -> None:
        if isinstance(target, ast.Name):
            scope.bind(target.id, ("expr", value, scope))
        elif isinstance(target, (ast.Tuple, ast.List)):
            if isinstance(value, (ast.Tuple, ast.List)) and len(value.elts) == len(target.elts):
                for t, v in zip(target.elts, value.elts):
                    self.target(scope, t, v)
                return
            starred = False
            for i, t in enumerate(target.elts):
                starred = starred or isinstance(t, ast.Starred)
                if isinstance(t, ast.Name) and not starred:
                    scope.bind(t.id, ("unpack", value, i, scope))
                else:
                    self.opaque(scope, t)
        elif isinstance(target, ast.Attribute) and isinstance(target.value, ast.Name):
            # self.x = value inside a method: an attribute of the class
            cls = scope.class_scope()
            if cls is not None and scope.self_param == target.value.id:
                cls.bind(target.attr, ("expr", value, scope))

    def loop_target(self, scope: Scope, target: ast.expr, it: ast.expr) -> None:
        if isinstance(target, ast.Name):
            scope.bind(target.id, ("iter", it, scope))
        else:
            self.opaque(scope, target)

    def opaque(self, scope: Scope, target: ast.expr) -> None:
        for n in ast.walk(target):
            if isinstance(n, ast.Name):
                scope.bind(n.id, ("opaque",))

    def function(self, scope: Scope, fn: ast.FunctionDef | ast.AsyncFunctionDef, path: tuple) -> None:
        qual = f"{scope.qualname}.{fn.name}" if scope.qualname else fn.name
        child = Scope("function", self.mod, fn, qual, scope)
        a = fn.args
        positional = [p.arg for p in (*a.posonlyargs, *a.args)]
        names = positional + [p.arg for p in a.kwonlyargs]
        names += [p.arg for p in (a.vararg, a.kwarg) if p is not None]
        child.params, child.positional = tuple(names), tuple(positional)
        dec_names = {_terminal(d) for d in fn.decorator_list}
        if scope.kind == "class" and positional and "staticmethod" not in dec_names:
            child.self_param = positional[0]
            child.self_kind = "class" if "classmethod" in dec_names else "inst"
        child.launcher_method = "kernel_launcher" in dec_names
        child.is_jit = any(self.mod.is_jit_decorator(d) for d in fn.decorator_list)
        self.mod.scopes[id(fn)] = child
        if child.is_jit:
            score, rocm = branch_score(path) if scope.kind == "module" else (0, False)
            self.mod.jit_defs.append(JitDef(child.key, fn, child, score, rocm))
            scope.bind(fn.name, ("val", ("jit",) + child.key))
        else:
            self.mod.functions.append(child)
            scope.bind(fn.name, ("val", ("func",) + child.key))
        self.block(child, fn.body, ())

    def klass(self, scope: Scope, cls: ast.ClassDef, path: tuple) -> None:
        qual = f"{scope.qualname}.{cls.name}" if scope.qualname else cls.name
        child = Scope("class", self.mod, cls, qual, scope)
        self.mod.scopes[id(cls)] = child
        self.mod.classes.append(child)
        scope.bind(cls.name, ("val", ("class",) + child.key))
        self.block(child, cls.body, ())


def _terminal(node: ast.expr) -> str | None:
    """Last name of a (called) dotted expression: ``a.b.c(...)`` -> ``c``."""
    if isinstance(node, ast.Call):
        node = node.func
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return None


terminal = _terminal
