"""Static extraction of a PyTorch reference: the function and the plain helpers it reaches.

Python ``ast`` only (nothing of vLLM is imported).  From the function (a top-level ``def`` or a
``Class.method``) every free name is resolved in its module: builtins stay; a name imported from
an allowed library (torch, math, numpy, einops -- a vLLM dependency --, ...) keeps its import line; a ``def`` or a module constant
inside the tree (``vllm/``, ``tests/``; same module, an absolute or a relative import, through
package ``__init__`` re-exports) is extracted too, recursively.  Anything else the tree holds (a
class, a platform object, a custom op) becomes a *stub* that raises when reached, unless the
mapping row binds it (``RefSpec.bind``); a name that resolves nowhere refuses the extraction.
Decorators and annotations are dropped; every piece is preceded by ``# from <file>:<line>``.
"""
from __future__ import annotations

import ast
import builtins
from dataclasses import dataclass, field
from pathlib import Path

ALLOWED_MODULES = ("torch", "math", "numpy", "einops", "typing", "itertools", "functools", "collections", "operator")
TREE_ROOTS = ("vllm", "tests")
_BUILTINS = frozenset(dir(builtins))
MAX_PIECES = 40
UNEXTRACTED = '''class _Unextracted:
    """A vLLM object the reference reaches only on a path this launch does not take (vkc stub)."""

    def __init__(self, what):
        self.what = what

    def __getattr__(self, name):
        raise NotImplementedError(f"not extracted by vkc: {self.what}")

    def __call__(self, *args, **kwargs):
        raise NotImplementedError(f"not extracted by vkc: {self.what}")'''


class Refused(Exception):
    """The extraction cannot be made self-contained; the message says why."""


@dataclass(frozen=True)
class Extracted:
    code: str                      # import lines excluded; pieces in dependency order, entry last
    entry: str                     # the top-level name of the entry in ``code``
    line: int
    imports: tuple[str, ...]
    pieces: tuple[str, ...]
    stubs: tuple[str, ...]


@dataclass
class _Module:
    rel: str
    defs: dict[str, ast.stmt]
    imports: dict[str, tuple[str, str | None]]   # alias -> (absolute module, name or None for a module)


@dataclass
class _State:
    root: Path
    bind: dict[str, str]
    modules: dict[str, _Module | None] = field(default_factory=dict)
    emitted: dict[str, str] = field(default_factory=dict)        # top-level name -> "rel:line" (or "stub"/"bind")
    order: list[tuple[str, str]] = field(default_factory=list)    # (name, source text)
    imports: set[str] = field(default_factory=set)
    stubs: list[str] = field(default_factory=list)
    pieces: list[str] = field(default_factory=list)


def _module_file(root: Path, module: str) -> str | None:
    parts = module.split(".")
    if parts[0] not in TREE_ROOTS:
        return None
    base = "/".join(parts)
    for rel in (f"{base}.py", f"{base}/__init__.py"):
        if (root / rel).is_file():
            return rel
    return None


def _absolute(rel: str, module: str | None, level: int) -> str:
    if level == 0:
        return module or ""
    pkg = rel[:-3].split("/")
    pkg = pkg[:-1]  # the package holding the file (an __init__.py's own package too)
    if level > 1:
        pkg = pkg[:len(pkg) - (level - 1)]
    return ".".join(pkg + ([module] if module else []))


def _load(st: _State, rel: str) -> _Module | None:
    if rel in st.modules:
        return st.modules[rel]
    try:
        tree = ast.parse((st.root / rel).read_text(encoding="utf-8"))
    except (OSError, SyntaxError, UnicodeDecodeError):
        st.modules[rel] = None
        return None
    defs: dict[str, ast.stmt] = {}
    imports: dict[str, tuple[str, str | None]] = {}
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            defs[node.name] = node
        elif isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            defs[node.targets[0].id] = node
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value is not None:
            defs[node.target.id] = node
        elif isinstance(node, ast.Import):
            for a in node.names:
                imports[a.asname or a.name.split(".")[0]] = (a.name if a.asname else a.name.split(".")[0], None)
        elif isinstance(node, ast.ImportFrom):
            mod = _absolute(rel, node.module, node.level)
            for a in node.names:
                imports[a.asname or a.name] = (mod, a.name)
    for alias, target in _guarded_imports(rel, tree).items():
        imports.setdefault(alias, target)
    st.modules[rel] = _Module(rel, defs, imports)
    return st.modules[rel]


