"""Artifacts are untrusted data: what ``vkc verify`` checks before any of it executes or
reaches the filesystem.

* :func:`triton_module_findings` -- a static check of a Triton ``source_code`` before
  ``verify --compile`` imports it.  Allowed at module level: a docstring, imports of the
  modules the rubric allows (``triton.*``, ``torch``, ``math``, ``typing``, ``__future__``),
  assignments of *safe expressions* to plain names (literals, names, attribute chains,
  arithmetic, ``tl.constexpr(...)``, ``triton.Config(...)``, lambdas) and ``def``\\ s decorated
  with ``@triton.jit``/``@gluon.jit`` (plus ``triton.autotune``/``triton.heuristics``) whose
  decorator arguments, defaults and annotations are safe expressions.  Inside a jit body
  (which Triton's code generator evaluates at compile time, calling any Python function it
  meets) only locals, the module's own names, Triton's language namespaces, ``math`` and
  Triton's builtin namespace may be referenced; no dunder names or attributes.
* :func:`artifact_file_name` -- the file name vkc saves an artifact's source under: the
  example's ``KERNEL_FILE`` only when it is a plain, checked file name, else a refusal.
"""
from __future__ import annotations

import ast
import re
from collections.abc import Iterator

from vkc.errors import KernelNameError
from vkc.naming import safe_stem
from vkc.verify.pyscan import STDLIB_OK, dotted, import_aliases
from vkc.verify.result import CheckResult

__all__ = ["artifact_file_name", "refuse_triton_import", "triton_module_findings"]

ALLOWED_ROOTS = frozenset({"triton", "torch", *STDLIB_OK})
_JIT = frozenset({"triton.jit", "triton.experimental.gluon.jit", "triton.experimental.gluon.constexpr_function",
                  "triton.constexpr_function", "triton.language.constexpr_function"})
_DECORATORS = _JIT | {"triton.autotune", "triton.heuristics", "triton.runtime.autotune",
                      "triton.runtime.heuristics", "triton.runtime.autotuner.autotune",
                      "triton.runtime.autotuner.heuristics"}
# calls a safe expression (module level, decorator arguments, defaults) may make: these and
# Triton's language namespaces (types such as tl.constexpr(...), tl.pointer_type(...))
_SAFE_CALLS = frozenset({"triton.Config", "triton.runtime.Config"})
_LANGUAGE = ("triton.language", "triton.experimental.gluon.language")
_AGGREGATE = frozenset({"triton.language.core._aggregate", "triton.experimental.gluon.aggregate",
                        "triton.language.core.aggregate", "triton.experimental.gluon.language.aggregate"})
# dotted prefixes a jit body may reference (Triton calls what it finds at compile time)
_BODY_PREFIXES = (*_LANGUAGE, "math", "torch._inductor.runtime.triton_helpers.libdevice",
                  "torch._inductor.runtime.triton_helpers.math")
_BODY_NAMES = frozenset({"triton.cdiv", "triton.next_power_of_2", "triton.jit", "triton.constexpr_function"})
_BUILTINS = frozenset({"len", "list", "range", "float", "int", "isinstance", "getattr", "hasattr", "print",
                       "min", "max", "bool", "tuple", "True", "False", "None"})
_MAX_EXPONENT = 256
_DUNDER_OK = frozenset({"__all__", "__version__"})
_FILE_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-]{0,150}\.py")


def _dunder(name: str) -> bool:
    return name.startswith("__") and name.endswith("__") and name not in _DUNDER_OK


