"""Trace worker: run a recipe's real vLLM wrapper on meta tensors and capture its launches.

Usage: ``python -m vkc.invoke.triton.trace_worker < request.json > response.json``
(run by :mod:`vkc.invoke.triton.tracer` with ``CUDA_VISIBLE_DEVICES=""``, which keeps real
Triton inside ``vllm.triton_utils``).  Request::

    {"tree_root": "...", "profile": {...H100_PROFILE...},
     "jobs": [{"id": "FULL", "recipe": "attention", "kernel": "module:qualname",
               "kernel_line": 46, "shapes": {...}, "platform": "h100"|"generic"}]}

Response: ``{"ok": true, "versions": {...}, "jobs": [{"id", "ok", "error", "launches",
"selected", "buffers", ...}]}``.  Nothing is launched: ``JITFunction.run`` and
``Autotuner.run`` are replaced by recorders; ``Heuristics.run`` stays real.
vLLM's own logging goes to stderr; the JSON is the only thing written to stdout.
"""
from __future__ import annotations

import importlib
import json
import math
import os
import sys
import traceback
import types
from typing import Any

# --------------------------------------------------------------------------- platform


def install_fake_h100(profile: dict[str, Any]) -> None:
    """Make torch.cuda queries and vLLM's current_platform answer like an H100."""
    import torch

    _register_capability_ops()
    _stub_gpu_only_modules()
    props = types.SimpleNamespace(**{k: v for k, v in profile.items() if k != "free_memory"})
    props.gcnArchName = ""
    props.is_integrated = False
    props.uuid = "GPU-00000000-0000-0000-0000-000000000000"
    torch.cuda.get_device_properties = lambda device=None: props
    torch.cuda.get_device_capability = lambda device=None: (profile["major"], profile["minor"])
    torch.cuda.get_device_name = lambda device=None: profile["name"]
    torch.cuda.device_count = lambda: 1
    torch.cuda.current_device = lambda: 0
    torch.cuda.mem_get_info = lambda device=None: (profile["free_memory"], profile["total_memory"])
    try:
        import vllm._C_stable_libtorch  # noqa: F401
    except ImportError:
        sys.modules["vllm._C_stable_libtorch"] = types.ModuleType("vllm._C_stable_libtorch")
    import vllm.platforms as platforms
    from vllm.platforms.cuda import NonNvmlCudaPlatform

    platforms._current_platform = NonNvmlCudaPlatform()


_CAPABILITY_OPS = ("cutlass_scaled_mm_supports_fp8", "cutlass_scaled_mm_supports_block_fp8",
                   "cutlass_scaled_mm_supports_fp4", "cutlass_group_gemm_supported")
_LIBS: list[Any] = []


def _register_capability_ops() -> None:
    """vLLM's compiled ``_C`` answers these at import (fp8_utils); answer as an SM 9.0 build does."""
    import torch

    need = [n for n in _CAPABILITY_OPS if not hasattr(torch.ops._C, n)]
    if not need:
        return
    lib = torch.library.Library("_C", "FRAGMENT")
    _LIBS.append(lib)
    for n in need:
        lib.define(f"{n}(int cap) -> bool")
        lib.impl(n, (lambda cap, _n=n: cap >= 90 and "fp4" not in _n), "CompositeExplicitAutograd")


def _stub_gpu_only_modules() -> None:
    """``vllm.vllm_flash_attn`` is a compiled GPU extension the fused_moe import chain touches."""
    if "vllm.vllm_flash_attn" in sys.modules:
        return
    fa = types.ModuleType("vllm.vllm_flash_attn")

    def _unavailable(*a, **k):
        raise RuntimeError("vllm_flash_attn is not available in the trace worker")

    for n in ("compile_flash_attn_varlen_func_from_specs", "flash_attn_varlen_func",
              "get_scheduler_metadata", "flash_attn_with_kvcache"):
        setattr(fa, n, _unavailable)
    fa.get_flash_attn_version = lambda *a, **k: None
    fa.is_fa_version_supported = lambda *a, **k: False
    fa.fa_version_unsupported_reason = lambda *a, **k: "not built in the trace worker"
    sys.modules["vllm.vllm_flash_attn"] = fa


def install_generic() -> None:
    import vllm.platforms as platforms
    from vllm.platforms.interface import UnspecifiedPlatform

    platforms._current_platform = UnspecifiedPlatform()


# --------------------------------------------------------------------------- capture


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
    except Exception:  # pragma: no cover
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
        return None
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
    return None


def _launch_site() -> dict[str, Any] | None:
    """The innermost caller frame inside the vLLM tree: the wrapper's launch statement."""
    root = STATE.tree_root
    frame = sys._getframe(2)
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


# --------------------------------------------------------------------------- tensors


