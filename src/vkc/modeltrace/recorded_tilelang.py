"""A recording TileLang for the traces that ask for it (``MODEL@tilelang=recorded``; runs only inside the worker).

``tilelang==0.1.12`` is one of vLLM 0.33.0's CUDA requirements (``requirements/cuda.txt``), so an H100 install
has it; vLLM's only TileLang kernels are the DeepSeek-V4 family's manifold hyper-connection ops
(``model_executor/kernels/mhc/tilelang_kernels.py``, through ``vllm/tilelang_utils``), which
``models/deepseek_v4/nvidia/model.py`` calls unconditionally on CUDA.  The worker has no TileLang, so the
option installs this stand-in before vLLM asks ``has_tilelang()`` (an import-spec check).  Without the
option nothing of it exists.

What it does: ``tilelang.jit(...)(fn)`` keeps ``fn`` (its body, TileLang's DSL, never runs: nothing is
compiled); calling the result with the compile-time arguments gives a kernel; calling that kernel records one
``external`` event ``tilelang.<fn>`` (its tensors and scalars) and returns None.  Which tensors a TileLang
kernel writes is in its DSL body, which is not read: the event lists no outputs (vLLM's wrappers allocate
them before the call, so later events see them as allocations).  ``tilelang.PassConfigKey.NAME`` is the
name; ``tilelang.language`` (the DSL, ``T``) answers any attribute with a placeholder that is only touched
inside kernel bodies.
"""
from __future__ import annotations

import sys
from typing import Any

__all__ = ["install_recorded_tilelang"]

MODULES = ("tilelang", "tilelang.language")


class _Kernel:
    def __init__(self, name: str, compile_args: tuple[Any, ...]) -> None:
        self._name = name
        self.compile_args = compile_args

    def __call__(self, *args: Any, **kwargs: Any) -> None:
        from vkc.modeltrace.recording_packages import record_call

        record_call(f"tilelang.{self._name}", args, kwargs, None)


class _Jit:
    """``tilelang.jit``-decorated kernel factory."""

    def __init__(self, fn: Any) -> None:
        self._fn = fn
        self.__name__ = getattr(fn, "__name__", "kernel")
        self.__wrapped__ = fn

    def __call__(self, *args: Any, **kwargs: Any) -> _Kernel:
        return _Kernel(self.__name__, args)

    def compile(self, *args: Any, **kwargs: Any) -> _Kernel:
        return _Kernel(self.__name__, args)


def jit(fn: Any = None, **options: Any) -> Any:
    if fn is not None and callable(fn):
        return _Jit(fn)
    return _Jit


class _Names:
    def __getattr__(self, name: str) -> str:
        if name.startswith("__"):
            raise AttributeError(name)
        return name


class _Placeholder:
    def __init__(self, name: str) -> None:
        self._name = name

    def __getattr__(self, name: str) -> _Placeholder:
        if name.startswith("__"):
            raise AttributeError(name)
        return _Placeholder(f"{self._name}.{name}")

    def __call__(self, *args: Any, **kwargs: Any) -> _Placeholder:
        return self

    def __repr__(self) -> str:
        return f"<recorded {self._name}>"


def _dsl_name(name: str) -> _Placeholder:
    if name.startswith("_"):          # module protocol names (__file__, __path__, ...) stay missing
        raise AttributeError(name)
    return _Placeholder(f"T.{name}")


def install_recorded_tilelang() -> list[str]:
    """Put the stand-in ``tilelang`` and ``tilelang.language`` in ``sys.modules`` (before ``has_tilelang()``)."""
    import importlib.machinery
    import types

    if "tilelang" in sys.modules:
        return []
    top = types.ModuleType("tilelang", "vkc's recording stand-in for TileLang (vkc.modeltrace.recorded_tilelang)")
    top.__spec__ = importlib.machinery.ModuleSpec("tilelang", None, is_package=True)
    top.__path__ = []  # type: ignore[attr-defined]
    top.__version__ = "0.1.12"  # type: ignore[attr-defined]   # requirements/cuda.txt: tilelang==0.1.12
    top.jit = jit  # type: ignore[attr-defined]
    top.PassConfigKey = _Names()  # type: ignore[attr-defined]
    top.JITKernel = _Kernel  # type: ignore[attr-defined]
    lang = types.ModuleType("tilelang.language", "vkc: TileLang's DSL, placeholders only")
    lang.__spec__ = importlib.machinery.ModuleSpec("tilelang.language", None)
    lang.__getattr__ = _dsl_name  # type: ignore[attr-defined,method-assign]
    top.language = lang  # type: ignore[attr-defined]
    sys.modules["tilelang"] = top
    sys.modules["tilelang.language"] = lang
    return ["tilelang"]