class _Checker:
    def __init__(self, tree: ast.Module) -> None:
        self.aliases = import_aliases(tree)
        self.findings: list[tuple[int, str]] = []
        self.module_names: set[str] = set()
        self.tainted: set[str] = set()     # module names bound to something a jit body may not touch
        self.later: list[tuple[ast.Name, ast.AST]] = []
        self.bound: dict[str, str] = {}    # module name = <import alias chain>: what it spells

    def bad(self, node: ast.AST, what: str) -> None:
        self.findings.append((getattr(node, "lineno", 0), what))

    def full(self, node: ast.AST) -> str | None:
        """The dotted name a Name/Attribute chain spells, through import aliases."""
        spelled = dotted(node)
        if spelled is None:
            return None
        head, _, rest = spelled.partition(".")
        base = self.aliases.get(head) or self.bound.get(head)
        if base is None:
            return None
        return base + (f".{rest}" if rest else "")

    # ------------------------------------------------------------------ module level
    def module(self, tree: ast.Module) -> None:
        for i, node in enumerate(tree.body):
            if i == 0 and isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
                continue
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                self.imports(node)
            elif isinstance(node, (ast.Assign, ast.AnnAssign)):
                self.assignment(node)
            elif isinstance(node, ast.FunctionDef):
                self.function(node)
            elif isinstance(node, ast.ClassDef):
                self.aggregate(node)
            elif isinstance(node, ast.Pass):
                continue
            else:
                self.bad(node, f"module-level {type(node).__name__} statement (only imports, constants and "
                               "@triton.jit functions may run on import)")

    def imports(self, node: ast.Import | ast.ImportFrom) -> None:
        if isinstance(node, ast.ImportFrom):
            mods = [node.module or ""]
            if node.level:
                self.bad(node, "relative import")
                return
            if any(a.name == "*" for a in node.names):
                self.bad(node, f"`from {node.module} import *`")
        else:
            mods = [a.name for a in node.names]
        for m in mods:
            if m.split(".")[0] not in ALLOWED_ROOTS:
                self.bad(node, f"import of {m} (allowed: {', '.join(sorted(ALLOWED_ROOTS))})")
        for a in node.names:
            bound = a.asname or a.name.split(".")[0]
            if _dunder(bound):
                self.bad(node, f"import binds {bound}")
            self.module_names.add(bound)

    def assignment(self, node: ast.Assign | ast.AnnAssign) -> None:
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        outside = node.value is not None and any(
            isinstance(n, ast.Name) and n.id in self.aliases and not self.body_ok(self.full(n) or "")
            for n in ast.walk(node.value))
        for t in targets:
            for n in (t.elts if isinstance(t, ast.Tuple) else [t]):
                if outside and isinstance(n, ast.Name):
                    self.tainted.add(n.id)
                if not isinstance(n, ast.Name):
                    self.bad(node, f"assignment to {type(n).__name__} (only plain names)")
                elif _dunder(n.id) or n.id in self.aliases:
                    self.bad(node, f"assignment rebinds {n.id}")
                else:
                    self.module_names.add(n.id)
        if isinstance(node, ast.AnnAssign):
            self.expr(node.annotation)
        if node.value is not None:
            self.expr(node.value)
            full = self.full(node.value)
            if full and len(targets) == 1 and isinstance(targets[0], ast.Name):
                self.bound[targets[0].id] = full

    def aggregate(self, node: ast.ClassDef) -> None:
        """A Triton/Gluon ``@aggregate`` class: annotated fields and jit/constexpr methods only."""
        self.module_names.add(node.name)
        decs = [self.full(d) for d in node.decorator_list]
        if decs != [d for d in decs if d in _AGGREGATE] or not decs or node.bases or node.keywords:
            self.bad(node, f"class {node.name} (only Triton @aggregate classes without bases)")
            return
        for st in node.body:
            if isinstance(st, ast.AnnAssign) and isinstance(st.target, ast.Name):
                self.expr(st.annotation)
                if st.value is not None:
                    self.expr(st.value)
            elif isinstance(st, ast.FunctionDef):
                self.function(st, method=True)
            elif not (isinstance(st, ast.Pass) or (isinstance(st, ast.Expr) and isinstance(st.value, ast.Constant))):
                self.bad(st, f"{type(st).__name__} statement in class {node.name}")

    def function(self, node: ast.FunctionDef, method: bool = False) -> None:
        if not method:
            self.module_names.add(node.name)
        jit = False
        for dec in node.decorator_list:
            name = self.full(dec.func if isinstance(dec, ast.Call) else dec)
            if name not in _DECORATORS:
                self.bad(dec, f"decorator {ast.unparse(dec)[:80]} (only triton.jit/gluon.jit, autotune, heuristics)")
                continue
            jit = jit or name in _JIT
            if isinstance(dec, ast.Call):
                for a in [*dec.args, *(k.value for k in dec.keywords)]:
                    self.expr(a)
        if not jit:
            self.bad(node, f"function {node.name} is not a @triton.jit/@gluon.jit function")
        self.arguments(node.args)
        if node.returns is not None:
            self.expr(node.returns)
        self.body(node)

    def arguments(self, args: ast.arguments) -> None:
        for a in [*args.posonlyargs, *args.args, *args.kwonlyargs, args.vararg, args.kwarg]:
            if a is not None and a.annotation is not None:
                self.expr(a.annotation)
        for d in [*args.defaults, *args.kw_defaults]:
            if d is not None:
                self.expr(d)

    # ------------------------------------------------------------------ safe expressions
    def expr(self, node: ast.AST) -> None:
        """Expressions evaluated when the module is imported."""
        if isinstance(node, ast.Constant):
            return
        if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
            for e in node.elts:
                self.expr(e)
        elif isinstance(node, ast.Dict):
            for item in [*node.keys, *node.values]:
                if item is not None:
                    self.expr(item)
        elif isinstance(node, (ast.Name, ast.Attribute)):
            self.reference(node)
        elif isinstance(node, ast.UnaryOp):
            self.expr(node.operand)
        elif isinstance(node, ast.BinOp):
            self.binop(node)
        elif isinstance(node, ast.IfExp):
            for e in (node.test, node.body, node.orelse):
                self.expr(e)
        elif isinstance(node, ast.Starred):
            self.expr(node.value)
        elif isinstance(node, ast.Call):
            name = self.full(node.func) or ""
            if name not in _SAFE_CALLS and not (name.startswith(tuple(p + "." for p in _LANGUAGE))
                                                and "._" not in name):
                self.bad(node, f"call {ast.unparse(node.func)[:60]}(...) runs on import")
            for a in [*node.args, *(k.value for k in node.keywords)]:
                self.expr(a)
        elif isinstance(node, ast.Lambda):
            self.arguments(node.args)
            self.body(node)
        elif isinstance(node, ast.Subscript):
            self.expr(node.value)
            self.expr(node.slice)
        else:
            self.bad(node, f"{type(node).__name__} expression runs on import")

    def binop(self, node: ast.BinOp) -> None:
        for side in (node.left, node.right):
            number = isinstance(side, ast.Constant) and isinstance(side.value, (int, float, bool))
            if isinstance(node.op, ast.Mult) and not number and \
                    isinstance(side, (ast.Constant, ast.List, ast.Tuple, ast.JoinedStr)):
                self.bad(node, "repetition of a sequence literal")
            self.expr(side)
        if isinstance(node.op, (ast.Pow, ast.LShift)):
            r = node.right
            if not (isinstance(r, ast.Constant) and isinstance(r.value, int) and abs(r.value) <= _MAX_EXPONENT):
                self.bad(node, f"exponent or shift other than a literal up to {_MAX_EXPONENT}")

    def reference(self, node: ast.Name | ast.Attribute) -> None:
        for sub in ast.walk(node):
            if isinstance(sub, ast.Attribute) and sub.attr.startswith("__"):
                self.bad(node, f"dunder attribute .{sub.attr}")
            elif isinstance(sub, ast.Name) and sub.id.startswith("__"):
                self.bad(node, f"dunder name {sub.id}")
            elif not isinstance(sub, (ast.Attribute, ast.Name, ast.Load)):
                self.expr(sub)
                return

    # ------------------------------------------------------------------ jit bodies
    def body(self, fn: ast.FunctionDef | ast.Lambda) -> None:
        """Names a jit body (or lambda) refers to: locals, module names, Triton language."""
        local = {a.arg for a in _all_args(fn.args)}
        for sub in ast.walk(fn):
            if isinstance(sub, ast.Name) and isinstance(sub.ctx, (ast.Store, ast.Del)):
                local.add(sub.id)
            elif isinstance(sub, ast.arg):
                local.add(sub.arg)
        for sub in _body_nodes(fn):
            if isinstance(sub, ast.Attribute) and sub.attr.startswith("__"):
                self.bad(sub, f"dunder attribute .{sub.attr} in {_fn_name(fn)}")
            elif isinstance(sub, ast.Name) and isinstance(sub.ctx, ast.Load):
                self.body_name(sub, fn, local)
            elif isinstance(sub, ast.Call) and dotted(sub.func) in ("getattr", "hasattr"):
                attr = sub.args[1] if len(sub.args) > 1 else None
                if not (isinstance(attr, ast.Constant) and isinstance(attr.value, str)
                        and not attr.value.startswith("_")):
                    self.bad(sub, f"{dotted(sub.func)}() without a literal public attribute name")

    def body_name(self, node: ast.Name, fn: ast.FunctionDef | ast.Lambda, local: set[str]) -> None:
        if node.id.startswith("__"):
            self.bad(node, f"dunder name {node.id} in {_fn_name(fn)}")
        elif node.id in local or node.id in _BUILTINS:
            return
        elif node.id in self.aliases:
            full = self.full(self.chain_of(node, fn)) or ""
            if not self.body_ok(full):
                self.bad(node, f"{_fn_name(fn)} refers to {full or node.id}, outside triton.language and math")
        elif node.id in self.tainted:
            self.bad(node, f"{_fn_name(fn)} refers to {node.id}, bound to something outside triton.language")
        elif node.id not in self.module_names:
            self.later.append((node, fn))

    @staticmethod
    def body_ok(full: str) -> bool:
        return full in _BODY_NAMES or any(full == p or full.startswith(p + ".") for p in _BODY_PREFIXES)

    def chain_of(self, name: ast.Name, fn: ast.AST) -> ast.AST:
        """The longest Attribute chain in ``fn`` whose base is ``name``."""
        best: ast.AST = name
        for sub in ast.walk(fn):
            if isinstance(sub, ast.Attribute) and dotted(sub) is not None:
                base: ast.AST = sub
                while isinstance(base, ast.Attribute):
                    base = base.value
                if base is name and len(dotted(sub) or "") > len(dotted(best) or ""):
                    best = sub
        return best



