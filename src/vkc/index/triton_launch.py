"""Find where jit functions are launched (host code) and called (device code).

Launch forms (``LaunchSite.form``):

* ``grid``: ``K[grid](...)``, also ``wrap_triton(K)[grid](...)``, ``self.kernel[grid]``,
  ``mod.K[grid]`` and local aliases (``k = A if c else B``, ``{..}.get(w)``,
  factories returning a nested kernel), and ``launcher = K[grid]``;
* ``warmup``: ``K.warmup(...)``;
* ``dispatcher``: ``@triton_kernel_dispatcher_with_warmup(kernel=K, ...)``;
* ``launcher_class``: a class with an ``@kernel_launcher`` method launches its
  ``kernel`` attribute (jit staticmethod, ``kernel = staticmethod(f)``,
  ``kernel = f``); a ``kernel=K`` override in the returned launch spec too;
* ``indirect``: a host function that launches one of its parameters
  (``param[grid](...)``, ``param.warmup``, or passing it on to another such
  function) makes each call passing a jit function for that parameter a launch.

Device side: a jit function referenced from another jit function's body (call,
``tl.reduce(x, 0, combine)``, aggregate ``self.method()``) is a helper use.
"""
from __future__ import annotations

import ast
import re
import textwrap
from collections.abc import Iterator
from typing import Any

from vkc.index.triton_files import has_launch_token
from vkc.index.triton_resolve import Project
from vkc.index.triton_scopes import Key, Scope, terminal
from vkc.records import LaunchSite

_DISPATCHER = "triton_kernel_dispatcher_with_warmup"
_IDENT = re.compile(r"[A-Za-z_]\w*")
_UNSET = object()
TEXT_LINES = 3


def own_nodes(body: list[ast.stmt]) -> Iterator[Any]:   # any AST node: callers dispatch on its type
    """Nodes of a scope's body, not descending into nested def/class bodies.

    Nested defs/classes are yielded themselves, with their decorators, default
    values and bases (which belong to the enclosing scope).  Order is not
    source order.
    """
    stack: list = list(body)
    pop, push, extend = stack.pop, stack.append, stack.extend
    AST = ast.AST
    while stack:
        n = pop()
        yield n
        t = type(n)
        if t is ast.FunctionDef or t is ast.AsyncFunctionDef:
            extend(n.decorator_list)
            extend(n.args.defaults)
            extend(x for x in n.args.kw_defaults if x is not None)
            continue
        if t is ast.ClassDef:
            extend(n.decorator_list)
            extend(n.bases)
            extend(k.value for k in n.keywords)
            continue
        for f in n._fields:
            v = getattr(n, f, None)
            if type(v) is list:
                for x in v:
                    if isinstance(x, AST):
                        push(x)
            elif isinstance(v, AST):
                push(v)


def host_wrapper(scope: Scope) -> str | None:
    s: Scope | None = scope
    while s is not None and s.kind != "function":
        s = s.parent
    return s.qualname if s is not None else None


