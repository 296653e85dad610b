"""A small static evaluator over vLLM module ASTs, seeded with the H100 platform profile.

It answers "what is this module-level name / expression on the target?" for literals,
arithmetic, containers, comprehensions, f-strings, ternaries on platform predicates,
``torch.finfo``/``iinfo``, ``math.*``, ``triton.cdiv``/``next_power_of_2``,
``tl.constexpr(x)``, ``triton.Config(...)`` and simple pure Python helper functions.

:class:`Program` owns modules, name lookup, attribute access and calls; AST node
handlers live in :mod:`.expressions`, the helper-function interpreter in
:mod:`.interpreter` and shared primitives in :mod:`.evalcore`.
"""
from __future__ import annotations

import ast
import builtins
from collections.abc import Callable
from pathlib import Path
from typing import Any

from vkc.extract.triton import modinfo, torchinfo
from vkc.extract.triton import platform_profile as P
from vkc.extract.triton.evalcore import (
    _CALLABLE_EXT,
    _CONFIG_DEFAULTS,
    _CONTAINER_METHODS,
    CONSTEXPR_PATHS,
    JIT_PATHS,
    DeviceCapability,
    _EnumMember,
    _plain,
    _wrap,
    materialize,
)
from vkc.extract.triton.expressions import ExprEvaluator
from vkc.extract.triton.interpreter import HelperInterpreter
from vkc.extract.triton.modinfo import Binding, ModuleInfo
from vkc.extract.triton.values import (
    ConfigVal,
    Constexpr,
    ExtRef,
    FuncRef,
    LambdaVal,
    Opaque,
    PlatformObj,
    Unresolved,
    VllmModule,
)


