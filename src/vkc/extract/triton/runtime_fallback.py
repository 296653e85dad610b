"""Last-resort evaluation by importing the vLLM module (CPU, in a subprocess).

Used only when the static evaluator cannot decide (a platform-conditional definition whose
condition it cannot evaluate).  ``CUDA_VISIBLE_DEVICES=""`` keeps vLLM's real Triton
(``vllm.triton_utils``'s "distributed env" branch); ``sys.path`` starts with the tree root.
Answers are memoized per (module, query), in memory and on disk; a module whose import
fails is remembered as such, so its other queries start no subprocess.  Values come from
the CPU platform, so callers note when this was used.
"""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

from vkc.atomic import store_cache

_IMPORT_FAILED = 3                  # the script's exit status when importing the module fails
_IMPORT_QUERY = "__vkc_import__"    # the cache entry of a module whose import failed
_SCRIPT = r"""
import importlib, json, sys, traceback
sys.path.insert(0, sys.argv[1])
try:
    mod = importlib.import_module(sys.argv[2])
except BaseException:
    traceback.print_exc()
    sys.exit(3)
query = sys.argv[3]
if query.startswith("__vkc_line__:"):
    obj = getattr(mod, query.split(":", 1)[1])
    while hasattr(obj, "fn"):
        obj = obj.fn
    print(json.dumps(obj.__code__.co_firstlineno))
else:
    v = eval(query, vars(mod))
    if type(v).__name__ == "constexpr":
        v = {"constexpr": v.value}
    print(json.dumps(v))
"""


def _cache_dir() -> Path:
    from vkc.source import cache_dir

    return Path(cache_dir()) / "runtime_fallback"


class RuntimeFallback:
    """``(module, query) -> value`` by importing ``module``; answers are cached in memory and
    on disk (``vkc.source.cache_dir()/"runtime_fallback"/<key>.json``, key = sha256 of tree
    root, sdist sha, module, query, vkc version, this script and the interpreter), so a warm
    collect runs no subprocess.  Timeouts are not cached; failed imports are."""

    def __init__(self, root: Path, timeout: float = 120.0, sha256: str | None = None):
        self.root = Path(root)
        self.sha256 = sha256
        self.timeout = timeout
        self.cache: dict[tuple[str, str], object] = {}

    def _key(self, module: str, query: str) -> str:
        import vkc

        blob = {"root": str(self.root), "sha": self.sha256, "module": module, "query": query,
                "vkc": vkc.__version__, "script": hashlib.sha256(_SCRIPT.encode()).hexdigest(),
                "python": sys.executable}
        return hashlib.sha256(json.dumps(blob, sort_keys=True).encode()).hexdigest()[:32]

    def _load(self, path: Path) -> tuple[bool, object]:
        try:
            got = json.loads(path.read_text())
            return True, (got["value"] if got["ok"] else None)
        except (OSError, ValueError, KeyError, TypeError):
            return False, None

    def _store(self, path: Path, module: str, query: str, ok: bool, value: object, err: str) -> None:
        store_cache(path, json.dumps({"module": module, "query": query, "ok": ok, "value": value,
                                      "stderr_tail": err}, sort_keys=True))

    def _run(self, module: str, query: str) -> object:
        path = _cache_dir() / f"{self._key(module, query)}.json"
        hit, value = self._load(path)
        if hit:
            return value
        import_path = _cache_dir() / f"{self._key(module, _IMPORT_QUERY)}.json"
        if self._load(import_path)[0]:
            return None                     # importing the module failed before: same answer
        env = dict(os.environ, CUDA_VISIBLE_DEVICES="")
        env.pop("PYTHONPATH", None)
        try:
            r = subprocess.run([sys.executable, "-c", _SCRIPT, str(self.root), module, query],
                               capture_output=True, text=True, timeout=self.timeout, env=env, check=False)
        except subprocess.TimeoutExpired:
            return None                     # not cached: may succeed on a less loaded machine
        value = None
        ok = r.returncode == 0
        if ok:
            try:
                value = json.loads(r.stdout.strip().splitlines()[-1])
            except (ValueError, IndexError):
                ok = False
        err = "" if ok else (r.stderr or "")[-2000:]
        if r.returncode == _IMPORT_FAILED:
            self._store(import_path, module, _IMPORT_QUERY, False, None, err)
        self._store(path, module, query, ok, value, err)
        return value

    def __call__(self, module: str, query: str):
        key = (module, query)
        if key not in self.cache:
            self.cache[key] = self._run(module, query)
        v = self.cache[key]
        if v is None:
            from vkc.extract.triton.values import Unresolved
            raise Unresolved(f"importing {module} to evaluate {query} failed")
        return v