class LaunchCollector:
    def __init__(self, project: Project):
        self.p = project
        self.sites: dict[Key, dict[tuple, LaunchSite]] = {}
        self.launcher_params: dict[Key, set[str]] = {}
        self.calls: dict[str, list[tuple[ast.Call, Scope]]] = {}
        self.helper_of: dict[Key, set[Key]] = {}       # callee -> callers
        self.host_names: list[tuple[ast.Name, Scope]] = []
        self._method_refs: set[tuple[str, str]] = set()  # (module, attr) from jit bodies
        self._device_done: set[int] = set()
        self._skipped: list[tuple[Scope, Any]] = []

    # -- host code -----------------------------------------------------------
    def walk_module(self, mod) -> None:
        """Every host scope and jit body of ``mod``."""
        self.walk_scope(mod.scope, mod.tree.body)

    def walk_device_only(self, mod) -> None:
        """Only the jit bodies of ``mod`` (a module without launch-like text)."""
        for d in mod.jit_defs:
            self.device(d.scope)

    def launcher_names(self) -> set[str]:
        return {key[1].rsplit(".", 1)[-1] for key in self.launcher_params}

    def walk_scope(self, scope: Scope, body: list[ast.stmt]) -> None:
        mod = scope.mod
        jit_names = self.p.jit_names
        for n in own_nodes(body):
            t = type(n)
            if t is ast.Call:
                self._call(n, scope)
            elif t is ast.Name:
                if n.id in jit_names and type(n.ctx) is ast.Load:
                    self.host_names.append((n, scope))
            elif t is ast.FunctionDef or t is ast.AsyncFunctionDef:
                child = mod.scopes[id(n)]
                self._dispatcher(n, child, scope)
                if child.is_jit:
                    self.device(child)
                elif child.launcher_method or has_launch_token(mod.text, *mod.span(n)):
                    self.walk_scope(child, n.body)
                else:
                    # no launch-like text: walked later only if it calls a launcher helper
                    self._skipped.append((child, n))
            elif t is ast.ClassDef:
                child = mod.scopes[id(n)]
                self._launcher_class(child)
                self.walk_scope(child, n.body)
            elif t is ast.Assign:
                if type(n.value) is ast.Subscript:
                    self.launch(n.value.value, scope, n.value, "grid", only_jit=True)
            elif t is ast.Dict and scope.launcher_method:
                for k, v in zip(n.keys, n.values):
                    if isinstance(k, ast.Constant) and k.value == "kernel":
                        self.launch(v, scope, v, "launcher_class")

    def walk_skipped(self, pattern: re.Pattern) -> None:
        """Walk the skipped host functions whose text matches ``pattern``."""
        todo = [(c, n) for c, n in self._skipped if c.mod.search(pattern, n)]
        self._skipped = [(c, n) for c, n in self._skipped if not c.mod.search(pattern, n)]
        for child, n in todo:
            self.walk_scope(child, n.body)

    def _call(self, n: ast.Call, scope: Scope) -> None:
        f = n.func
        if isinstance(f, ast.Subscript):
            self.launch(f.value, scope, n, "grid")
        elif isinstance(f, ast.Attribute) and f.attr == "warmup":
            self.launch(f.value, scope, n, "warmup")
        name = terminal(f)
        if name is not None:
            self.calls.setdefault(name, []).append((n, scope))
        if scope.launcher_method:
            for kw in n.keywords:
                if kw.arg == "kernel":
                    self.launch(kw.value, scope, kw.value, "launcher_class")

    def _dispatcher(self, fn: ast.FunctionDef, child: Scope, outer: Scope) -> None:
        for dec in fn.decorator_list:
            if isinstance(dec, ast.Call) and terminal(dec.func) == _DISPATCHER:
                for kw in dec.keywords:
                    if kw.arg == "kernel":
                        self.launch(kw.value, outer, dec, "dispatcher", wrapper=child.qualname)

    def _launcher_class(self, cls: Scope) -> None:
        for st in cls.node.body:
            if not isinstance(st, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            ms = cls.mod.scopes[id(st)]
            if not ms.launcher_method:
                continue
            first = st.decorator_list[0].lineno if st.decorator_list else st.lineno
            text = textwrap.dedent(cls.mod.text_lines(first, TEXT_LINES))
            for v in self.p.class_attr(cls.key, "kernel"):
                if v[0] == "jit":
                    self.add_site((v[1], v[2]), ms, first, "launcher_class", ms.qualname, text)

    def launch(self, expr: ast.expr, scope: Scope, site: Any, form: str,
               wrapper=_UNSET, only_jit: bool = False) -> None:
        for v in self.p.vals(expr, scope):
            if v[0] == "jit":
                w = host_wrapper(scope) if wrapper is _UNSET else wrapper
                self.add_site((v[1], v[2]), scope, site.lineno, form, w,
                              scope.mod.segment(site, TEXT_LINES))
            elif v[0] == "param" and form in ("grid", "warmup") and not only_jit:
                self.launcher_params.setdefault((v[1], v[2]), set()).add(v[3])

    def add_site(self, key: Key, scope: Scope, line: int, form: str,
                 wrapper: str | None, text: str) -> None:
        rel = scope.mod.rel
        site = LaunchSite(file=rel, line=line, wrapper=wrapper, form=form, text=text)
        self.sites.setdefault(key, {}).setdefault((rel, line, form), site)

    # -- indirect launches -----------------------------------------------------
    def resolve_indirect(self) -> bool:
        """Resolve calls to launcher functions; True if new launcher params appeared."""
        grew = False
        changed = True
        while changed:
            changed = False
            by_name: dict[str, list[Key]] = {}
            for key in self.launcher_params:
                by_name.setdefault(key[1].rsplit(".", 1)[-1], []).append(key)
            for name in sorted(by_name):
                keys = by_name[name]
                for call, scope in self.calls.get(name, ()):
                    fvals = self.p.vals(call.func, scope)
                    targets = [(v[1], v[2]) for v in fvals
                               if v[0] == "func" and (v[1], v[2]) in self.launcher_params]
                    if not targets and not fvals and isinstance(call.func, ast.Attribute) \
                            and len(keys) == 1:
                        targets = keys      # method call on a receiver of unknown type
                    for key in targets:
                        if self._indirect_call(call, scope, key):
                            changed = grew = True
        return grew

    def _indirect_call(self, call: ast.Call, scope: Scope, key: Key) -> bool:
        new = False
        for fs in self.p.funcs.get(key, ()):
            offset = 1 if fs.self_param and isinstance(call.func, ast.Attribute) else 0
            for pname in sorted(self.launcher_params[key]):
                arg = _argument(call, fs, pname, offset)
                if arg is None:
                    continue
                for v in self.p.vals(arg, scope):
                    if v[0] == "jit":
                        self.add_site((v[1], v[2]), scope, call.lineno, "indirect",
                                      host_wrapper(scope), scope.mod.segment(call, TEXT_LINES))
                    elif v[0] == "param":
                        got = self.launcher_params.setdefault((v[1], v[2]), set())
                        if v[3] not in got:
                            got.add(v[3])
                            new = True
        return new

    # -- device code -----------------------------------------------------------
    def device(self, js: Scope) -> None:
        if id(js) in self._device_done:
            return
        self._device_done.add(id(js))
        caller = js.key
        p = self.p
        node = js.node
        body_text = js.mod.text_lines(node.body[0].lineno, node.end_lineno - node.body[0].lineno + 1)
        if p.jit_names.isdisjoint(_IDENT.findall(body_text)):
            return      # mentions no jit function name: no helper use possible
        for n in own_nodes(node.body):
            if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load):
                if n.id in js.bindings or n.id in js.params:
                    continue
                self._helper_use(p.vals(n, js), caller)
            elif isinstance(n, ast.Attribute) and isinstance(n.ctx, ast.Load) \
                    and n.attr in p.jit_names \
                    and not self._helper_use(p.vals(n, js), caller) and n.attr in p.jit_method_names:
                self._method_refs.add((js.mod.name, n.attr))

    def _helper_use(self, values, caller: Key) -> bool:
        hit = False
        for v in values:
            if v[0] == "jit" and (v[1], v[2]) != caller:
                self.helper_of.setdefault((v[1], v[2]), set()).add(caller)
                hit = True
        return hit

    def resolve_method_refs(self) -> None:
        """``obj.method()`` on an aggregate instance of unknown type inside a jit body."""
        for module, attr in sorted(self._method_refs):
            mod = self.p.mods.get(module)
            for key in self.p.jit_method_names.get(attr, ()):
                cls_name = key[1].split(".")[0]
                if key[0] == module or (mod is not None and cls_name in mod.scope.bindings):
                    self.helper_of.setdefault(key, set()).add((module, "<method call>"))

    def host_references(self, key: Key) -> list[tuple[str, int]]:
        """Host-code references to ``key`` (diagnostics for unclassified kernels)."""
        out = []
        for n, scope in self.host_names:
            if n.id == key[1].rsplit(".", 1)[-1] and ("jit",) + key in self.p.vals(n, scope):
                out.append((scope.mod.rel, n.lineno))
        return out


def _argument(call: ast.Call, fs: Scope, pname: str, offset: int) -> ast.expr | None:
    for kw in call.keywords:
        if kw.arg == pname:
            return kw.value
    if pname in fs.positional:
        i = fs.positional.index(pname) - offset
        if 0 <= i < len(call.args) and not any(isinstance(a, ast.Starred) for a in call.args[:i + 1]):
            return call.args[i]
    return None