class Program(ExprEvaluator, HelperInterpreter):
    """Modules of one source tree plus the evaluator state (memoized values)."""

    def __init__(self, root: Path, fallback: Callable[[str, str], Any] | None = None):
        self.root = Path(root)
        self.modules: dict[str, ModuleInfo | None] = {}
        self.values: dict[tuple[str, str], Any] = {}
        self.in_progress: set[tuple[str, str]] = set()
        self.fallback = fallback      # (module, expr_text) -> value, for what static eval cannot do
        self.notes: list[str] = []
        self.used_fallback = False

    # ---- modules -------------------------------------------------------------------------
    def module(self, name: str) -> ModuleInfo | None:
        if name in self.modules:
            return self.modules[name]
        info = modinfo.load(self.root, name)
        self.modules[name] = info
        if info is not None:
            modinfo.walk(info, info.tree.body, lambda t, _i=info: self._test(_i, t))
            modinfo.lazy_globals(info)
            info.complete = True
        return info

    def _test(self, info: ModuleInfo, test: ast.expr) -> bool | None:
        try:
            return bool(self.eval(test, info.name))
        except (Unresolved, Exception):  # noqa: BLE001 - any failure: the branch is unknown
            return None

    # ---- names ---------------------------------------------------------------------------
    def lookup(self, module: str, name: str) -> tuple[Any, Binding | None]:
        """Value of a module-level name and the binding that defines it."""
        ov = P.MODULE_OVERRIDES.get(module, {})
        if name in ov:
            return self._override(ov[name]), None
        info = self.module(module)
        if info is None:
            raise Unresolved(f"module {module} not found in the tree")
        b = info.bindings.get(name)
        if b is None:
            sub = f"{module}.{name}"
            if modinfo.module_file(self.root, sub):
                return VllmModule(sub), None
            if module == "vllm.envs":
                return self._env_var(info, name), None
            raise Unresolved(f"{module} has no top-level name {name}")
        return self.binding_value(b)

    def _override(self, v):
        if isinstance(v, tuple) and v and v[0] == "ext":
            return ExtRef(v[1])
        if isinstance(v, tuple) and v and v[0] == "platform":
            return PlatformObj()
        if isinstance(v, tuple) and v and v[0] == "func":
            return Opaque(getattr(P, v[1]))
        return v

    def binding_value(self, b: Binding) -> tuple[Any, Binding | None]:
        if b.kind == "ambiguous":
            b = self.disambiguate(b)
        if b.kind == "def":
            jit = any(_is_jit_decorator(self, b.module, d) for d in b.node.decorator_list)
            return FuncRef(b.module, b.name, "jit" if jit else "py"), b
        if b.kind == "class":
            return FuncRef(b.module, b.name, "class"), b
        if b.kind == "import":
            root = b.target.split(".")[0]
            return (VllmModule(b.target) if root == "vllm" else ExtRef(b.target)), b
        if b.kind == "importfrom":
            if b.target.split(".")[0] != "vllm":
                return ExtRef(f"{b.target}.{b.attr}"), b
            return self.lookup(b.target, b.attr)
        key = (b.module, b.name)
        if key in self.values:
            return self.values[key], b
        if key in self.in_progress:
            raise Unresolved(f"cyclic definition of {b.name}")
        self.in_progress.add(key)
        try:
            v = self.eval(b.value, b.module)
            for i in b.index:
                v = list(v)[i]
        except Unresolved as e:
            v = self._runtime_value(b, e)
        finally:
            self.in_progress.discard(key)
        self.values[key] = v
        return v, b

    def _runtime_value(self, b: Binding, err: Unresolved):
        """Import the module (CPU) and read the value; only for JSON-able values."""
        if self.fallback is None:
            raise err
        try:
            got = self.fallback(b.module, b.name)
        except Unresolved:
            raise err from None
        v = Constexpr(got["constexpr"]) if isinstance(got, dict) and set(got) == {"constexpr"} else got
        self.used_fallback = True
        self.notes.append(f"{b.name} ({b.module}) = {v!r} came from importing the module on CPU "
                          f"(runtime fallback; static evaluation failed: {err})")
        return v

    def disambiguate(self, b: Binding) -> Binding:
        if len(b.candidates) == 1:
            return b.candidates[0]
        if self.fallback is not None:
            line = self.fallback(b.module, f"__vkc_line__:{b.name}")
            for c in b.candidates:
                if c.node is not None and c.node.lineno <= int(line) <= c.node.end_lineno:
                    self.used_fallback = True
                    self.notes.append(f"{b.name}: {b.note}; picked the definition at line {line} "
                                      f"by importing {b.module} (runtime fallback, CPU platform)")
                    return c
        raise Unresolved(f"{b.name}: {b.note}")

    def _env_var(self, info: ModuleInfo, name: str):
        for st in info.tree.body:
            tgt = st.target if isinstance(st, ast.AnnAssign) else (st.targets[0] if isinstance(st, ast.Assign) else None)
            if isinstance(tgt, ast.Name) and tgt.id == "environment_variables" and isinstance(st.value, ast.Dict):
                for k, v in zip(st.value.keys, st.value.values):
                    if isinstance(k, ast.Constant) and k.value == name and isinstance(v, ast.Lambda):
                        return self.eval(v.body, info.name)
        raise Unresolved(f"vllm.envs.{name} unknown")

    # ---- attributes and calls ------------------------------------------------------------
    def getattr(self, base: Any, attr: str) -> Any:
        if isinstance(base, ExtRef):
            path = f"{base.path}.{attr}"
            if path in P.EXTERNAL_ATTRS:
                return P.EXTERNAL_ATTRS[path]
            if path == "os.environ":
                return dict(P.ENV)
            return ExtRef(path)
        if isinstance(base, VllmModule):
            return self.lookup(base.name, attr)[0]
        if isinstance(base, PlatformObj):
            if attr in P.PLATFORM_METHODS:
                return ("platform_method", attr)
            if attr in P.PLATFORM_ATTRS:
                return P.PLATFORM_ATTRS[attr]
            raise Unresolved(f"current_platform.{attr} is not in the platform profile")
        if isinstance(base, Constexpr) and attr == "value":
            return base.value
        if isinstance(base, FuncRef) and base.kind == "class":
            return self._class_attr(base, attr)
        if isinstance(base, ConfigVal):
            if attr == "kwargs":
                return base.kwargs
            if attr in base.options:
                return base.options[attr]
            if attr in _CONFIG_DEFAULTS:
                return _CONFIG_DEFAULTS[attr]
        if isinstance(base, _EnumMember) and attr in ("value", "name"):
            return getattr(base, attr)
        obj = base.obj if isinstance(base, Opaque) else base
        if isinstance(obj, (list, dict, str, tuple)) and attr not in _CONTAINER_METHODS:
            raise Unresolved(f"attribute {attr} of {type(obj).__name__}")
        try:
            return _wrap(getattr(obj, attr))
        except AttributeError:
            raise Unresolved(f"no attribute {attr} on {type(obj).__name__}") from None

    def _class_attr(self, ref: FuncRef, attr: str):
        info = self.module(ref.module)
        cls = info.bindings[ref.name].node
        enum = any(isinstance(bb, (ast.Name, ast.Attribute)) and
                   (getattr(bb, "id", None) or getattr(bb, "attr", "")).endswith("Enum") for bb in cls.bases)
        for st in cls.body:
            tgt = st.target if isinstance(st, ast.AnnAssign) else (st.targets[0] if isinstance(st, ast.Assign) and len(st.targets) == 1 else None)
            if isinstance(tgt, ast.Name) and tgt.id == attr and st.value is not None:
                v = self.eval(st.value, ref.module)
                return _EnumMember(attr, v) if enum else v
        raise Unresolved(f"class attribute {ref.name}.{attr}")

    def call(self, fn, args, kwargs):
        if isinstance(fn, ExtRef):
            p = fn.path
            if p in CONSTEXPR_PATHS:
                return Constexpr(args[0] if isinstance(args[0], ExtRef) else _plain(args[0]))
            if p == "triton.Config":
                cfg = _plain(args[0]) if args else _plain(kwargs.pop("kwargs", {}))
                return ConfigVal({k: _plain(v) for k, v in cfg.items()},
                                 {k: _plain(v) for k, v in kwargs.items()})
            if p in P.EXTERNAL_CALLS:
                r = P.EXTERNAL_CALLS[p]
                return _wrap(r(*[_plain(a) for a in args])) if callable(r) else r
            if p in ("os.getenv", "os.environ.get"):
                return P.ENV.get(args[0], args[1] if len(args) > 1 else kwargs.get("default"))
            if p.startswith(_CALLABLE_EXT):
                real = materialize(p)
                try:
                    return _wrap(real(*[_plain(a) for a in args], **{k: _plain(v) for k, v in kwargs.items()}))
                except Exception as e:  # noqa: BLE001 - vLLM code may raise anything
                    raise Unresolved(f"{p}(...) failed: {e}") from None
            raise Unresolved(f"call of external {p} is not statically evaluated")
        if isinstance(fn, tuple) and fn and fn[0] == "platform_method":
            r = P.PLATFORM_METHODS[fn[1]]
            if isinstance(r, tuple) and r == ("capability",):
                return Opaque(DeviceCapability(*P.CAPABILITY))
            if isinstance(r, tuple):
                return self._override(r)
            return r(*[_plain(a) for a in args], **kwargs) if callable(r) else r
        if isinstance(fn, Opaque):
            o = fn.obj
            if o in (builtins.hasattr, builtins.getattr) and args and isinstance(args[0], ExtRef):
                if args[0].path == "torch" and len(args) == 2 and torchinfo.has_attr(_plain(args[1])):
                    return True if o is builtins.hasattr else self.getattr(args[0], _plain(args[1]))
                try:
                    real = materialize(args[0].path)
                except Unresolved:
                    if o is builtins.hasattr:
                        return False
                    raise
                if o is builtins.hasattr:
                    return hasattr(real, _plain(args[1]))
                return self.getattr(args[0], _plain(args[1]))
            try:
                return _wrap(o(*[_plain(a) for a in args], **{k: _plain(v) for k, v in kwargs.items()}))
            except Exception as e:  # noqa: BLE001 - vLLM code may raise anything
                raise Unresolved(f"call failed: {e}") from None
        if isinstance(fn, LambdaVal):
            env = {}
            for a, v in zip(fn.node.args.args, args):
                env[a.arg] = v
            return self.eval(fn.node.body, fn.module, env)
        if isinstance(fn, FuncRef) and fn.kind == "py":
            return self._interp(fn, args, kwargs)
        raise Unresolved(f"cannot call {fn!r} statically")


def _is_jit_decorator(prog: Program, module: str, dec: ast.expr) -> bool:
    node = dec.func if isinstance(dec, ast.Call) else dec
    try:
        v = prog.eval(node, module)
    except Unresolved:
        return False
    return isinstance(v, ExtRef) and v.path in JIT_PATHS


# Names that used to live here; still importable from this module.
__all__ = ["CONSTEXPR_PATHS", "JIT_PATHS", "DeviceCapability", "Program", "_EnumMember", "materialize"]
