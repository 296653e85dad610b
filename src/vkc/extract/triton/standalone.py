"""Ground truth for "every global resolved": import the module in a clean interpreter.

The child runs ``python -I`` (no PYTHONPATH, no user site, no script dir; vLLM blocked in
``sys.modules``), execs each generated module from a real file (Triton needs the source),
unwraps Autotuner/Heuristics to the JITFunction and asks Triton's own dependency finder
(``cache_key``, then ``used_global_vals``) about globals; names no scope defines are found by
walking each reachable jit function's source.  Triton APIs are feature-detected.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

_CHILD = r'''
import ast, builtins, importlib.util, json, os, sys, tempfile, traceback
sys.modules["vllm"] = None
import triton
import triton.language as tl
from triton.runtime import jit as _jit
JIT = getattr(_jit, "JITCallable", None) or _jit.JITFunction
cases = json.load(sys.stdin)
tmp = tempfile.mkdtemp(prefix="vkc_standalone_")
results = []
BUILTINS = set(dir(builtins))

def unwrap(obj):
    seen = 0
    while not isinstance(obj, JIT) and hasattr(obj, "fn") and seen < 20:
        obj, seen = obj.fn, seen + 1
    return obj

def src_of(fn):
    s = getattr(fn, "src", None)
    if s is None:
        import inspect, textwrap
        s = textwrap.dedent(inspect.getsource(fn.fn))
    return s

def free_names(fn):
    tree = ast.parse(src_of(fn))
    f = next(n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)))
    local = set()
    for n in ast.walk(f):
        if isinstance(n, ast.arg):
            local.add(n.arg)
        elif isinstance(n, ast.Name) and not isinstance(n.ctx, ast.Load):
            local.add(n.id)
        elif isinstance(n, (ast.FunctionDef, ast.ClassDef)) and n is not f:
            local.add(n.name)
    body_nodes = list(f.body) + list(f.args.defaults) + [d for d in f.args.kw_defaults if d is not None]
    body_nodes += [a.annotation for a in f.args.args + f.args.kwonlyargs if a.annotation is not None]
    names = []
    for b in body_nodes:
        for n in ast.walk(b):
            if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load) and n.id not in local:
                names.append(n.id)
    return names

def is_constexpr_like(v):
    return isinstance(v, (tl.constexpr, tl.dtype)) or type(v).__module__.startswith("triton.language")

for i, case in enumerate(cases):
    problems = []
    try:
        path = os.path.join(tmp, f"vkc_mod_{i}.py")
        with open(path, "w") as f:
            f.write(case["source"])
        spec = importlib.util.spec_from_file_location(f"vkc_mod_{i}", path)
        mod = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = mod
        spec.loader.exec_module(mod)
        entry = unwrap(getattr(mod, case["entry"]))
        if not isinstance(entry, JIT):
            problems.append(f"{case['entry']} is not a Triton JIT function ({type(entry).__name__})")
        else:
            seen, todo = set(), [entry]
            while todo:
                fn = todo.pop()
                if id(fn) in seen:
                    continue
                seen.add(id(fn))
                g = fn.fn.__globals__ if hasattr(fn, "fn") else {}
                for name in free_names(fn):
                    if name in g:
                        v = g[name]
                        if isinstance(v, JIT):
                            todo.append(v)
                        elif getattr(v, "__triton_aggregate__", False):
                            for a in vars(v).values():
                                a = unwrap(a)
                                if isinstance(a, JIT):
                                    todo.append(a)
                    elif name not in BUILTINS:
                        problems.append(f"unresolved global {name!r} in {fn.__name__}")
            ck = entry.cache_key
            if callable(ck):
                ck = ck()
            ugv = getattr(entry, "used_global_vals", None) or {}
            for (name, _), (val, _) in sorted(ugv.items(), key=lambda kv: kv[0][0]):
                if not is_constexpr_like(val):
                    problems.append(f"global {name!r} = {val!r} is not tl.constexpr (Triton rejects it)")
    except BaseException as e:
        problems.append(f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}".strip())
    results.append(sorted(set(problems)))
print("VKC_RESULT " + json.dumps(results))
'''


def check_standalone_many(cases: list[tuple[str, str]], timeout: float = 600.0) -> list[list[str]]:
    """``check_standalone`` for many (source_code, entry) pairs in one clean interpreter."""
    if not cases:
        return []
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env["CUDA_VISIBLE_DEVICES"] = ""
    payload = json.dumps([{"source": s, "entry": e} for s, e in cases])
    try:
        r = subprocess.run([sys.executable, "-I", "-c", _CHILD], input=payload, capture_output=True,
                           text=True, timeout=timeout, env=env, cwd="/")
    except subprocess.TimeoutExpired:
        return [["standalone check timed out"]] * len(cases)
    for line in r.stdout.splitlines():
        if line.startswith("VKC_RESULT "):
            return json.loads(line[len("VKC_RESULT "):])
    err = (r.stderr.strip().splitlines() or ["no output"])[-1]
    return [[f"standalone checker crashed: {err}"]] * len(cases)


def check_standalone(source_code: str, entry: str) -> list[str]:
    """Problems that keep ``source_code`` from importing standalone (empty list = ok)."""
    return check_standalone_many([(source_code, entry)])[0]
