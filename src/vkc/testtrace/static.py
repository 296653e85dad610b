"""The static index: which test function of ``tests/**`` calls which Triton kernel's wrapper.

Every ``test_*.py`` under ``tests/`` is scanned (:data:`TRITON_TEST_ROOT`): vLLM keeps kernel unit
tests beside its model and engine tests too (``tests/v1/spec_decode``, ``tests/models/<arch>``), and
those reach 111 Triton kernels that ``tests/kernels`` does not (0.33.0).  A kernel's tests are
tried ``tests/kernels`` first, then the rest in path order.

Python ``ast`` only, nothing imported.  A wrapper is the function around a kernel's launch site
(:attr:`vkc.records.LaunchSite.wrapper`).  A test *reaches* a kernel when its body calls the
wrapper directly -- by a name imported from the wrapper's module (``from vllm.x import f``;
``import vllm.x as m`` then ``m.f(...)``), or by a name imported from another vLLM module
(a re-export) when no other wrapper has that name -- or through one helper function of the same
test file that does (``via``).  Class-based tests and wrappers that are methods are not indexed.
"""
from __future__ import annotations

import ast
import hashlib
import json
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from vkc.atomic import store_cache
from vkc.records import KernelEntry, SourceTree

from .records import Reach, ReachIndex, VllmTest

__all__ = ["TEST_ROOT", "TRITON_TEST_ROOT", "build_reach_index", "scan_test_file"]

TEST_ROOT = "tests/kernels"          # the CUDA op index's root, and the Triton index's preferred files
TRITON_TEST_ROOT = "tests"
_AMBIGUOUS = {"forward", "__call__", "apply", "run", "main", "wrapper", "launch", "kernel", "fn"}
_memo: dict[tuple[str, str | None, str], ReachIndex] = {}

Callee = tuple[str, str]          # (module the name is imported from, or "" for a local def; function name)


def _imports(tree: ast.Module) -> tuple[dict[str, Callee], dict[str, str]]:
    names: dict[str, Callee] = {}
    modules: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and not node.level:
            for a in node.names:
                names[a.asname or a.name] = (node.module, a.name)
                modules[a.asname or a.name] = f"{node.module}.{a.name}"    # may itself be a module
        elif isinstance(node, ast.Import):
            for a in node.names:
                modules[a.asname or a.name.split(".")[0]] = a.name if a.asname else a.name.split(".")[0]
    return names, modules


def _dotted(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        head = _dotted(node.value)
        return f"{head}.{node.attr}" if head else None
    return None


def _callees(fn: ast.AST, names: Mapping[str, Callee], modules: Mapping[str, str]) -> set[Callee]:
    out: set[Callee] = set()
    for node in ast.walk(fn):
        if not isinstance(node, ast.Call):
            continue
        f = node.func
        if isinstance(f, ast.Name):
            out.add(names.get(f.id, ("", f.id)))
        elif isinstance(f, ast.Attribute):
            head = _dotted(f.value)
            if head is None:
                continue
            first, _, rest = head.partition(".")
            if first in modules:
                out.add((modules[first] + (f".{rest}" if rest else ""), f.attr))
    return out


def _param_texts(fn: ast.FunctionDef) -> tuple[tuple[str, tuple[str, ...]], ...]:
    out: list[tuple[str, tuple[str, ...]]] = []
    for dec in fn.decorator_list:
        if not (isinstance(dec, ast.Call) and (_dotted(dec.func) or "").endswith("mark.parametrize") and dec.args):
            continue
        first = dec.args[0]
        argnames = first.value if isinstance(first, ast.Constant) and isinstance(first.value, str) else (
            ",".join(e.value for e in first.elts if isinstance(e, ast.Constant) and isinstance(e.value, str))
            if isinstance(first, (ast.List, ast.Tuple)) else ast.unparse(first))
        values = dec.args[1] if len(dec.args) > 1 else None
        texts = tuple(ast.unparse(v) for v in values.elts) if isinstance(values, (ast.List, ast.Tuple)) else (
            (ast.unparse(values),) if values is not None else ())
        out.append((argnames.replace(" ", ""), texts))
    return tuple(out)


def _test_of(rel: str, fn: ast.FunctionDef) -> VllmTest:
    params = _param_texts(fn)
    covered = {n for names, _v in params for n in names.split(",")}
    args = [a.arg for a in fn.args.posonlyargs + fn.args.args + fn.args.kwonlyargs]
    ndef = len(fn.args.defaults)
    defaulted = set(args[len(fn.args.posonlyargs + fn.args.args) - ndef:len(fn.args.posonlyargs + fn.args.args)])
    defaulted |= {a.arg for a, d in zip(fn.args.kwonlyargs, fn.args.kw_defaults) if d is not None}
    fixtures = tuple(a for a in args if a not in covered and a not in defaulted)
    return VllmTest(rel, fn.name, fn.lineno, params, fixtures)


def scan_test_file(rel: str, text: str) -> list[tuple[VllmTest, set[Callee], dict[str, set[Callee]]]]:
    """Each top-level test function of one file: the test, what it calls, and what each local helper
    it calls calls."""
    try:
        tree = ast.parse(text, filename=rel)
    except SyntaxError:
        return []
    names, modules = _imports(tree)
    local = {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef)}
    out = []
    for name in sorted(local):
        fn = local[name]
        if not name.startswith("test"):
            continue
        calls = _callees(fn, names, modules)
        helpers = {c[1]: _callees(local[c[1]], names, modules) for c in calls
                   if c[0] == "" and c[1] in local and c[1] != name and not c[1].startswith("test")}
        out.append((_test_of(rel, fn), calls, helpers))
    return out


