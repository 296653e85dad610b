"""The static index of the CUDA half: which test function of ``tests/kernels/**`` calls an op that
launches a CUDA kernel.

Python ``ast`` only, nothing imported.  A test reaches an op ``ns::name`` when its body (or one
helper function of the same test file, ``via``) names ``torch.ops.<ns>.<name>`` -- called, or passed
on (``opcheck(torch.ops._C.rms_norm, ...)``) -- or calls a Python wrapper whose body names that op,
directly or through other functions of its module (:func:`module_op_wrappers`): a function of
``vllm/_custom_ops.py`` (``ops.rms_norm(...)`` after ``from vllm import _custom_ops as ops``;
``import vllm._custom_ops as ops``; ``from vllm._custom_ops import rms_norm``) or of any other module
of ``vllm/`` that names ``torch.ops.`` (``fp8_utils.per_token_group_quant_fp8``), matched by the
module it is imported from, or by name when exactly one module defines such a wrapper (a re-export),
as the Triton half matches wrappers.  The op -> kernels map is the CUDA invoker's
(:func:`vkc.invoke.cuda.modeltraced.op_kernel_map`, from ``torch_bindings.cpp`` and vkc's index).
"""
from __future__ import annotations

import ast
import hashlib
import json
from collections.abc import Iterable, Mapping
from pathlib import Path

from vkc.records import SourceTree

from .records import Reach, ReachIndex, VllmTest
from .static import TEST_ROOT, Callee, _callees, _dotted, _imports, _test_of

__all__ = ["build_op_reach_index", "module_op_wrappers", "op_refs", "op_wrapper_table", "scan_op_test_file"]

_AMBIGUOUS = {"forward", "__call__", "apply", "run", "main", "wrapper", "launch", "kernel", "fn"}
Wrappers = Mapping[str, list[tuple[str, frozenset[str]]]]    # function name -> [(module, ops)]
_memo: dict[str, ReachIndex] = {}


def op_refs(node: ast.AST) -> set[str]:
    """``ns::name`` of every ``torch.ops.<ns>.<name>[.<overload>]`` named under ``node``."""
    out: set[str] = set()
    for n in ast.walk(node):
        if isinstance(n, ast.Attribute):
            parts = (_dotted(n) or "").split(".")
            if len(parts) in (4, 5) and parts[:2] == ["torch", "ops"]:
                out.add(f"{parts[2]}::{parts[3]}")
    return out


def _module_functions(tree: ast.Module) -> dict[str, ast.FunctionDef]:
    """Functions defined at module level, also inside top-level ``if``/``try`` blocks, without the
    ``register_fake`` ones (the meta implementations, not the op's callers)."""
    out: dict[str, ast.FunctionDef] = {}
    todo: list[ast.stmt] = list(tree.body)
    while todo:
        node = todo.pop(0)
        if isinstance(node, ast.FunctionDef):
            fake = any("register_fake" in ast.unparse(d) for d in node.decorator_list)
            if not fake:
                out.setdefault(node.name, node)
        elif isinstance(node, ast.If):
            todo += node.body + node.orelse
        elif isinstance(node, ast.Try):
            todo += node.body + [s for h in node.handlers for s in h.body] + node.orelse
    return out


def module_op_wrappers(text: str, rel: str = "vllm/_custom_ops.py") -> dict[str, frozenset[str]]:
    """Module-level function of one vLLM module -> the ops it names, directly or through the
    module's other functions (a fixed point over the module's call graph)."""
    try:
        tree = ast.parse(text, filename=rel)
    except SyntaxError:
        return {}
    fns = _module_functions(tree)
    own = {name: op_refs(fn) for name, fn in fns.items()}
    calls = {name: {n.func.id for n in ast.walk(fn) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)
                    and n.func.id in fns and n.func.id != name} for name, fn in fns.items()}
    changed = True
    while changed:
        changed = False
        for name in sorted(fns):
            grown = own[name].union(*(own[c] for c in calls[name])) if calls[name] else own[name]
            if grown != own[name]:
                own[name], changed = grown, True
    return {name: frozenset(ops) for name, ops in sorted(own.items()) if ops}


def op_wrapper_table(root: Path) -> dict[str, list[tuple[str, frozenset[str]]]]:
    """Function name -> [(module, ops)] over every ``vllm/**/*.py`` that names ``torch.ops.``."""
    out: dict[str, list[tuple[str, frozenset[str]]]] = {}
    for path in sorted((root / "vllm").rglob("*.py")):
        text = path.read_text(encoding="utf-8", errors="replace")
        if "torch.ops." not in text:
            continue
        rel = path.relative_to(root).as_posix()
        mod = rel.removesuffix(".py").removesuffix("/__init__").replace("/", ".")
        for name, ops in module_op_wrappers(text, rel).items():
            out.setdefault(name, []).append((mod, ops))
    return out