def _guarded_imports(rel: str, tree: ast.Module) -> dict[str, tuple[str, str | None]]:
    """Imports inside module-level ``if``/``try`` blocks (``if HAS_TRITON: from vllm... import f``),
    for a name every such block that imports it imports from the same place."""
    found: dict[str, set[tuple[str, str | None]]] = {}
    todo = [n for n in tree.body if isinstance(n, (ast.If, ast.Try))]
    while todo:
        block = todo.pop()
        inner = block.body + block.orelse + (block.finalbody + [s for h in block.handlers for s in h.body]
                                             if isinstance(block, ast.Try) else [])
        for node in inner:
            if isinstance(node, (ast.If, ast.Try)):
                todo.append(node)
            elif isinstance(node, ast.ImportFrom):
                mod = _absolute(rel, node.module, node.level)
                for a in node.names:
                    found.setdefault(a.asname or a.name, set()).add((mod, a.name))
            elif isinstance(node, ast.Import):
                for a in node.names:
                    found.setdefault(a.asname or a.name.split(".")[0], set()).add(
                        (a.name if a.asname else a.name.split(".")[0], None))
    return {alias: next(iter(where)) for alias, where in found.items() if len(where) == 1}


def _locals(fn: ast.AST) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(fn):
        if isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
            names.add(node.id)
        elif isinstance(node, ast.arg):
            names.add(node.arg)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and node is not fn:
            names.add(node.name)
        elif isinstance(node, ast.ExceptHandler):
            names.update([node.name] if node.name else [])
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            raise Refused("the reference imports inside its body")
    return names


def _strip(node: ast.AST) -> ast.AST:
    """Drop decorators and annotations (they may name vLLM types); never evaluated by the reference."""
    for n in ast.walk(node):
        if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)):
            n.decorator_list = []
            n.returns = None
            for a in n.args.posonlyargs + n.args.args + n.args.kwonlyargs:
                a.annotation = None
            for va in (n.args.vararg, n.args.kwarg):
                if va is not None:
                    va.annotation = None
        elif isinstance(n, ast.ClassDef):
            raise Refused("the reference defines a class")
    return node


def _free(node: ast.AST, local: set[str]) -> tuple[list[str], dict[str, list[str]]]:
    """Free names in first-use order, and the attributes read off each (``mod.fn``)."""
    skip: set[int] = set()
    for n in ast.walk(node):
        if isinstance(n, ast.arg) and n.annotation is not None:
            skip.update(id(x) for x in ast.walk(n.annotation))
        if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and n.returns is not None:
            skip.update(id(x) for x in ast.walk(n.returns))
        if isinstance(n, ast.AnnAssign):
            skip.update(id(x) for x in ast.walk(n.annotation))
        if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for d in n.decorator_list:
                skip.update(id(x) for x in ast.walk(d))
    names: list[str] = []
    attrs: dict[str, list[str]] = {}
    for n in ast.walk(node):
        if id(n) in skip:
            continue
        if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name):
            attrs.setdefault(n.value.id, []).append(n.attr)
        if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load) and n.id not in local and n.id not in names:
            names.append(n.id)
    return names, attrs


def _stub(st: _State, name: str, what: str) -> None:
    if name in st.emitted:
        return
    if name in st.bind:
        st.emitted[name] = "bind"
        st.order.append((name, f"{name} = {st.bind[name]}  # bound by vkc's mapping: {what}"))
        return
    st.emitted[name] = "stub"
    st.stubs.append(f"{name} ({what})")
    st.order.append((name, f"{name} = _Unextracted({what!r})  # not extracted: raises if reached"))


