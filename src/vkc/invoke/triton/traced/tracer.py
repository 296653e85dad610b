"""Run the trace worker in a subprocess and cache its answers on disk.

Cache: ``vkc.source.cache_dir()/"traces"/<key>.json``, key = sha256 of (tree root, sdist sha,
kernel, model dims via the shapes, workload, platform, vkc version, and the source of the
worker modules, the recipe module and its declared helpers, so editing any invalidates).
"""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import vkc
from vkc.atomic import store_cache
from vkc.errors import InvocationError
from vkc.invoke.common import H100_PROFILE
from vkc.records import SourceTree

TIMEOUT_S = 600
_memo: dict[str, dict[str, Any]] = {}


def _src_hash(module_name: str) -> str:
    import importlib.util

    spec = importlib.util.find_spec(module_name)
    if spec is None or not spec.origin or not os.path.exists(spec.origin):
        return "?"
    return hashlib.sha256(Path(spec.origin).read_bytes()).hexdigest()[:16]


WORKER_MODULES = (*(f"vkc.invoke.triton.traced.{m}" for m in ("worker", "capture", "platform", "tensors")),
                  "vkc.modeltrace.release_stubs")     # the platform's per-release stand-ins
BASE_MODULE = "vkc.invoke.triton.recipes.base"


def cache_key(tree: SourceTree, jobs: list[dict[str, Any]], helpers: Sequence[str] = ()) -> str:
    """The trace-cache key: the tree, vkc, the jobs (shapes hold the model dims) and the source of the
    worker, the recipe interface, each recipe module and its helper modules (editing any invalidates)."""
    recipes = sorted({j["recipe"] for j in jobs})
    blob = {
        "root": str(tree.root), "sha": tree.sha256, "version": tree.version, "vkc": vkc.__version__,
        "jobs": jobs, "profile": H100_PROFILE,
        "worker": {m: _src_hash(m) for m in WORKER_MODULES},
        "base": _src_hash(BASE_MODULE),
        "helpers": {m: _src_hash(m) for m in sorted(set(helpers))},
        "recipes": {r: _src_hash(f"vkc.invoke.triton.recipes.{r}") for r in recipes},
    }
    return hashlib.sha256(json.dumps(blob, sort_keys=True).encode()).hexdigest()[:32]


def _cache_dir() -> Path:
    from vkc.source import cache_dir

    return Path(cache_dir()) / "traces"


def run_trace(tree: SourceTree, jobs: list[dict[str, Any]], *, helpers: Sequence[str] = (),
              use_cache: bool = True) -> dict[str, Any]:
    """Trace ``jobs`` (see :mod:`.worker` for the request format); returns the worker's response.

    ``helpers``: modules besides the recipe modules whose source the recipes run (cache key)."""
    key = cache_key(tree, jobs, helpers)
    if use_cache and key in _memo:
        return _memo[key]
    path = _cache_dir() / f"{key}.json"
    if use_cache and path.is_file():
        try:
            resp = json.loads(path.read_text())
            _memo[key] = resp
            return resp
        except (OSError, ValueError):
            pass
    req = {"tree_root": str(tree.root), "profile": H100_PROFILE, "jobs": jobs}
    env = dict(os.environ)
    env["CUDA_VISIBLE_DEVICES"] = ""
    env.pop("TRITON_INTERPRET", None)
    env.setdefault("VLLM_LOGGING_LEVEL", "WARNING")
    env["PYTHONPATH"] = os.pathsep.join(
        [str(Path(vkc.__file__).resolve().parent.parent)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    try:
        proc = subprocess.run([sys.executable, "-m", "vkc.invoke.triton.traced.worker"], input=json.dumps(req), check=False,
                              capture_output=True, text=True, env=env, timeout=TIMEOUT_S, cwd=str(tree.root))
    except subprocess.TimeoutExpired as e:
        raise InvocationError(f"launch tracing timed out after {TIMEOUT_S}s",
                              hint="rerun; the vLLM import may be slow on a cold cache") from e
    try:
        resp = json.loads(proc.stdout)
    except ValueError:
        tail = (proc.stderr or "").strip().splitlines()[-3:]
        resp = {"ok": False, "jobs": [], "error": f"trace worker exited {proc.returncode}: {' | '.join(tail)}"}
    if resp.get("ok"):
        _memo[key] = resp
        store_cache(path, json.dumps(resp, sort_keys=True))
    else:
        resp.setdefault("stderr_tail", (proc.stderr or "")[-4000:])
    return resp
