"""Static value resolution across vLLM modules (what may this expression be?).

Values are small tuples:

=============================  ==============================================
``("jit", module, qualname)``  a ``@triton.jit`` / ``@gluon.jit`` function
``("func", module, qualname)`` a host (plain Python) function
``("class", module, qualname)`` / ``("inst", module, qualname)``  a class / an instance
``("mod", module)``            a vLLM module or package
``("ext", dotted)``            something outside vLLM (``torch.empty``)
``("param", module, qualname, name)``  parameter ``name`` of host function ``qualname``
``("seq", n)``                 a literal dict/list/tuple/set (``self.seqs[n]``)
=============================  ==============================================

:meth:`Project.vals` returns the set of values an expression may take, following
local assignments, conditional expressions, ``{...}.get(k)``, ``d[k]``,
``staticmethod(f)``, ``wrap_triton(f)``, factory functions' ``return``, class
attributes (through bases) and ``from x import y`` / ``import x as y`` chains.
"""
from __future__ import annotations

import ast
from pathlib import Path
from typing import cast

from vkc.index.triton_scopes import JitDef, Key, ModuleInfo, Scope, terminal

Value = tuple
EMPTY: frozenset = frozenset()
_PASS_THROUGH_CALLS = {"staticmethod", "classmethod", "wrap_triton", "partial"}
_SAME_VALUE_ATTRS = {"fn"}      # Autotuner/Heuristics ``.fn`` is the wrapped kernel
_MAX_DEPTH = 60


