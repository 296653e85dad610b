"""The entry's ``@triton.autotune`` first config and ``@triton.heuristics`` lambdas (split from :mod:`.generic`)."""
from __future__ import annotations

import ast
import math
from typing import Any

from vkc.invoke.triton.plan import TensorView


def decorators(source: str, entry: str) -> tuple[dict, dict[str, str]]:
    """(first autotune config {'kwargs', 'num_warps', 'num_stages'}, heuristics name -> lambda source)."""
    tree = ast.parse(source)
    target = entry.split(".")[-1]
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef) and node.name == target:
            cfg: dict = {}
            heur: dict[str, str] = {}
            for d in node.decorator_list:
                if not isinstance(d, ast.Call):
                    continue
                fname = ast.unparse(d.func)
                if fname.endswith("autotune"):
                    configs = next((k.value for k in d.keywords if k.arg == "configs"), d.args[0] if d.args else None)
                    if isinstance(configs, (ast.List, ast.Tuple)) and configs.elts and not cfg:
                        c = configs.elts[0]
                        if isinstance(c, ast.Call):
                            try:
                                kw = ast.literal_eval(c.args[0]) if c.args else {}
                                for k in c.keywords:
                                    if k.arg in ("kwargs",):
                                        kw = ast.literal_eval(k.value)
                                    elif k.arg in ("num_warps", "num_stages"):
                                        cfg[k.arg] = ast.literal_eval(k.value)
                                cfg["kwargs"] = kw
                            except ValueError:
                                pass
                elif fname.endswith("heuristics"):
                    vals: ast.expr | None = next((k.value for k in d.keywords if k.arg == "values"),
                                                 d.args[0] if d.args else None)
                    if isinstance(vals, ast.Dict):
                        for key, v in zip(vals.keys, vals.values):
                            if isinstance(key, ast.Constant) and isinstance(key.value, str):
                                heur[key.value] = ast.unparse(v)
            return cfg, heur
    return {}, {}


def eval_heuristic(src: str, args: dict[str, Any]) -> Any:
    import triton

    class _T:
        """A stand-in tensor for heuristics that look at .dtype/.shape/.stride()."""
        def __init__(self, numel, dtype):
            import torch
            self.dtype, self.shape = getattr(torch, dtype), (numel,)

        def stride(self, i=None):
            return 1 if i is not None else (1,)

        def numel(self):
            return self.shape[0]

        def element_size(self):
            return self.dtype.itemsize

    ns = {"triton": triton, "math": math, "tl": __import__("triton.language").language,
          "torch": __import__("torch")}
    fn = eval(src, ns)
    view = {k: (_T(v.shape[0], v.dtype) if isinstance(v, TensorView) else v) for k, v in args.items()}
    return fn(view)