class TensorFactoryImpl:
    """``T`` of the recipe interface: meta base tensors with init specs."""

    device = "meta"

    def __init__(self) -> None:
        self.bases: dict[str, dict[str, Any]] = {}     # name -> {shape, dtype, init, origin}
        self.by_storage: dict[int, str] = {}
        self.tensors: dict[str, Any] = {}

    def dtype(self, name: str):
        import torch

        if name in ("fp8", "fp8_e4m3"):
            from vllm.platforms import current_platform
            return current_platform.fp8_dtype()
        return getattr(torch, name.replace("torch.", ""))

    def tensor(self, name: str, shape, dtype, init: Any = "randn"):
        import torch

        from vkc.invoke.triton.recipes.base import normalize_init

        if not name.isidentifier() or name in self.bases:
            raise ValueError(f"tensor name {name!r} is not a fresh identifier")
        dt = self.dtype(dtype) if isinstance(dtype, str) else dtype
        shape = [int(s) for s in shape]
        t = torch.empty(shape, dtype=dt, device="meta")
        self.bases[name] = {"shape": shape, "dtype": _dtype_name(dt), "init": list(normalize_init(init)),
                            "origin": "recipe", "itemsize": t.element_size()}
        self.by_storage[t.untyped_storage()._cdata] = name
        self.tensors[name] = t
        return t

    def describe(self, t, param: str) -> dict[str, Any]:
        key = t.untyped_storage()._cdata
        name = self.by_storage.get(key)
        if name is None:   # allocated by the wrapper: a zero-filled flat buffer of the storage size
            nbytes = t.untyped_storage().nbytes()
            item = t.element_size()
            dt = _dtype_name(t.dtype) if nbytes % item == 0 else "uint8"
            item = item if dt != "uint8" else 1
            name = _fresh(f"w_{param.removesuffix('_ptr')}", self.bases)
            self.bases[name] = {"shape": [nbytes // item], "dtype": dt, "init": ["zeros"],
                                "origin": "wrapper", "itemsize": item}
            self.by_storage[key] = name
            self.tensors[name] = t
        return {"kind": "tensor", "base": name, "shape": list(t.shape), "stride": list(t.stride()),
                "offset": int(t.storage_offset()), "dtype": _dtype_name(t.dtype),
                "itemsize": t.element_size(), "device": t.device.type}


def _fresh(name: str, taken: dict) -> str:
    if name not in taken:
        return name
    i = 2
    while f"{name}_{i}" in taken:
        i += 1
    return f"{name}_{i}"


def _dtype_name(dt) -> str:
    return str(dt).replace("torch.", "")


# --------------------------------------------------------------------------- jobs


def _matches(fn: dict[str, Any], kernel: str, line: int | None) -> bool:
    module, _, qualname = kernel.partition(":")
    if fn["module"] == module and fn["qualname"] == qualname:
        return True
    # a kernel defined in a module that was executed under another name (rare)
    return bool(line) and fn["line"] == line and fn["qualname"] == qualname


def run_job(job: dict[str, Any], getter) -> dict[str, Any]:
    from vkc.invoke.triton.recipes import get_recipe_module

    STATE.launches = []
    STATE.keep = []
    STATE.factory = TensorFactoryImpl()
    out: dict[str, Any] = {"id": job["id"], "ok": False, "error": None, "launches": [], "selected": []}
    recipe = None
    try:
        recipe = get_recipe_module(job["recipe"])
        recipe.call(getter, dict(job["shapes"], kernel=job["kernel"]), STATE.factory)
    except Exception as e:  # noqa: BLE001
        out["error"] = f"{type(e).__name__}: {e}"
        out["error_class"] = type(e).__name__
        out["error_message"] = str(e)
        out["traceback"] = traceback.format_exc(limit=8)
    out["launches"] = STATE.launches
    matched = [i for i, rec in enumerate(STATE.launches) if _matches(rec["fn"], job["kernel"], job.get("kernel_line"))]
    if matched and recipe is not None and hasattr(recipe, "select"):
        picked = recipe.select([STATE.launches[i] for i in matched], job["kernel"])
        matched = [matched[int(k)] for k in picked]
    out["selected"] = matched
    used = {a["base"] for i in matched for a in STATE.launches[i]["args"].values() if a.get("kind") == "tensor"}
    out["buffers"] = {n: b for n, b in STATE.factory.bases.items() if n in used}
    out["ok"] = bool(matched) and out["error"] is None
    if out["error"] is None and not matched:
        seen = sorted({f"{r['fn']['module']}:{r['fn']['qualname']}" for r in STATE.launches})
        out["error"] = f"the wrapper made {len(STATE.launches)} launch(es), none of {job['kernel']} (saw: {seen})"
    return out


def main() -> int:
    req = json.load(sys.stdin)
    real_stdout = sys.stdout
    sys.stdout = sys.stderr          # vLLM may print; keep stdout for the JSON
    os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
    os.environ.setdefault("VLLM_LOGGING_LEVEL", "WARNING")
    sys.path.insert(0, req["tree_root"])
    STATE.tree_root = os.path.abspath(req["tree_root"])
    resp: dict[str, Any] = {"ok": False, "jobs": [], "error": None}
    try:
        import torch
        import triton

        resp["versions"] = {"torch": torch.__version__, "triton": triton.__version__,
                            "python": sys.version.split()[0]}
        platforms = {j.get("platform", "h100") for j in req["jobs"]}
        if platforms == {"generic"}:
            install_generic()
        else:
            install_fake_h100(req["profile"])
        install_capture()
        getter = importlib.import_module
        for job in req["jobs"]:
            resp["jobs"].append(run_job(job, getter))
        resp["ok"] = True
    except Exception as e:  # noqa: BLE001
        resp["error"] = f"{type(e).__name__}: {e}"
        resp["traceback"] = traceback.format_exc(limit=10)
    real_stdout.write(json.dumps(resp, sort_keys=True))
    real_stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
