"""A small static evaluator over vLLM module ASTs, seeded with the H100 platform profile.

It answers "what is this module-level name / expression on the target?" for literals,
arithmetic, containers, comprehensions, f-strings, ternaries on platform predicates,
``torch.finfo``/``iinfo``, ``math.*``, ``triton.cdiv``/``next_power_of_2``,
``tl.constexpr(x)``, ``triton.Config(...)`` and simple pure Python helper functions.
"""
from __future__ import annotations

import ast
import builtins
import importlib
import operator
from pathlib import Path
from typing import Any, Callable

from vkc.extract.triton import platform_profile as P
from vkc.extract.triton import modinfo
from vkc.extract.triton.modinfo import Binding, ModuleInfo
from vkc.extract.triton.values import (ConfigVal, Constexpr, ExtRef, FuncRef, LambdaVal, Opaque,
                                       PlatformObj, Unresolved, VllmModule)

_BIN = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
        ast.Div: operator.truediv, ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod,
        ast.Pow: operator.pow, ast.LShift: operator.lshift, ast.RShift: operator.rshift,
        ast.BitOr: operator.or_, ast.BitAnd: operator.and_, ast.BitXor: operator.xor}
_CMP = {ast.Eq: operator.eq, ast.NotEq: operator.ne, ast.Lt: operator.lt, ast.LtE: operator.le,
        ast.Gt: operator.gt, ast.GtE: operator.ge, ast.In: lambda a, b: a in b,
        ast.NotIn: lambda a, b: a not in b, ast.Is: operator.is_, ast.IsNot: operator.is_not}
_BUILTINS = {n: getattr(builtins, n) for n in (
    "int", "float", "bool", "str", "len", "min", "max", "abs", "round", "range", "list", "tuple",
    "dict", "set", "sorted", "zip", "enumerate", "any", "all", "sum", "hasattr", "getattr",
    "isinstance", "reversed", "pow", "divmod", "frozenset", "map", "filter")}
_BUILTIN_CONSTS = {"True": True, "False": False, "None": None}
_CALLABLE_EXT = ("math.", "torch.finfo", "torch.iinfo", "triton.cdiv", "triton.next_power_of_2",
                 "packaging.version.parse", "packaging.version.Version", "functools.reduce",
                 "operator.", "itertools.product")
_CONFIG_DEFAULTS = {"num_warps": 4, "num_stages": 3, "num_ctas": 1, "maxnreg": None, "pre_hook": None}
_CONTAINER_METHODS = {"append", "extend", "get", "items", "keys", "values", "upper", "lower",
                      "format", "startswith", "endswith", "split", "join", "replace", "strip",
                      "index", "count", "insert", "update", "copy"}


class _Return(Exception):
    def __init__(self, value):
        self.value = value


