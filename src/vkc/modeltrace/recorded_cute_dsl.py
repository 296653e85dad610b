"""A recording CuTe DSL for the traces that ask for it (``MODEL@cute-dsl=recorded``; runs only inside the worker).

``nvidia-cutlass-dsl[cu13]==4.8.0`` and ``quack-kernels==0.6.5`` are vLLM 0.33.0's CUDA requirements
(``requirements/cuda.txt``: "QuACK and Cutlass DSL"), so an H100 install has ``cutlass``, ``cutlass.cute``,
``cuda.bindings`` and ``quack``; the DeepSeek-V3.2 / V4 family imports CuTe DSL kernel modules on CUDA
unconditionally (``models/deepseek_v32/nvidia/ops/fused_q_cutedsl.py``, ``models/deepseek_v4/nvidia/ops/
sparse_attn_compress_cutedsl.py``: "head=512 on CUDA always uses cutedsl").  The worker has none, so the
option installs this stand-in for every module under :data:`PREFIXES` (with FlashAttention-4's CuTe
sources, ``vllm.vllm_flash_attn.cute``) before vLLM probes for them.  It is
never installed without the option: vLLM probes the CuTe DSL by import in many places, and a stand-in
visible to every trace changed other models' choices (``bench/results/reach_map_wide.md``, "Tried and
reverted").

What it does: every name of those packages is a placeholder; a placeholder called with one function or
class (a decorator: ``@cute.jit``, ``@dsl_user_op``) returns it unchanged; ``cute.compile(entry, ...)``
returns an executor named after ``entry``'s class or function, and calling the executor records one
``external`` event ``cute_dsl.<entry>`` and returns None: its tensors (passed as they are, or behind
``from_dlpack(t)`` / ``make_ptr(dtype, t.data_ptr())``: a meta tensor's ``data_ptr()`` is a distinct fake
address, :func:`vkc.modeltrace.lora._distinct_addresses`) and scalars (``Int32(rows)``: its value).  Which
tensors a CuTe kernel writes is in its DSL body, which never runs, so every tensor but a weight counts as
written (a later launch's buffer contents never claim what the kernel may have overwritten).
FlashAttention-4's host entry points (:data:`FA4_ENTRIES`) are events that write ``out``.  Any other
call returns a placeholder that keeps its arguments.  Nothing of a kernel is compiled or emulated.
"""
from __future__ import annotations

import importlib.abc
import re
import sys
from pathlib import Path
from typing import Any

__all__ = ["FA4_ENTRIES", "PREFIXES", "H100Device", "install_host_device", "install_recorded_cute_dsl"]

# the DSL, its CUDA driver bindings, QuACK, and FlashAttention-4's CuTe sources that vLLM's wheel ships with
# vllm_flash_attn (fused_indexer_q_cutedsl.py imports their utils)
PREFIXES = ("cutlass", "cuda", "quack", "vllm.vllm_flash_attn.cute")
# FlashAttention-4's host entry points (flash_attn/cute/interface.py, vendored as vllm.vllm_flash_attn.cute):
# a call is the event ``vllm_flash_attn.cute.<entry>``; it writes ``out`` (else a new tensor like q) and
# returns it, with the log-sum-exp when ``return_lse`` (fp32: [heads, total_q] varlen, [batch, heads, seqlen])
FA4 = "vllm.vllm_flash_attn.cute"
FA4_ENTRIES = ("flash_attn_varlen_func", "flash_attn_func")


class _Executor:
    def __init__(self, name: str) -> None:
        self._name = name

    def __call__(self, *args: Any, **kwargs: Any) -> None:
        from vkc.modeltrace.recording_packages import record_call

        flat, written = _launch_args((*args, *kwargs.values()))
        record_call(f"cute_dsl.{self._name}", tuple(flat), {}, None, in_place=written)


_SCALARS = (bool, int, float)
_NUMERIC = re.compile(r"(?:Int|Uint|Float|BFloat|TFloat)\d+|Boolean")      # the DSL's numeric types (cutlass.Int32)


def _launch_args(values: tuple[Any, ...]) -> tuple[list[Any], tuple[int, ...]]:
    """A compiled kernel's call, as the event's arguments: each tensor it is handed (itself, or behind a
    ``from_dlpack(t)`` / ``make_ptr(dtype, t.data_ptr())``: the meta tensors' distinct fake addresses)
    and each scalar (``Int32(rows)``: its value), in call order; and which of them it may write: every
    tensor but the model's weights (the DSL body, never run, says which; a kernel writes no parameter),
    so a later launch never takes a buffer it wrote for one that still holds its earlier contents."""
    import torch

    from vkc.modeltrace.recorder import RECORDER

    flat: list[Any] = []
    for v in values:
        if isinstance(v, (torch.Tensor, *_SCALARS)) or v is None:
            flat.append(v)
        elif isinstance(v, (_Placeholder, _Instance)):
            inner = vars(v).get("_args", ())
            tensors = _tensors(inner)
            if tensors:
                flat += tensors
            elif len(inner) == 1 and isinstance(inner[0], _SCALARS) and _NUMERIC.match(type(v).__name__):
                flat.append(inner[0])                 # a DSL scalar (Int32(rows), Float32(eps)); not CUstream(0)
    written = tuple(i for i, v in enumerate(flat) if isinstance(v, torch.Tensor)
                    and not str(RECORDER.storages.get(RECORDER._key(v), {}).get("producer", "")).startswith("weight:"))
    return flat, written


