"""Collect the closure of an entry kernel: jit helpers, aliases, constants and imports.

Each item remembers *edits* to its original source text; edits are rendered lazily
(callables over the final name map) because names are only fixed once every item is
known and collisions across modules are settled. Items and edits live in :mod:`.items`,
decorator handling in :mod:`.decorators`.
"""
from __future__ import annotations

import ast
import builtins
from collections.abc import Callable
from typing import Any

from vkc.errors import ExtractionError
from vkc.extract.triton.decorators import AUTOTUNE, HEURISTICS, DecoratorScanner
from vkc.extract.triton.evalcore import JIT_PATHS, _EnumMember
from vkc.extract.triton.evaluator import Program
from vkc.extract.triton.items import Edit, Item, Key, Names, _needs_constexpr, _root_name, apply_edits, span
from vkc.extract.triton.modinfo import Binding, ModuleInfo, source_segment
from vkc.extract.triton.values import (
    CANONICAL,
    ConfigVal,
    Constexpr,
    ExtRef,
    FuncRef,
    LambdaVal,
    NotLiteral,
    Opaque,
    PlatformObj,
    Unresolved,
    VllmModule,
    to_literal,
)

_PY_BUILTINS = set(dir(builtins))


class Collector(DecoratorScanner):
    """Walks the entry kernel and everything it reaches."""

    def __init__(self, prog: Program):
        self.prog = prog
        self.items: dict[Key, Item] = {}
        self.order: list[Key] = []
        self.notes: list[str] = []
        self.queue: list[Item] = []

    # ---- items ---------------------------------------------------------------------------
    def ext_module(self, canonical: str) -> Key:
        key = ("<ext>", canonical)
        if key not in self.items:
            self._add(Item(key, "module", "", canonical))
        return key

    def _add(self, it: Item) -> Item:
        self.items[it.key] = it
        self.order.append(it.key)
        return it

    def func_item(self, ref: FuncRef, node: ast.AST | None = None) -> Key:
        key = (ref.module, ref.name)
        if key in self.items:
            return key
        info = self.prog.module(ref.module)
        if node is None:
            b = info.bindings[ref.name]
            if b.kind == "ambiguous":
                b = self.prog.disambiguate(b)
            node = b.node
            if b.note:
                self.notes.append(f"{ref.name}: {b.note} ({info.file}:{node.lineno})")
        if ref.kind == "class" and not self._is_aggregate(ref.module, node):
            raise ExtractionError(
                f"{ref.module}.{ref.name} is a Python class referenced from a kernel",
                hint="only @aggregate classes (gluon) can be inlined")
        it = self._add(Item(key, "class" if ref.kind == "class" else "func", ref.module, ref.name, node,
                            jit=ref.kind == "jit"))
        self.queue.append(it)
        return key

    def run(self) -> None:
        while self.queue:
            it = self.queue.pop(0)
            info = self.prog.module(it.module)
            if it.kind == "func":
                self.scan_function(it, info, it.node)
            else:
                self.scan_class(it, info, it.node)

    # ---- scanning ------------------------------------------------------------------------
    def scan_class(self, it: Item, info: ModuleInfo, node: ast.ClassDef) -> None:
        for d in node.decorator_list:
            self.scan_expr(it, info, d, set(), host=True)
        for st in node.body:
            if isinstance(st, (ast.FunctionDef, ast.AsyncFunctionDef)):
                self.scan_function(it, info, st)
            elif isinstance(st, (ast.AnnAssign, ast.Assign)):
                self.scan_expr(it, info, st, set(), host=False)

    def scan_function(self, it: Item, info: ModuleInfo, node: ast.FunctionDef) -> None:
        for d in node.decorator_list:
            self.scan_decorator(it, info, d)
        a = node.args
        params = a.posonlyargs + a.args + a.kwonlyargs + [x for x in (a.vararg, a.kwarg) if x]
        for p in params:
            if p.annotation is not None:
                self.scan_expr(it, info, p.annotation, set(), host=False)
        pos = a.posonlyargs + a.args
        for p, d in zip(pos[len(pos) - len(a.defaults):], a.defaults):
            self.scan_default(it, info, p.arg, d)
        for p, d in zip(a.kwonlyargs, a.kw_defaults):
            if d is not None:
                self.scan_default(it, info, p.arg, d)
        if node.returns is not None:
            self.scan_expr(it, info, node.returns, set(), host=False)
        local = {p.arg for p in params}
        for sub in ast.walk(node):
            if sub is node:
                continue
            if isinstance(sub, ast.Name) and isinstance(sub.ctx, (ast.Store, ast.Del)):
                local.add(sub.id)
            elif isinstance(sub, ast.arg):
                local.add(sub.arg)
            elif isinstance(sub, (ast.FunctionDef, ast.ClassDef)):
                local.add(sub.name)
        for st in node.body:
            self.scan_expr(it, info, st, local, host=False)

    def scan_default(self, it: Item, info: ModuleInfo, pname: str, d: ast.expr) -> None:
        refs = self._global_names(d, set())
        if all(self._is_ext_module(info.name, n) for n in refs):
            self.scan_expr(it, info, d, set(), host=True)
            return
        try:
            v = self.prog.eval(d, info.name)
            uses: set[str] = set()
            lit = to_literal(v, uses)
        except (Unresolved, NotLiteral) as e:
            raise ExtractionError(f"default of {pname} in {info.file}:{d.lineno} cannot be resolved: {e}",
                                  hint="the default depends on runtime state vkc cannot evaluate") from None
        for u in sorted(uses):
            it.dep(self.ext_module(u))
        src = source_segment(info.text, d)
        origin = ""
        root = _root_name(d)
        if root is not None:
            b = info.bindings.get(root.id)
            if b is not None and b.kind == "assign" and b.value is not None:
                origin = f" (`{root.id} = {source_segment(info.text, b.value)}`)"
        self.notes.append(f"{pname} default `{src}` resolved to {lit}{origin} for CUDA (H100)")
        s, e = span(info, d)
        it.edits.append(Edit(s, e, lambda names, lit=lit: lit))


    # ---- references ----------------------------------------------------------------------
    def _global_names(self, node, local) -> list[str]:
        return [n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)
                and n.id not in local]

    def _is_ext_module(self, module: str, name: str) -> bool:
        try:
            v, _ = self.prog.lookup(module, name)
        except Unresolved:
            return name in _PY_BUILTINS
        return isinstance(v, ExtRef) and v.path in CANONICAL

    def scan_expr(self, it: Item, info: ModuleInfo, node: ast.AST, local: set, host: bool) -> None:
        """Record references to globals inside ``node``."""
        stack = [(node, local)]
        while stack:
            n, loc = stack.pop()
            if isinstance(n, ast.Lambda):
                loc = loc | {a.arg for a in n.args.args + n.args.kwonlyargs}
                stack.append((n.body, loc))
                continue
            if isinstance(n, (ast.ListComp, ast.SetComp, ast.GeneratorExp, ast.DictComp)):
                loc = loc | {x.id for g in n.generators for x in ast.walk(g.target) if isinstance(x, ast.Name)}
            if isinstance(n, ast.Attribute) and isinstance(n.ctx, ast.Load):
                root = _root_name(n)
                if root is not None and root.id not in loc and self._chain(it, info, n, root, host):
                    continue
            if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load) and n.id not in loc:
                self.ref_name(it, info, n, host)
                continue
            for c in reversed(list(ast.iter_child_nodes(n))):
                stack.append((c, loc))

    def _chain(self, it, info, node: ast.Attribute, root: ast.Name, host: bool) -> bool:
        """Handle ``m.f`` (vLLM module attribute) and ``obj.attr`` on evaluated globals."""
        try:
            base, _ = self.prog.lookup(info.name, root.id)
        except Unresolved:
            return False
        if isinstance(base, FuncRef) and base.kind == "class":
            if self._is_aggregate(base.module, self.prog.module(base.module).bindings[base.name].node):
                return False
        elif not isinstance(base, (VllmModule, Opaque, PlatformObj, Constexpr)):
            return False
        # the longest chain prefix that evaluates
        chain = []
        cur = node
        while isinstance(cur, ast.Attribute):
            chain.append(cur)
            cur = cur.value
        if cur is not root:
            return False
        for sub in chain:  # outermost first
            try:
                v = self.prog.eval(sub, info.name)
            except Unresolved:
                continue
            if isinstance(v, FuncRef) and v.kind in ("jit", "py"):
                key = self.func_item(v)
                it.dep(key)
                s, e = span(info, sub)
                it.edits.append(Edit(s, e, lambda names, k=key: names[k]))
                return True
            if isinstance(v, ExtRef):
                txt = self._ext_ref(it, v, info)
                s, e = span(info, sub)
                it.edits.append(Edit(s, e, txt))
                return True
            if isinstance(v, VllmModule) or (isinstance(v, FuncRef) and v.kind == "class"):
                continue
            if isinstance(v, _EnumMember):
                v = v.value
            try:
                uses: set[str] = set()
                lit = to_literal(v, uses)
            except NotLiteral:
                continue
            for u in sorted(uses):
                it.dep(self.ext_module(u))
            wrap = lit if host or not _needs_constexpr(v) else f"tl.constexpr({lit})"
            if wrap != lit:
                it.dep(self.ext_module("tl"))
            s, e = span(info, sub)
            it.edits.append(Edit(s, e, lambda names, t=wrap: t))
            self.notes.append(f"`{source_segment(info.text, sub)}` in {it.name} resolved to {lit}")
            return True
        raise ExtractionError(f"cannot resolve `{source_segment(info.text, node)}` in {info.file}:{node.lineno}",
                              hint="the expression depends on runtime objects")

    def _ext_ref(self, it: Item, v: ExtRef, info: ModuleInfo) -> Callable[[Names], str]:
        if v.path in CANONICAL:
            key = self.ext_module(CANONICAL[v.path])
            it.dep(key)
            return lambda names, k=key: names[k]
        uses: set[str] = set()
        try:
            txt = to_literal(v, uses)
        except NotLiteral as e:
            raise ExtractionError(str(e), hint="only triton/torch/math objects can be referenced") from None
        for u in sorted(uses):
            it.dep(self.ext_module(u))
        return lambda names, t=txt: t

    def ref_name(self, it: Item, info: ModuleInfo, n: ast.Name, host: bool) -> None:
        try:
            v, b = self.prog.lookup(info.name, n.id)
        except Unresolved as e:
            if n.id in _PY_BUILTINS:
                return
            raise ExtractionError(f"unresolved name `{n.id}` in {it.name} ({info.file}:{n.lineno}): {e}",
                                  hint="the kernel refers to a name vkc cannot resolve statically") from None
        s, e = span(info, n)
        key = self.value_item(v, b, n.id, info, host)
        if key is None:
            lit = self._literal(it, v, host, n.id, info)
            it.edits.append(Edit(s, e, lambda names, t=lit: t))
            return
        it.dep(key)
        it.edits.append(Edit(s, e, lambda names, k=key: names[k]))

    def _literal(self, it, v, host, name, info) -> str:
        uses: set[str] = set()
        try:
            lit = to_literal(v, uses)
        except NotLiteral as e:
            raise ExtractionError(f"`{name}` in {info.file} is not a literal value: {e}",
                                  hint="kernels may only use constexpr globals") from None
        for u in sorted(uses):
            it.dep(self.ext_module(u))
        return lit

    def value_item(self, v: Any, b: Binding | None, name: str, info: ModuleInfo, host: bool) -> Key | None:
        """The item a global's value becomes; None to inline it as a literal (host text)."""
        if isinstance(v, ExtRef):
            if v.path in CANONICAL:
                return self.ext_module(CANONICAL[v.path])
            owner = b.module if b is not None else info.name
            key = (owner, b.name if b is not None else name)
            if key not in self.items:
                uses: set[str] = set()
                if b is not None and b.kind in ("import", "importfrom"):
                    stmt = (f"import {b.target}" if b.kind == "import" else f"from {b.target} import {b.attr}")
                    it = self._add(Item(key, "import", owner, key[1]))
                    base = b.target.split(".")[-1] if b.kind == "import" else b.attr
                    it.render = lambda names, k=key, st=stmt, base=base: st + ("" if names[k] == base else f" as {names[k]}")
                else:
                    try:
                        txt = to_literal(v, uses)
                    except NotLiteral as e:
                        raise ExtractionError(str(e), hint="only triton/torch/math objects can be referenced") from None
                    it = self._add(Item(key, "alias", owner, key[1]))
                    it.render = lambda names, k=key, t=txt: f"{names[k]} = {t}"
                    for u in sorted(uses):
                        it.dep(self.ext_module(u))
            return key
        if isinstance(v, FuncRef):
            return self.func_item(v)
        if isinstance(v, (VllmModule, PlatformObj, LambdaVal)):
            raise ExtractionError(f"`{name}` ({type(v).__name__}) is used as a value in {info.file}",
                                  hint="only attributes of it can be resolved")
        if host or b is None:
            return None
        key = (b.module, b.name)
        if key not in self.items:
            uses = set()
            try:
                txt = to_literal(v, uses)
            except NotLiteral as e:
                raise ExtractionError(f"global `{name}` in {info.file} has no literal form: {e}",
                                      hint="kernels may only use constexpr globals") from None
            plain_txt = txt
            if not host and _needs_constexpr(v):
                txt = f"tl.constexpr({txt})"
                uses.add("tl")
                self.notes.append(f"global {b.name} = {v!r} is used inside a kernel; emitted as tl.constexpr "
                                  f"(Triton only accepts constexpr globals)")
            it = self._add(Item(key, "const", b.module, b.name))
            orig = source_segment(self.prog.module(b.module).text, b.value) if b.value is not None else ""
            comment = "" if orig in (txt, plain_txt) or len(orig) > 80 or "\n" in orig else f"  # from: {orig}"
            it.render = lambda names, k=key, t=txt, c=comment: f"{names[k]} = {t}{c}"
            for u in sorted(uses):
                it.dep(self.ext_module(u))
            if b.note:
                self.notes.append(f"{b.name}: {b.note}")
        return key


__all__ = [
    "AUTOTUNE",
    "HEURISTICS",
    "JIT_PATHS",
    "Collector",
    "ConfigVal",
    "Edit",
    "Item",
    "LambdaVal",
    "apply_edits",
    "span",
]