def _resolve(st: _State, mod: _Module, name: str, attrs: list[str], depth: int = 0) -> None:
    """Make top-level ``name`` (as used in ``mod``) available in the extracted code."""
    if name in st.emitted:
        seen, here = st.emitted[name], mod.defs.get(name)
        if here is not None and ":" in seen and seen != f"{mod.rel}:{here.lineno}":
            raise Refused(f"two definitions of {name!r} ({seen}, {mod.rel}:{here.lineno})")
        return
    if name in _BUILTINS and name not in mod.defs and name not in mod.imports:
        return
    if depth > 8:
        raise Refused(f"import chain too deep for {name!r}")
    if name in st.bind:
        _stub(st, name, f"{mod.rel}: {name}")
        return
    if name in mod.defs:
        _piece(st, mod, name, mod.defs[name], attrs)
        return
    if name not in mod.imports:
        raise Refused(f"{name!r} does not resolve in {mod.rel}")
    module, member = mod.imports[name]
    top = module.split(".")[0]
    if top in ALLOWED_MODULES:
        line = f"import {module}" if member is None else f"from {module} import {member}"
        if member is None and name != module:
            line = f"import {module} as {name}"
        elif member is not None and member != name:
            line += f" as {name}"
        st.imports.add(line)
        st.emitted[name] = "import"
        return
    if top not in TREE_ROOTS:
        raise Refused(f"{name!r} comes from {module}, not a plain library")
    target = _module_file(st.root, f"{module}.{member}" if member else module)
    if target is not None:   # a module alias: resolve the attributes read off it
        sub = _load(st, target)
        if sub is None:
            raise Refused(f"cannot parse {target}")
        for attr in attrs:
            if attr not in sub.defs:
                raise Refused(f"{name}.{attr} does not resolve in {target}")
        raise Refused(f"{name!r} is a vLLM module used by attribute ({target}); not extracted")
    src = _module_file(st.root, module)
    sub = _load(st, src) if src else None
    if sub is None or member is None:
        _stub(st, name, f"{module}.{member or ''}")
        return
    if member in sub.defs or member in sub.imports:
        if member != name:
            raise Refused(f"{name!r} is {module}.{member} under another name")
        _resolve(st, sub, member, attrs, depth + 1)
        return
    _stub(st, name, f"{module}.{member}")


def _static_methods(node: ast.ClassDef, attrs: list[str]) -> list[ast.FunctionDef] | None:
    """The ``@staticmethod`` defs of ``node`` that ``attrs`` name, when every attribute read off the class is
    one (``ApplyRotaryEmb.forward_static(...)``); else None."""
    found = {n.name: n for n in node.body if isinstance(n, ast.FunctionDef)
             and any(isinstance(d, ast.Name) and d.id == "staticmethod" for d in n.decorator_list)}
    if not attrs or any(a not in found for a in attrs):
        return None
    return [found[a] for a in dict.fromkeys(attrs)]


def _piece(st: _State, mod: _Module, name: str, node: ast.stmt, read: list[str] | None = None) -> None:
    if len(st.pieces) >= MAX_PIECES:
        raise Refused(f"more than {MAX_PIECES} pieces")
    where = f"{mod.rel}:{node.lineno}"
    if isinstance(node, ast.ClassDef):
        statics = _static_methods(node, read or [])
        if statics is None:
            _stub(st, name, f"{mod.rel}:{node.lineno} class {name}")
            return
        # a class used only for its static methods: each extracted as ``Class_method``, the class a namespace
        st.emitted[name] = where
        members = []
        for fn in statics:
            entry = f"{name}_{fn.name}"
            if entry in mod.defs or entry in st.emitted:
                raise Refused(f"{entry} already names something in {mod.rel}")
            _piece(st, mod, entry, ast.FunctionDef(name=entry, args=fn.args, body=fn.body, decorator_list=[],
                                                   returns=None, type_comment=None, lineno=fn.lineno, col_offset=0))
            members.append(f"{fn.name}={entry}")
        st.imports.add("import types")
        st.pieces.append(f"{name} {where}")
        text = f"# from {where} (class {name}: its static methods)\n{name} = types.SimpleNamespace({', '.join(members)})"
        st.order.append((name, text))
        return
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and _custom_op(node):
        _stub(st, name, f"{where} {name}: calls the vLLM custom op torch.ops.{_custom_op(node)}")
        return
    st.emitted[name] = where   # before recursing: recursion and mutual recursion end here
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
        if any(isinstance(d, ast.Name) and d.id == "jit" or isinstance(d, ast.Attribute) and d.attr == "jit"
               for d in node.decorator_list):
            raise Refused(f"{name} at {where} is a jit kernel, not a PyTorch computation")
        free, attrs = _free(node, _locals(node))
    else:
        free, attrs = _free(node, set())
    for n in free:
        _resolve(st, mod, n, attrs.get(n, []))
    if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and any(
            st.emitted.get(n) == "stub" for n in free):
        st.emitted[name] = "stub"   # a constant computed from an unextracted object is unextracted too
        st.stubs.append(f"{name} ({where}, computed from an unextracted name)")
        st.order.append((name, f"{name} = _Unextracted({where!r})  # computed from an unextracted name"))
        return
    st.pieces.append(f"{name} {where}")
    st.order.append((name, f"# from {where}\n{ast.unparse(_strip(node))}"))