def _wrappers(kernels: Iterable[KernelEntry]) -> dict[str, list[tuple[str, str]]]:
    """wrapper leaf name -> [(wrapper module, kernel qualified)]."""
    out: dict[str, list[tuple[str, str]]] = {}
    for k in kernels:
        if k.lang != "triton" or k.role != "entry" or k.rocm_only:
            continue
        for s in k.launch_sites:
            if not s.wrapper or "." in s.wrapper or "<" in s.wrapper:
                continue
            mod = s.file.removesuffix(".py").removesuffix("/__init__").replace("/", ".")
            pair = (mod, k.qualified or f"{k.module}:{k.qualname}")
            if pair not in out.setdefault(s.wrapper, []):
                out[s.wrapper].append(pair)
    return out


def _match(callee: Callee, wrappers: Mapping[str, list[tuple[str, str]]]) -> list[tuple[str, str]]:
    mod, name = callee
    cands = wrappers.get(name, [])
    if not mod.startswith("vllm") or not cands:
        return []
    exact = [(m, k) for m, k in cands if m == mod or mod.startswith(m + ".")]
    if exact:
        return exact
    if name in _AMBIGUOUS or len({m for m, _k in cands}) > 1:
        return []
    return cands   # a re-export of the one wrapper of that name


def _reach_to(r: Reach) -> dict[str, Any]:
    t = r.test
    return {"kernel": r.kernel, "wrapper": r.wrapper, "via": r.via, "file": t.file, "function": t.function,
            "line": t.line, "params": [[n, list(v)] for n, v in t.params], "fixtures": list(t.fixtures),
            **({"op": r.op} if r.op is not None else {})}


def _reach_from(d: dict[str, Any]) -> Reach:
    t = VllmTest(d["file"], d["function"], int(d["line"]), tuple((n, tuple(v)) for n, v in d["params"]),
                 tuple(d["fixtures"]))
    return Reach(d["kernel"], d["wrapper"], t, d.get("via"), d.get("op"))


def _disk_key(tree: SourceTree, wrappers: Mapping[str, list[tuple[str, str]]]) -> str:
    blob = {"tree": [str(tree.root), tree.sha256, tree.version], "wrappers": sorted(wrappers.items()),
            "static": hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:16],
            "records": hashlib.sha256(Path(__file__).with_name("records.py").read_bytes()).hexdigest()[:16]}
    return hashlib.sha256(json.dumps(blob, sort_keys=True).encode()).hexdigest()[:32]


def build_reach_index(tree: SourceTree, kernels: Iterable[KernelEntry]) -> ReachIndex:
    """Scan ``tests/**/test_*.py`` of ``tree`` against the kernels' wrappers (memoised per
    tree, cached on disk as ``$VKC_CACHE_DIR/testtraces/reach-<key>.json``)."""
    from vkc.source import cache_dir

    kernels = tuple(kernels)
    wrappers = _wrappers(kernels)
    dkey = _disk_key(tree, wrappers)
    key = (str(tree.root), tree.sha256, dkey)
    path = Path(cache_dir()) / "testtraces" / f"reach-{dkey}.json"
    return cached_reach_index(path, _memo, key, lambda: _scan(tree, wrappers))


def cached_reach_index(path: Path, memo: dict, key: object, scan: Callable[[], ReachIndex]) -> ReachIndex:
    """``memo[key]``, else the index stored at ``path`` (a damaged file is rescanned), else ``scan()``
    stored there; the one disk cache of the Triton and CUDA reach indexes."""
    if key in memo:
        return memo[key]
    if path.is_file():
        try:
            d = json.loads(path.read_text())
            memo[key] = ReachIndex(d["tree_sha256"], int(d["tests"]), int(d["files"]),
                                   tuple(_reach_from(r) for r in d["reaches"]))
            return memo[key]
        except (OSError, ValueError, KeyError, TypeError):
            pass
    out = scan()
    store_cache(path, json.dumps({"tree_sha256": out.tree_sha256, "tests": out.tests, "files": out.files,
                                  "reaches": [_reach_to(r) for r in out.reaches]}, sort_keys=True))
    memo[key] = out
    return out


def _scan(tree: SourceTree, wrappers: Mapping[str, list[tuple[str, str]]]) -> ReachIndex:
    root = Path(tree.root)
    base = root / TRITON_TEST_ROOT
    files = sorted(base.rglob("test_*.py")) if base.is_dir() else []
    reaches: set[Reach] = set()
    ntests = 0
    for path in files:
        rel = path.relative_to(root).as_posix()
        for test, calls, helpers in scan_test_file(rel, path.read_text(encoding="utf-8", errors="replace")):
            ntests += 1
            for c in calls:
                for mod, kernel in _match(c, wrappers):
                    reaches.add(Reach(kernel, f"{mod}:{c[1]}", test))
            for helper, hcalls in sorted(helpers.items()):
                for c in hcalls:
                    for mod, kernel in _match(c, wrappers):
                        reaches.add(Reach(kernel, f"{mod}:{c[1]}", test, via=helper))
    direct = {(r.kernel, r.test.node_id) for r in reaches if r.via is None}
    kept = [r for r in reaches if r.via is None or (r.kernel, r.test.node_id) not in direct]
    out = ReachIndex(tree.sha256, ntests, len(files),
                     tuple(sorted(kept, key=lambda r: (r.kernel, not r.test.file.startswith(TEST_ROOT + "/"),
                                                       r.via is not None, r.test.file, r.test.line,
                                                       r.wrapper, r.via or ""))))
    return out