def _match(callee: Callee, wrappers: Wrappers) -> list[tuple[str, frozenset[str]]]:
    mod, name = callee
    cands = wrappers.get(name, [])
    if not mod.startswith("vllm") or not cands:
        return []
    exact = [(m, ops) for m, ops in cands if m == mod or mod.startswith(m + ".")]
    if exact:
        return exact
    if name in _AMBIGUOUS or len(cands) > 1:
        return []
    return cands   # a re-export of the one wrapper of that name


def _ops_of(callees: Iterable[Callee], node: ast.AST, wrappers: Wrappers) -> set[tuple[str, str]]:
    """(op, how) the function ``node`` reaches: ``how`` is ``torch.ops.ns.name`` or ``module:function``."""
    out = {(op, "torch.ops." + op.replace("::", ".")) for op in op_refs(node)}
    for c in callees:
        for mod, ops in _match(c, wrappers):
            out |= {(op, f"{mod}:{c[1]}") for op in ops}
    return out


def scan_op_test_file(rel: str, text: str, wrappers: Wrappers
                      ) -> list[tuple[VllmTest, set[tuple[str, str]], dict[str, set[tuple[str, str]]]]]:
    """Each top-level test function of one file: the test, the (op, how) it reaches, and per local
    helper it calls, the (op, how) that helper reaches."""
    try:
        tree = ast.parse(text, filename=rel)
    except SyntaxError:
        return []
    names, modules = _imports(tree)
    local = {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef)}
    out = []
    for name in sorted(local):
        if not name.startswith("test"):
            continue
        fn = local[name]
        calls = _callees(fn, names, modules)
        helpers = {c[1]: _ops_of(_callees(local[c[1]], names, modules), local[c[1]], wrappers) for c in calls
                   if c[0] == "" and c[1] in local and c[1] != name and not c[1].startswith("test")}
        out.append((_test_of(rel, fn), _ops_of(calls, fn, wrappers), {h: o for h, o in helpers.items() if o}))
    return out


def _scan(tree: SourceTree, op_kernels: Mapping[str, tuple[str, ...]], roots: tuple[str, ...]) -> ReachIndex:
    root = Path(tree.root)
    wrappers = op_wrapper_table(root)
    files = sorted({p for r in roots if (root / r).is_dir() for p in (root / r).rglob("test_*.py")})
    reaches: set[Reach] = set()
    ntests = 0
    for path in files:
        rel = path.relative_to(root).as_posix()
        for test, ops, helpers in scan_op_test_file(rel, path.read_text(encoding="utf-8", errors="replace"),
                                                    wrappers):
            ntests += 1
            found = [(op, how, None) for op, how in ops] + [(op, how, h) for h, hops in helpers.items()
                                                            for op, how in hops]
            for op, how, via in found:
                for kernel in op_kernels.get(op, ()):
                    reaches.add(Reach(kernel, how, test, via=via, op=op))
    direct = {(r.kernel, r.test.node_id) for r in reaches if r.via is None}
    kept = [r for r in reaches if r.via is None or (r.kernel, r.test.node_id) not in direct]
    return ReachIndex(tree.sha256, ntests, len(files),
                      tuple(sorted(kept, key=lambda r: (r.kernel, r.via is not None, r.test.file, r.test.line,
                                                        r.op or "", r.wrapper, r.via or ""))))


def _disk_key(tree: SourceTree, op_kernels: Mapping[str, tuple[str, ...]], roots: tuple[str, ...]) -> str:
    here = Path(__file__)
    blob = {"tree": [str(tree.root), tree.sha256, tree.version], "ops": sorted(op_kernels.items()),
            "roots": list(roots),
            "src": [hashlib.sha256(here.with_name(m).read_bytes()).hexdigest()[:16]
                    for m in ("static_cuda.py", "static.py", "records.py")]}
    return hashlib.sha256(json.dumps(blob, sort_keys=True).encode()).hexdigest()[:32]


def build_op_reach_index(tree: SourceTree, op_kernels: Mapping[str, Iterable[str]],
                         roots: tuple[str, ...] = (TEST_ROOT,)) -> ReachIndex:
    """Scan ``<root>/**/test_*.py`` for each of ``roots`` against ``op_kernels`` (op -> qualified CUDA
    kernels it launches); every :class:`Reach` carries its ``op``.  Memoised, and cached on disk as
    ``$VKC_CACHE_DIR/testtraces/opreach-<key>.json``."""
    from vkc.source import cache_dir

    from .static import cached_reach_index

    ok = {op: tuple(sorted(ks)) for op, ks in sorted(op_kernels.items())}
    dkey = _disk_key(tree, ok, roots)
    path = Path(cache_dir()) / "testtraces" / f"opreach-{dkey}.json"
    return cached_reach_index(path, _memo, dkey, lambda: _scan(tree, ok, roots))