def _custom_op(node: ast.AST) -> str | None:
    """``ns`` of the first ``torch.ops.<ns>.<op>`` other than aten/prims (a vLLM custom op)."""
    for n in ast.walk(node):
        if (isinstance(n, ast.Attribute) and isinstance(n.value, ast.Attribute) and n.value.attr == "ops"
                and isinstance(n.value.value, ast.Name) and n.value.value.id == "torch"
                and n.attr not in ("aten", "prims")):
            return n.attr
    return None


def _method(mod: _Module, cls: str, meth: str) -> ast.FunctionDef:
    node = mod.defs.get(cls)
    if not isinstance(node, ast.ClassDef):
        raise Refused(f"no class {cls} in {mod.rel}")
    methods = {n.name for n in node.body if isinstance(n, ast.FunctionDef)}
    for n in node.body:
        if isinstance(n, ast.FunctionDef) and n.name == meth:
            for sub in ast.walk(n):
                if (isinstance(sub, ast.Call) and isinstance(sub.func, ast.Attribute)
                        and isinstance(sub.func.value, ast.Name) and sub.func.value.id == "self"
                        and sub.func.attr in methods):
                    raise Refused(f"{cls}.{meth} calls self.{sub.func.attr}()")
                if isinstance(sub, ast.Name) and sub.id == "super":
                    raise Refused(f"{cls}.{meth} calls super()")
            return n
    raise Refused(f"no method {cls}.{meth} in {mod.rel}")


def extract_reference(root: Path, rel: str, function: str, bind: dict[str, str]) -> Extracted:
    """The self-contained source of ``function`` (``name`` or ``Class.method``) of ``root/rel``."""
    st = _State(root=root, bind=dict(bind))
    mod = _load(st, rel)
    if mod is None:
        raise Refused(f"cannot read {rel}")
    if "." in function:
        cls, meth = function.split(".", 1)
        node = _method(mod, cls, meth)
        entry = f"{cls}_{meth}"
        renamed = ast.FunctionDef(name=entry, args=node.args, body=node.body, decorator_list=[], returns=None,
                                  type_comment=None, lineno=node.lineno, col_offset=0)
        if entry in mod.defs:
            raise Refused(f"{entry} already names something in {rel}")
        _piece(st, mod, entry, renamed)
        line = node.lineno
    else:
        node_any = mod.defs.get(function)
        if not isinstance(node_any, ast.FunctionDef):
            raise Refused(f"no function {function} in {rel}")
        entry, line = function, node_any.lineno
        _piece(st, mod, function, node_any)
    return _finish(st, entry, line)


def extract_function(root: Path, rel: str, node: ast.FunctionDef, bind: dict[str, str]) -> Extracted:
    """The self-contained source of a function vkc made (``node``, e.g. a slice of a test body), its
    free names resolved in the module ``root/rel`` as a function defined there would see them."""
    st = _State(root=root, bind=dict(bind))
    mod = _load(st, rel)
    if mod is None:
        raise Refused(f"cannot read {rel}")
    if node.name in mod.defs:
        raise Refused(f"{node.name} already names something in {rel}")
    _piece(st, mod, node.name, node)
    return _finish(st, node.name, node.lineno)


def _finish(st: _State, entry: str, line: int) -> Extracted:
    code = "\n\n\n".join(text for _n, text in st.order)
    if any(kind == "stub" for kind in st.emitted.values()):
        code = UNEXTRACTED + "\n\n\n" + code
    if any(isinstance(n, (ast.Import, ast.ImportFrom)) for n in ast.walk(ast.parse(code))):
        raise Refused("an import survived in the extracted code")
    return Extracted(code=code, entry=entry, line=line, imports=tuple(sorted(st.imports)),
                     pieces=tuple(st.pieces), stubs=tuple(st.stubs))


__all__ = ["ALLOWED_MODULES", "Extracted", "Refused", "extract_function", "extract_reference"]