def _all_args(args: ast.arguments) -> list[ast.arg]:
    return [a for a in [*args.posonlyargs, *args.args, *args.kwonlyargs, args.vararg, args.kwarg] if a is not None]


def _fn_name(fn: ast.AST) -> str:
    return getattr(fn, "name", "lambda")


def _body_nodes(fn: ast.FunctionDef | ast.Lambda) -> Iterator[ast.AST]:
    """Every node of the body (not the decorators, defaults or annotations)."""
    stack: list[ast.AST] = list(fn.body) if isinstance(fn, ast.FunctionDef) else [fn.body]
    while stack:
        node = stack.pop()
        yield node
        stack.extend(ast.iter_child_nodes(node))


def triton_module_findings(source: str) -> list[str]:
    """Why ``source`` may not be imported by ``verify --compile`` (empty: it may)."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError) as exc:
        return [f"source_code is not Python: {exc}"]
    except (RecursionError, MemoryError):
        return ["source_code is nested too deeply to check"]
    checker = _Checker(tree)
    try:
        checker.module(tree)
    except RecursionError:
        return ["source_code is nested too deeply to check"]
    for node, fn in checker.later:  # names defined after their first use are fine
        if node.id not in checker.module_names:
            checker.bad(node, f"{_fn_name(fn)} refers to undefined name {node.id}")
    return [f"line {line}: {what}" for line, what in sorted(set(checker.findings))]


def artifact_file_name(artifact: dict, kernel_file: object, *, reserved: tuple[str, ...] = ()) -> str:
    """The file name to save the artifact's source under inside vkc's own folder.

    ``kernel_file`` is what the example's ``KERNEL_FILE`` says (None: absent); it is used
    only when it is a plain ``*.py`` file name (no folder, no ``..``, no leading dot) that
    is not one of ``reserved``; otherwise ValueError.  Absent, the name is
    ``safe_stem(name) + ".py"``."""
    if kernel_file is None:
        try:
            return safe_stem(str(artifact.get("name", ""))) + ".py"
        except KernelNameError as exc:
            raise ValueError(f"artifact name is not a safe kernel name: {exc.message}") from None
    if not isinstance(kernel_file, str) or not _FILE_NAME.fullmatch(kernel_file) or ".." in kernel_file \
            or kernel_file in reserved:
        raise ValueError(f"KERNEL_FILE {str(kernel_file)[:80]!r} is not a plain *.py file name "
                         "(vkc writes only inside its own folder)")
    return kernel_file


def refuse_triton_import(path: str, artifact: dict, check: str) -> CheckResult | None:
    """A failed ``check`` when the artifact's Triton source may not be imported, else None."""
    found = triton_module_findings(str(artifact.get("kernel", {}).get("source_code", "")))
    if not found:
        return None
    more = f" (+{len(found) - 3} more)" if len(found) > 3 else ""
    return CheckResult(path, check, False, "refused to import source_code (nothing of it was run): "
                       + "; ".join(found[:3]) + more, {"refused": found[:50]})