class Program:
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
            info.complete = True
        return info

    def _test(self, info: ModuleInfo, test: ast.expr) -> bool | None:
        try:
            return bool(self.eval(test, info.name))
        except (Unresolved, Exception):
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

    # ---- expressions ---------------------------------------------------------------------
    def eval(self, node: ast.expr, module: str, env: dict | None = None) -> Any:
        env = env if env is not None else {}
        m = getattr(self, "_e_" + type(node).__name__, None)
        if m is None:
            raise Unresolved(f"unsupported expression {type(node).__name__}")
        return m(node, module, env)

    def _e_Constant(self, n, mod, env):
        return n.value

    def _e_Name(self, n, mod, env):
        if n.id in env:
            return env[n.id]
        try:
            return self.lookup(mod, n.id)[0]
        except Unresolved:
            if n.id in _BUILTIN_CONSTS:
                return _BUILTIN_CONSTS[n.id]
            if n.id in _BUILTINS:
                return Opaque(_BUILTINS[n.id])
            raise

    def _e_Attribute(self, n, mod, env):
        return self.getattr(self.eval(n.value, mod, env), n.attr)

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
        if isinstance(base, _EnumMember):
            if attr in ("value", "name"):
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

    def _e_BinOp(self, n, mod, env):
        a, b = _plain(self.eval(n.left, mod, env)), _plain(self.eval(n.right, mod, env))
        try:
            return _BIN[type(n.op)](a, b)
        except Exception as e:
            raise Unresolved(f"binary op failed: {e}") from None

    def _e_UnaryOp(self, n, mod, env):
        v = _plain(self.eval(n.operand, mod, env))
        if isinstance(n.op, ast.Not):
            return not v
        if isinstance(n.op, ast.USub):
            return -v
        if isinstance(n.op, ast.UAdd):
            return +v
        return ~v

    def _e_BoolOp(self, n, mod, env):
        if isinstance(n.op, ast.And):
            v = True
            for x in n.values:
                v = self.eval(x, mod, env)
                if not _plain(v):
                    return v
            return v
        v = False
        for x in n.values:
            v = self.eval(x, mod, env)
            if _plain(v):
                return v
        return v

    def _e_Compare(self, n, mod, env):
        left = _plain(self.eval(n.left, mod, env))
        for op, c in zip(n.ops, n.comparators):
            right = _plain(self.eval(c, mod, env))
            if not _CMP[type(op)](left, right):
                return False
            left = right
        return True

    def _e_IfExp(self, n, mod, env):
        return self.eval(n.body if _plain(self.eval(n.test, mod, env)) else n.orelse, mod, env)

    def _e_Tuple(self, n, mod, env):
        return tuple(self._elts(n.elts, mod, env))

    def _e_List(self, n, mod, env):
        return list(self._elts(n.elts, mod, env))

    def _e_Set(self, n, mod, env):
        return set(self._elts(n.elts, mod, env))

    def _elts(self, elts, mod, env):
        out = []
        for e in elts:
            if isinstance(e, ast.Starred):
                out.extend(_plain(self.eval(e.value, mod, env)))
            else:
                out.append(self.eval(e, mod, env))
        return out

    def _e_Dict(self, n, mod, env):
        out = {}
        for k, v in zip(n.keys, n.values):
            if k is None:
                out.update(_plain(self.eval(v, mod, env)))
            else:
                out[_plain(self.eval(k, mod, env))] = self.eval(v, mod, env)
        return out

    def _e_Subscript(self, n, mod, env):
        base = _plain(self.eval(n.value, mod, env))
        idx = _plain(self.eval(n.slice, mod, env))
        try:
            return _wrap(base[idx])
        except Exception as e:
            raise Unresolved(f"subscript failed: {e}") from None

    def _e_Slice(self, n, mod, env):
        f = lambda x: None if x is None else _plain(self.eval(x, mod, env))  # noqa: E731
        return slice(f(n.lower), f(n.upper), f(n.step))

    def _e_JoinedStr(self, n, mod, env):
        parts = []
        for v in n.values:
            if isinstance(v, ast.Constant):
                parts.append(str(v.value))
            else:
                x = _plain(self.eval(v.value, mod, env))
                spec = self.eval(v.format_spec, mod, env) if v.format_spec else ""
                x = repr(x) if v.conversion == ord("r") else (str(x) if v.conversion == ord("s") else x)
                parts.append(format(x, spec))
        return "".join(parts)

    def _e_Lambda(self, n, mod, env):
        return LambdaVal(n, mod)

    def _comp(self, n, mod, env, make):
        results = []

        def rec(i, scope):
            if i == len(n.generators):
                results.append(make(scope))
                return
            g = n.generators[i]
            for item in _plain(self.eval(g.iter, mod, scope)):
                s = dict(scope)
                _assign(g.target, item, s)
                if all(_plain(self.eval(c, mod, s)) for c in g.ifs):
                    rec(i + 1, s)
        rec(0, dict(env))
        return results

    def _e_ListComp(self, n, mod, env):
        return self._comp(n, mod, env, lambda s: self.eval(n.elt, mod, s))

    _e_GeneratorExp = _e_ListComp

    def _e_SetComp(self, n, mod, env):
        return set(self._e_ListComp(n, mod, env))

    def _e_DictComp(self, n, mod, env):
        return dict(self._comp(n, mod, env, lambda s: (_plain(self.eval(n.key, mod, s)), self.eval(n.value, mod, s))))

    def _e_Call(self, n, mod, env):
        fn = self.eval(n.func, mod, env)
        args = self._elts(n.args, mod, env)
        kwargs = {}
        for k in n.keywords:
            if k.arg is None:
                kwargs.update(_plain(self.eval(k.value, mod, env)))
            else:
                kwargs[k.arg] = self.eval(k.value, mod, env)
        return self.call(fn, args, kwargs)

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
                except Exception as e:
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
            except Exception as e:
                raise Unresolved(f"call failed: {e}") from None
        if isinstance(fn, LambdaVal):
            env = {}
            for a, v in zip(fn.node.args.args, args):
                env[a.arg] = v
            return self.eval(fn.node.body, fn.module, env)
        if isinstance(fn, FuncRef) and fn.kind == "py":
            return self._interp(fn, args, kwargs)
        raise Unresolved(f"cannot call {fn!r} statically")

    # ---- a tiny interpreter for pure helper functions -------------------------------------
    def _interp(self, ref: FuncRef, args, kwargs):
        node = self.module(ref.module).bindings[ref.name].node
        a = node.args
        params = a.posonlyargs + a.args
        env: dict = {}
        defaults = [None] * (len(params) - len(a.defaults)) + list(a.defaults)
        for i, p in enumerate(params):
            if i < len(args):
                env[p.arg] = args[i]
            elif p.arg in kwargs:
                env[p.arg] = kwargs[p.arg]
            elif defaults[i] is not None:
                env[p.arg] = self.eval(defaults[i], ref.module)
            else:
                raise Unresolved(f"missing argument {p.arg} of {ref.name}")
        for p, d in zip(a.kwonlyargs, a.kw_defaults):
            env[p.arg] = kwargs[p.arg] if p.arg in kwargs else (self.eval(d, ref.module) if d else None)
        self._steps = 0
        try:
            self._exec(node.body, ref.module, env)
        except _Return as r:
            return r.value
        return None

    def _exec(self, stmts, mod, env):
        for st in stmts:
            self._steps += 1
            if self._steps > 20000:
                raise Unresolved("helper function too long to evaluate")
            if isinstance(st, ast.Return):
                raise _Return(self.eval(st.value, mod, env) if st.value else None)
            elif isinstance(st, ast.Assign):
                v = self.eval(st.value, mod, env)
                for t in st.targets:
                    _assign(t, v, env)
            elif isinstance(st, ast.AnnAssign):
                if st.value is not None:
                    _assign(st.target, self.eval(st.value, mod, env), env)
            elif isinstance(st, ast.AugAssign):
                cur = _plain(self.eval(st.target, mod, env))
                _assign(st.target, _BIN[type(st.op)](cur, _plain(self.eval(st.value, mod, env))), env)
            elif isinstance(st, ast.If):
                self._exec(st.body if _plain(self.eval(st.test, mod, env)) else st.orelse, mod, env)
            elif isinstance(st, ast.For):
                for item in _plain(self.eval(st.iter, mod, env)):
                    _assign(st.target, item, env)
                    self._exec(st.body, mod, env)
            elif isinstance(st, ast.Expr):
                if not isinstance(st.value, ast.Constant):
                    self.eval(st.value, mod, env)
            elif isinstance(st, ast.Pass):
                pass
            elif isinstance(st, ast.ImportFrom) and st.level == 0 and not (st.module or "").startswith("vllm"):
                for a in st.names:
                    env[a.asname or a.name] = ExtRef(f"{st.module}.{a.name}")
            elif isinstance(st, ast.Import):
                for a in st.names:
                    if not a.name.startswith("vllm"):
                        env[a.asname or a.name.split(".")[0]] = ExtRef(a.asname and a.name or a.name.split(".")[0])
            else:
                raise Unresolved(f"statement {type(st).__name__} in helper function")


