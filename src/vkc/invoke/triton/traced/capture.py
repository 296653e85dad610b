"""Capture Triton launches without running them: ``JITFunction.run`` / ``Autotuner.run`` recorders.

``Heuristics.run`` stays real (its values are recorded).  Each launch record holds the grid,
the arguments (tensors described against their base buffers by :class:`.tensors.TensorFactoryImpl`),
the constexprs, the launch options, Triton's own sm_90 signature and the wrapper's launch site.
"""
from __future__ import annotations

import math
import os
import sys
from types import FrameType
from typing import Any

from vkc.invoke.triton.traced.tensors import TensorFactoryImpl


class _State:
    def __init__(self) -> None:
        self.launches: list[dict[str, Any]] = []
        self.autotune_stack: list[dict[str, Any]] = []
        self.heuristics_stack: list[list[str]] = []
        self.keep: list[Any] = []          # keeps captured tensors alive (storage ids stay unique)
        self.factory: TensorFactoryImpl | None = None
        self.tree_root: str = ""


STATE = _State()


def _jsonable(v: Any) -> Any:
    """Scalars and constexpr values as JSON (floats inf/nan tagged)."""
    import torch

    try:
        import triton.language as tl
    except Exception:  # noqa: BLE001  # pragma: no cover  (Triton missing or broken: plain values only)
        tl = None
    if tl is not None and isinstance(v, tl.constexpr):
        v = v.value
    if v is None or isinstance(v, (bool, str)):
        return v
    if isinstance(v, int):            # IntEnum (e.g. KVQuantMode) -> int
        return int(v)
    if isinstance(v, float):
        return v if math.isfinite(v) else {"__float__": repr(v)}
    if tl is not None and isinstance(v, tl.dtype):
        return {"__tl_dtype__": str(v)}
    if isinstance(v, torch.dtype):
        return {"__torch_dtype__": str(v).replace("torch.", "")}
    if hasattr(v, "item") and callable(v.item):   # numpy scalar
        return _jsonable(v.item())
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    return {"__repr__": repr(v)}


def _fn_identity(jit: Any) -> dict[str, Any]:
    fn = jit.fn
    code = getattr(fn, "__code__", None)
    return {"module": fn.__module__, "qualname": fn.__qualname__,
            "line": code.co_firstlineno if code else None,
            "file": code.co_filename if code else None}


def _specialize(jit: Any, args: tuple, kwargs: dict) -> tuple[dict | None, dict | None, str | None]:
    """Triton's own signature/attrs for sm_90 (None where this Triton's internals differ)."""
    try:
        from triton.backends.compiler import GPUTarget
        from triton.compiler.compiler import make_backend
        from triton.runtime.jit import create_function_from_signature

        backend = make_backend(GPUTarget("cuda", 90, 32))
        binder = create_function_from_signature(jit.signature, jit.params, backend)
        _bound, spec, _opts = binder(*args, **kwargs)
        names = [p.name for p in jit.params]
        signature = {n: s[0] for n, s in zip(names, spec)}
        attrs: dict[str, Any] = {}
        for n, s in zip(names, spec):
            if s[0] != "constexpr" and len(s) > 1 and isinstance(s[1], str) and s[1]:
                attrs[n] = [list(a) for a in backend.parse_attr(s[1])]
        return signature, attrs, None
    except Exception as e:  # noqa: BLE001
        return None, None, f"{type(e).__name__}: {e}"


def _jit_run(self, *args, grid, warmup, **kwargs):
    import torch

    if warmup:
        return
    sig = self.signature
    names = list(sig.parameters)
    options = {k: v for k, v in kwargs.items() if k not in sig.parameters}
    call_kwargs = {k: v for k, v in kwargs.items() if k in sig.parameters}
    ba = sig.bind(*args, **call_kwargs)
    ba.apply_defaults()
    values = dict(ba.arguments)
    constexpr_names = [p.name for p in self.params if p.is_constexpr]
    passed = set(names[: len(args)]) | set(call_kwargs)
    grid_val = grid(dict(values, **options)) if callable(grid) else grid
    rec_args: dict[str, Any] = {}
    for n in names:
        v = values[n]
        if n in constexpr_names:
            continue
        if isinstance(v, torch.Tensor):
            STATE.keep.append(v)
            rec_args[n] = STATE.factory.describe(v, n)
        else:
            rec_args[n] = {"kind": "scalar", "value": _jsonable(v),
                           "type": type(v).__name__ if v is not None else "None"}
    signature, attrs, spec_err = _specialize(self, args, kwargs)
    rec = {
        "site": _launch_site(),
        "fn": _fn_identity(self),
        "grid": [int(g) for g in grid_val],
        "grid_callable": callable(grid),
        "params": names,
        "constexpr_names": constexpr_names,
        "constexprs": {n: _jsonable(values[n]) for n in constexpr_names},
        "constexpr_defaulted": sorted(n for n in constexpr_names if n not in passed),
        "args": rec_args,
        "options": {k: _jsonable(v) for k, v in sorted(options.items())},
        "signature": signature,
        "attrs": attrs,
        "specialize_error": spec_err,
        "autotune": STATE.autotune_stack[-1] if STATE.autotune_stack else None,
        "heuristics": sorted({h for hs in STATE.heuristics_stack for h in hs}),
    }
    STATE.launches.append(rec)
    return


def _launch_site() -> dict[str, Any] | None:
    """The innermost caller frame inside the vLLM tree: the wrapper's launch statement."""
    root = STATE.tree_root
    frame: FrameType | None = sys._getframe(2)
    while frame is not None:
        f = os.path.abspath(frame.f_code.co_filename)
        if root and f.startswith(root + os.sep):
            return {"file": os.path.relpath(f, root), "line": frame.f_lineno,
                    "function": frame.f_code.co_name}
        frame = frame.f_back
    return None


def _autotuner_run(self, *args, **kwargs):
    self.nargs = dict(zip(self.arg_names, args))
    pruned = list(self.configs)
    note = None
    if len(self.configs) > 1:
        try:
            pruned = list(self.prune_configs(kwargs))
        except Exception as e:  # noqa: BLE001  (perf models may need a GPU)
            note = f"prune_configs failed ({type(e).__name__}: {e}); first declared config used"
            if self.early_config_prune:
                try:
                    pruned = list(self.early_config_prune(self.configs, self.nargs, **kwargs))
                except Exception:  # noqa: BLE001
                    pruned = list(self.configs)
    config = pruned[0]
    self.best_config = config
    info = {"config": {k: _jsonable(v) for k, v in sorted(config.all_kwargs().items())},
            "num_configs": len(self.configs), "num_pruned": len(pruned), "note": note,
            "pre_hook": getattr(config, "pre_hook", None) is not None,
            "reset_to_zero": list(getattr(self, "reset_to_zero", None) or []),
            "restore_value": list(getattr(self, "restore_value", None) or [])}
    STATE.autotune_stack.append(info)
    try:
        return self.fn.run(*args, **kwargs, **config.all_kwargs())
    finally:
        STATE.autotune_stack.pop()
        self.nargs = None


def install_capture() -> None:
    from triton.runtime import autotuner, jit

    jit.JITFunction.run = _jit_run
    autotuner.Autotuner.run = _autotuner_run
    real_heur = autotuner.Heuristics.run

    def heur_run(self, *args, **kwargs):
        STATE.heuristics_stack.append(list(self.values))
        try:
            return real_heur(self, *args, **kwargs)
        finally:
            STATE.heuristics_stack.pop()

    autotuner.Heuristics.run = heur_run


__all__ = ["STATE", "install_capture"]