class Project:
    """All parsed modules of one tree plus the memoised evaluator."""

    def __init__(self, root: Path, paths: dict[str, str], texts: dict[str, str] | None = None,
                 allowed: set[str] | None = None):
        self.root = root
        self.paths = paths                          # module -> relative path
        # modules that may be parsed; None = all.  Others resolve to nothing:
        # a module that neither defines nor imports a kernel cannot hold one.
        self.allowed = allowed
        self.pkgs = {m for m, rel in paths.items() if rel.endswith("/__init__.py")}
        self.prefixes = {m.rsplit(".", i)[0] for m in paths for i in range(m.count(".") + 1)}
        self._texts = texts or {}
        self.mods: dict[str, ModuleInfo | None] = {}
        self.jits: dict[Key, JitDef] = {}           # chosen definition per key
        self.jit_alts: dict[Key, list[JitDef]] = {}
        self.funcs: dict[Key, list[Scope]] = {}
        self.classes: dict[Key, list[Scope]] = {}
        self.jit_names: set[str] = set()
        self.jit_method_names: dict[str, list[Key]] = {}
        self.seqs: list[tuple[ast.expr, Scope]] = []
        self.parse_errors: list[str] = []
        self._memo: dict[tuple[int, int], frozenset] = {}
        self._active: set[tuple[int, int]] = set()
        self._gmemo: dict[tuple[str, str], frozenset] = {}
        self._cmemo: dict[tuple[Key, str], frozenset] = {}
        self._rmemo: dict[Key, frozenset] = {}

    # -- modules -------------------------------------------------------------
    def module(self, name: str) -> ModuleInfo | None:
        """The parsed module ``name`` (parsed on first use), None outside the tree."""
        if name in self.mods:
            return self.mods[name]
        rel = self.paths.get(name)
        info = None
        if rel is not None and (self.allowed is None or name in self.allowed):
            text = self._texts.get(name)
            if text is None:
                text = (self.root / rel).read_text(encoding="utf-8", errors="replace")
            try:
                info = ModuleInfo(name, rel, text, name in self.pkgs)
            except (SyntaxError, ValueError):
                self.parse_errors.append(rel)
        self.mods[name] = info
        if info is not None:
            self._register(info)
        return info

    def _register(self, mod: ModuleInfo) -> None:
        for d in mod.jit_defs:
            self.jit_alts.setdefault(d.key, []).append(d)
            cur = self.jits.get(d.key)
            # highest score wins; on a tie the later definition (Python rebinding)
            if cur is None or d.score >= cur.score:
                self.jits[d.key] = d
            self.jit_names.add(d.node.name)
            if d.scope.parent is not None and d.scope.parent.kind == "class":
                self.jit_method_names.setdefault(d.node.name, []).append(d.key)
        for f in mod.functions:
            self.funcs.setdefault(f.key, []).append(f)
        for c in mod.classes:
            self.classes.setdefault(c.key, []).append(c)

    # -- evaluation ----------------------------------------------------------
    def vals(self, node: ast.expr, scope: Scope, depth: int = 0) -> frozenset:
        """The set of values ``node`` may take when evaluated in ``scope``."""
        k = (id(node), id(scope))
        hit = self._memo.get(k)
        if hit is not None:
            return hit
        if k in self._active or depth > _MAX_DEPTH:
            return EMPTY
        self._active.add(k)
        try:
            out = frozenset(self._vals(node, scope, depth + 1))
        finally:
            self._active.discard(k)
        self._memo[k] = out
        return out

    def _vals(self, node: ast.expr, scope: Scope, d: int) -> set:
        if isinstance(node, ast.Name):
            return set(self.name_vals(node.id, scope, d))
        if isinstance(node, ast.Attribute):
            out: set = set()
            for b in self.vals(node.value, scope, d):
                out |= self.attr_vals(b, node.attr, d)
            return out
        if isinstance(node, ast.IfExp):
            return set(self.vals(node.body, scope, d) | self.vals(node.orelse, scope, d))
        if isinstance(node, ast.BoolOp):
            out = set()
            for v in node.values:
                out |= self.vals(v, scope, d)
            return out
        if isinstance(node, ast.NamedExpr):
            return set(self.vals(node.value, scope, d))
        if isinstance(node, ast.Call):
            return self._call_vals(node, scope, d)
        if isinstance(node, ast.Subscript):
            return self.elements(self.vals(node.value, scope, d), d)
        if isinstance(node, (ast.Dict, ast.List, ast.Tuple, ast.Set)):
            self.seqs.append((node, scope))
            return {("seq", len(self.seqs) - 1)}
        return set()

    def elements(self, values: frozenset, d: int) -> set:
        """Values of the elements of the literal containers among ``values``."""
        out: set = set()
        for v in values:
            if v[0] != "seq":
                continue
            node, scope = self.seqs[v[1]]
            elts = node.values if isinstance(node, ast.Dict) else node.elts
            for e in elts:
                if e is not None and not isinstance(e, ast.Starred):
                    out |= self.vals(e, scope, d)
        return out

    def _unpack(self, values: frozenset, index: int, d: int) -> set:
        """Element ``index`` of the literal tuples/lists among ``values``."""
        out: set = set()
        for v in values:
            if v[0] != "seq":
                continue
            node, scope = self.seqs[v[1]]
            if isinstance(node, (ast.Tuple, ast.List)) and index < len(node.elts) \
                    and not any(isinstance(e, ast.Starred) for e in node.elts[:index + 1]):
                out |= self.vals(node.elts[index], scope, d)
        return out

    def _call_vals(self, node: ast.Call, scope: Scope, d: int) -> set:
        f = node.func
        name = terminal(f)
        if name in _PASS_THROUGH_CALLS and node.args:
            return set(self.vals(node.args[0], scope, d))
        if isinstance(f, ast.Attribute) and f.attr in ("get", "pop", "setdefault"):
            got = self.elements(self.vals(f.value, scope, d), d)
            if got:
                return got
        out: set = set()
        for v in self.vals(f, scope, d):
            if v[0] == "func":
                out |= self.return_vals((v[1], v[2]), d)
            elif v[0] == "class":
                out.add(("inst", v[1], v[2]))
        return out

    def return_vals(self, key: Key, d: int = 0) -> frozenset:
        """Values a host function may return (factories returning a nested kernel)."""
        hit = self._rmemo.get(key)
        if hit is not None:
            return hit
        self._rmemo[key] = EMPTY        # cycle guard
        out: set = set()
        for fs in self.funcs.get(key, ()):
            for r in fs.returns:
                out |= self.vals(r, fs, d)
        res = frozenset(v for v in out if v[0] in ("jit", "func", "class", "seq", "inst"))
        self._rmemo[key] = res
        return res

    def name_vals(self, name: str, scope: Scope, d: int = 0) -> frozenset:
        s: Scope | None = scope
        while s is not None:
            if s.kind == "function":
                if name in s.bindings or name in s.params:
                    out = set(self.binds_vals(s.bindings.get(name, ()), d))
                    if name in s.params:
                        out.add(self.param_value(s, name))
                    return frozenset(out)
            elif s.kind == "class":
                if s is scope and name in s.bindings:
                    return self.binds_vals(s.bindings[name], d)
            else:
                return self.global_vals(s.mod.name, name, d)
            s = s.parent
        return EMPTY

    @staticmethod
    def param_value(fs: Scope, name: str) -> Value:
        if name == fs.self_param:
            cls = fs.class_scope()
            assert cls is not None
            return (fs.self_kind,) + cls.key
        return ("param", fs.mod.name, fs.qualname, name)

    def global_vals(self, module: str, name: str, d: int = 0) -> frozenset:
        k = (module, name)
        hit = self._gmemo.get(k)
        if hit is not None:
            return hit
        self._gmemo[k] = EMPTY          # cycle guard (import loops)
        mod = self.module(module)
        out: set = set()
        if mod is not None:
            binds = mod.scope.bindings.get(name)
            if binds:
                out |= self.binds_vals(binds, d)
            else:
                for star in mod.star_imports:
                    out |= self.global_vals(star, name, d)
        sub = f"{module}.{name}"
        if sub in self.prefixes:
            out.add(("mod", sub))
        elif mod is None and module not in self.prefixes:
            out.add(("ext", sub))
        res = frozenset(out)
        self._gmemo[k] = res
        return res

    def binds_vals(self, binds, d: int = 0) -> frozenset:
        out: set = set()
        for b in binds:
            kind = b[0]
            if kind == "val":
                out.add(b[1])
            elif kind == "expr":
                out |= self.vals(b[1], b[2], d)
            elif kind == "iter":
                out |= self.elements(self.vals(b[1], b[2], d), d)
            elif kind == "unpack":
                out |= self._unpack(self.vals(b[1], b[3], d), b[2], d)
            elif kind == "importmod":
                out.add(("mod", b[1]) if b[1] in self.prefixes else ("ext", b[1]))
            elif kind == "importfrom":
                if b[1] in self.prefixes:
                    out |= self.global_vals(b[1], b[2], d)
                else:
                    out.add(("ext", f"{b[1]}.{b[2]}"))
        return frozenset(out)

    def attr_vals(self, base: Value, attr: str, d: int = 0) -> frozenset:
        kind = base[0]
        if kind == "mod":
            return self.global_vals(base[1], attr, d)
        if kind in ("class", "inst"):
            return self.class_attr((base[1], base[2]), attr, d)
        if kind == "ext":
            return frozenset({("ext", f"{base[1]}.{attr}")})
        if kind in ("jit", "param") and attr in _SAME_VALUE_ATTRS:
            return frozenset({base})
        return EMPTY

    def class_attr(self, ckey: Key, attr: str, d: int = 0) -> frozenset:
        """``Cls.attr`` / ``self.attr``: the class body, ``self.attr = ...`` and bases."""
        k = (ckey, attr)
        hit = self._cmemo.get(k)
        if hit is not None:
            return hit
        self._cmemo[k] = EMPTY
        out: set = set()
        for cs in self.classes.get(ckey, ()):
            if attr in cs.bindings:
                out |= self.binds_vals(cs.bindings[attr], d)
                continue
            for base in cast(ast.ClassDef, cs.node).bases:
                if isinstance(base, ast.Subscript):
                    base = base.value
                for bv in self.vals(base, cast(Scope, cs.parent), d):
                    if bv[0] == "class":
                        out |= self.class_attr((bv[1], bv[2]), attr, d)
        res = frozenset(out)
        self._cmemo[k] = res
        return res