class DeviceCapability(tuple):
    """vLLM's ``DeviceCapability(major, minor)`` named tuple."""

    def __new__(cls, major, minor):
        return super().__new__(cls, (major, minor))

    major = property(lambda self: self[0])
    minor = property(lambda self: self[1])

    def to_int(self) -> int:
        return self[0] * 10 + self[1]

    def as_version_str(self) -> str:
        return f"{self[0]}.{self[1]}"


class _EnumMember:
    def __init__(self, name, value):
        self.name, self.value = name, value

    def __eq__(self, o):
        return isinstance(o, _EnumMember) and o.value == self.value

    def __hash__(self):
        return hash(self.value)


def _assign(tgt, v, env):
    if isinstance(tgt, ast.Name):
        env[tgt.id] = v
    elif isinstance(tgt, (ast.Tuple, ast.List)):
        for t, x in zip(tgt.elts, _plain(v)):
            _assign(t, x, env)
    else:
        raise Unresolved("unsupported assignment target")


def _plain(v):
    if isinstance(v, Opaque):
        return v.obj
    if isinstance(v, Constexpr):
        return v.value
    if isinstance(v, _EnumMember):
        return v.value
    if isinstance(v, ExtRef):
        try:
            return materialize(v.path)
        except Unresolved:
            raise
    return v


def _wrap(v):
    if v is None or isinstance(v, (bool, int, float, str, tuple, list, dict, set)):
        return v
    return Opaque(v)


def materialize(path: str):
    """Import the real object behind an external dotted path (torch, triton, math...)."""
    if path in P.EXTERNAL_ATTRS:
        return P.EXTERNAL_ATTRS[path]
    parts = path.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except Exception:
            continue
        try:
            for p in parts[i:]:
                obj = getattr(obj, p)
            return obj
        except AttributeError:
            break
    raise Unresolved(f"cannot import {path}")


def _is_jit_decorator(prog: Program, module: str, dec: ast.expr) -> bool:
    node = dec.func if isinstance(dec, ast.Call) else dec
    try:
        v = prog.eval(node, module)
    except Unresolved:
        return False
    return isinstance(v, ExtRef) and v.path in JIT_PATHS


CONSTEXPR_PATHS = {"triton.language.constexpr", "triton.language.core.constexpr",
                   "triton.experimental.gluon.language.constexpr"}
JIT_PATHS = {"triton.jit", "triton.runtime.jit", "triton.runtime.jit.jit", "triton.experimental.gluon.jit",
             "triton.experimental.gluon._runtime.jit", "triton.language.core.constexpr_function",
             "triton.constexpr_function"}