def _tensors(inner: tuple[Any, ...], depth: int = 0) -> list[Any]:
    """The tensors a stand-in value was made from (its call's arguments, recursively; fake addresses)."""
    import torch

    out: list[Any] = []
    for a in inner:
        if isinstance(a, torch.Tensor):
            out.append(a)
        elif isinstance(a, int) and not isinstance(a, bool) and (t := _address_of(a)) is not None:
            out.append(t)
        elif isinstance(a, (_Placeholder, _Instance)) and depth < 4:
            out += _tensors(vars(a).get("_args", ()), depth + 1)
    return out


def _fa4(entry: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    import torch

    from vkc.modeltrace.recording_packages import record_call

    q = kwargs["q"] if "q" in kwargs else args[0]
    out = kwargs.get("out")
    out = torch.empty_like(q) if out is None else out
    record_call(f"vllm_flash_attn.cute.{entry}", args, kwargs, out)
    if not kwargs.get("return_lse"):
        return out
    lse_shape = (q.shape[1], q.shape[0]) if entry == "flash_attn_varlen_func" else (q.shape[0], q.shape[2], q.shape[1])
    return out, torch.empty(lse_shape, dtype=torch.float32, device=q.device)


def _address_of(addr: int) -> Any:
    """The meta tensor whose fake ``data_ptr()`` is ``addr`` (None: not one handed out)."""
    from vkc.modeltrace.lora import _STATE

    return _STATE.get("addresses", {}).get(addr)


def _entry_name(entry: Any) -> str:
    if isinstance(entry, _Placeholder):
        return entry._name
    fn = getattr(entry, "__func__", entry)
    if hasattr(fn, "__qualname__") and not isinstance(entry, type) and callable(fn) and hasattr(fn, "__code__"):
        return f"{fn.__module__}:{fn.__qualname__}"
    cls = entry if isinstance(entry, type) else type(entry)
    return f"{cls.__module__}:{cls.__qualname__}"


class _Placeholder:
    """Any name of the stand-in packages (see the module docstring); a call's result keeps the call's
    arguments (``_args``: a compiled kernel's call finds the tensors behind ``make_ptr``/``from_dlpack``)."""

    def __init__(self, name: str, args: tuple[Any, ...] = ()) -> None:
        self._name = name
        self._args = args

    def __getattr__(self, attr: str) -> Any:
        if attr.startswith("__"):
            raise AttributeError(attr)
        return _name(f"{self._name}.{attr}")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if len(args) == 1 and not kwargs and (isinstance(args[0], type) or hasattr(args[0], "__code__")
                                              or hasattr(getattr(args[0], "__func__", None), "__code__")):
            return args[0]                       # a decorator
        if self._name.endswith(".compile") and args:
            return _Executor(_entry_name(args[0]))
        if self._name.rsplit(".", 1)[-1] in FA4_ENTRIES and self._name.startswith(FA4):
            return _fa4(self._name.rsplit(".", 1)[-1], args, kwargs)
        return _Placeholder(f"{self._name}()", (*args, *kwargs.values()))

    def __getitem__(self, key: Any) -> _Placeholder:
        return _Placeholder(f"{self._name}[]")

    def __mro_entries__(self, bases: tuple[Any, ...]) -> tuple[type, ...]:
        return (object,)

    def __iter__(self) -> Any:
        return iter(())

    def __bool__(self) -> bool:
        return True

    def __repr__(self) -> str:
        return f"<recorded {self._name}>"


class _Meta(type):
    def __getattr__(cls, attr: str) -> _Placeholder:
        if attr.startswith("__"):
            raise AttributeError(attr)
        return _Placeholder(f"{cls.__qualname__}.{attr}")

    def __getitem__(cls, key: Any) -> Any:
        return cls


class _Instance(metaclass=_Meta):
    """Base of the stand-in's CamelCase names: real classes (``isinstance`` checks, base classes, dtypes
    called as constructors) whose instances answer any attribute with a placeholder."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.__dict__["_args"] = (*args, *kwargs.values())     # Int32(rows): the scalar it carries

    def __getattr__(self, attr: str) -> _Placeholder:
        if attr.startswith("__"):
            raise AttributeError(attr)
        return _Placeholder(f"{type(self).__qualname__}().{attr}")


_CLASSES: dict[str, type] = {}
# the DSL's constants vLLM's host code computes with (cutlass/cute/arch: WARP_SIZE = 32; the only upper-case
# constant vLLM 0.33.0 reads)
CONSTANTS: dict[str, Any] = {"WARP_SIZE": 32}


def _name(full: str) -> Any:
    """A placeholder for ``full`` (``module.Name``); a CamelCase leaf is a class, one per name."""
    leaf = full.rsplit(".", 1)[-1]
    if leaf in CONSTANTS:
        return CONSTANTS[leaf]
    if leaf[:1].isupper():
        if full not in _CLASSES:
            _CLASSES[full] = _Meta(leaf, (_Instance,), {"__qualname__": full, "__module__": full.rsplit(".", 1)[0]})
        return _CLASSES[full]
    return _Placeholder(full)


class _Finder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Serves every module under :data:`PREFIXES` as a placeholder module."""

    @staticmethod
    def _ours(name: str) -> bool:
        return any(name == p or name.startswith(p + ".") for p in PREFIXES)

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> Any:
        import importlib.machinery

        if not self._ours(name):
            return None
        return importlib.machinery.ModuleSpec(name, self, is_package=True)

    def create_module(self, spec: Any) -> Any:
        return _module(spec.name)

    def exec_module(self, module: Any) -> None:
        return None


def _module(name: str) -> Any:
    import importlib.machinery
    import types

    mod = types.ModuleType(name, "vkc's recording stand-in for the CuTe DSL (vkc.modeltrace.recorded_cute_dsl)")
    mod.__spec__ = importlib.machinery.ModuleSpec(name, _FINDER, is_package=True)
    mod.__path__ = []  # type: ignore[attr-defined]

    def getattr_(attr: str) -> Any:
        if attr.startswith("_") and not attr.startswith("_mlir"):
            raise AttributeError(attr)
        return _name(f"{name}.{attr}")
    mod.__getattr__ = getattr_  # type: ignore[attr-defined,method-assign]
    return mod


_FINDER = _Finder()

# vLLM code that imports the DSL (anywhere in its file) is a CuTe kernel's host code
_DSL_IMPORT = re.compile(r"^[ \t]*(?:import|from)[ \t]+(?:cutlass|quack|cuda\.bindings|vllm\.vllm_flash_attn\.cute)\b", re.M)
_HOST: dict[str, bool] = {}          # module name -> does its source import the DSL


def _dsl_host(frame: Any) -> bool:
    """Whether ``frame`` (the code that asked) is vLLM code that imports the CuTe DSL."""
    name = str(frame.f_globals.get("__name__", "")) if frame is not None else ""
    if name not in _HOST:
        path = frame.f_globals.get("__file__") if frame is not None else None
        try:
            text = Path(path).read_text(encoding="utf-8") if path and name.startswith("vllm") else ""
        except OSError:
            text = ""
        _HOST[name] = bool(_DSL_IMPORT.search(text))
    return _HOST[name]


class H100Device(str):
    """The device a CuTe kernel's host code sees for a meta tensor: its ``type`` is ``"cuda"`` and its index
    0, as the H100's tensor it stands for; to torch it is the string ``"meta"``, so a tensor placed on it
    (``torch.empty(..., device=hidden_states.device)``, also inside a custom op's body, where no torch
    function mode runs) is a meta tensor like every other."""

    type = "cuda"
    index = 0  # type: ignore[assignment]   # torch.device.index (str.index is shadowed: never called on it)

    def __repr__(self) -> str:
        return "device(type='cuda', index=0)"


def install_host_device() -> None:
    """``Tensor.device`` of a meta tensor is :class:`H100Device` to a CuTe kernel's host code (vLLM modules
    that import the DSL, :func:`_dsl_host`; asked there directly): those tensors stand for the H100's
    (``is_cuda`` is True everywhere, checklist ``meta-placements``), and the host wrappers check the device
    type before they launch (``_ll_router_common.validate_common_gemm_inputs``: "must have device_type=cuda").
    Any other code (torch's, vkc's, the rest of vLLM) sees the meta device."""
    import torch

    real = torch._C.TensorBase.device
    if isinstance(vars(torch.Tensor).get("device"), property):
        return
    h100 = H100Device("meta")

    def device(self: Any) -> Any:
        d = real.__get__(self)
        return h100 if d.type == "meta" and _dsl_host(sys._getframe(1)) else d

    torch.Tensor.device = property(device)  # type: ignore[method-assign,assignment]


def install_recorded_cute_dsl() -> list[str]:
    """Serve the CuTe DSL packages from the stand-in (a meta path finder, first; before vLLM probes)."""
    from vkc.modeltrace import lora

    if _FINDER in sys.meta_path:
        return []
    sys.meta_path.insert(0, _FINDER)
    if "addresses" not in lora._STATE:      # a kernel takes make_ptr(dtype, t.data_ptr()): which tensor is it
        lora._distinct_addresses()
    install_host_device()
    return ["cutlass-dsl", "quack", "cuda-python"]
