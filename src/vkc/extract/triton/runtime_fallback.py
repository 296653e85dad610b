"""Last-resort evaluation by importing the vLLM module (CPU, in a subprocess).

Used only when the static evaluator cannot decide (a platform-conditional definition whose
condition it cannot evaluate).  ``CUDA_VISIBLE_DEVICES=""`` keeps vLLM's real Triton
(``vllm.triton_utils``'s "distributed env" branch); ``sys.path`` starts with the tree root.
Answers are memoized per (module, query).  Values come from the CPU platform, so callers
note when this was used.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

_SCRIPT = r"""
import importlib, json, sys
sys.path.insert(0, sys.argv[1])
mod = importlib.import_module(sys.argv[2])
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


class RuntimeFallback:
    def __init__(self, root: Path, timeout: float = 120.0):
        self.root = Path(root)
        self.timeout = timeout
        self.cache: dict[tuple[str, str], object] = {}

    def __call__(self, module: str, query: str):
        key = (module, query)
        if key not in self.cache:
            env = dict(os.environ, CUDA_VISIBLE_DEVICES="")
            env.pop("PYTHONPATH", None)
            try:
                r = subprocess.run([sys.executable, "-c", _SCRIPT, str(self.root), module, query],
                                   capture_output=True, text=True, timeout=self.timeout, env=env)
            except subprocess.TimeoutExpired:
                r = None
            if r is None or r.returncode != 0:
                self.cache[key] = None
            else:
                self.cache[key] = json.loads(r.stdout.strip().splitlines()[-1])
        v = self.cache[key]
        if v is None:
            from vkc.extract.triton.values import Unresolved
            raise Unresolved(f"importing {module} to evaluate {query} failed")
        return v
