"""Recording stand-ins for whole packages that are not installed (runs only inside the trace worker).

Newer model files import a compiled kernel library at module level or when a layer is built
(``flashinfer``: Step5's sparse attention adapter, Flint, MiniMax-M3).  The worker has none, so
:func:`install_recording_packages` puts a stand-in package in its place: every attribute is a
:class:`Recorded` name; calling one records one ``external`` event (its tensors and scalars, the
``out=`` tensor as written) and

* a ``CamelCase`` name (a class: a planner, a wrapper) returns an instance whose method calls are
  recorded the same way;
* a name of :data:`RESULTS` (the library's documented out-of-place entry points) returns a new meta
  tensor shaped like the argument it names, recorded as the event's output; its in-place ones
  (:data:`IN_PLACE`) record the arguments they write;
* any other name (a kernel entry point) returns None: kernels of these libraries write their
  results into tensors they are given; a caller that needs a returned tensor fails loudly on the
  None (nothing of the kernel is emulated, nothing is swallowed).

Availability checks keep the truth: vLLM's ``has_flashinfer()`` is asked (and caches its False)
before the stand-in exists, so vLLM chooses no FlashInfer path it would not choose without the
package; only code that imports the package unconditionally reaches the stand-in.  The trace
result lists the packages (``stand_ins``) and every recorded call is an event.
"""
from __future__ import annotations

import sys
from typing import Any

__all__ = ["IN_PLACE", "PACKAGES", "RESULTS", "Recorded", "install_recording_packages", "record_call"]

# package -> (its submodules model files import by name, the vLLM availability check to cache first)
PACKAGES: dict[str, tuple[tuple[str, ...], str]] = {
    "flashinfer": (("attn_scores", "comm", "decode", "prefill", "sparse", "sampling", "fused_moe", "gemm",
                    "norm", "rope", "activation", "page", "mla", "utils", "jit"),
                   "vllm.utils.flashinfer:has_flashinfer"),
}

# entry point -> the argument its result is shaped like (flashinfer/norm.py: ``out = torch.empty_like(input)``)
RESULTS: dict[str, int] = {"flashinfer.norm.rmsnorm": 0, "flashinfer.norm.gemma_rmsnorm": 0}
# entry point -> the arguments it writes in place (flashinfer/norm.py: "input and residual are updated in place")
IN_PLACE: dict[str, tuple[int, ...]] = {"flashinfer.norm.fused_add_rmsnorm": (0, 1),
                                        "flashinfer.norm.gemma_fused_add_rmsnorm": (0, 1)}


def _record(name: str, args: tuple[Any, ...], kwargs: dict[str, Any], result: Any = None) -> None:
    record_call(name, args, kwargs, result, IN_PLACE.get(name, ()))


def record_call(name: str, args: tuple[Any, ...], kwargs: dict[str, Any], result: Any = None,
                in_place: tuple[int, ...] = ()) -> None:
    """Record one call of a stand-in package's entry point as an ``external`` event (while the recorder
    is active): its tensors (tuples of tensors element by element) and scalars; written: the ``out=`` /
    ``output=`` tensor, the arguments of ``in_place`` and a returned tensor."""
    import torch

    from vkc.modeltrace.external import USED
    from vkc.modeltrace.recorder import RECORDER, _arg_json

    if not RECORDER.active:
        return
    USED.add(name)
    items = [(f"arg{i}", v) for i, v in enumerate(args)] + sorted(kwargs.items())
    ev_args = []
    for k, v in items:
        if isinstance(v, torch.Tensor):
            ev_args.append([k, RECORDER.describe(v)])
        elif isinstance(v, (tuple, list)) and v and all(isinstance(t, torch.Tensor) for t in v):
            ev_args += [[f"{k}[{i}]", RECORDER.describe(t)] for i, t in enumerate(v)]
        elif not isinstance(v, Recorded):
            ev_args.append([k, _arg_json(v)])
    idx = RECORDER.add({"kind": "external", "name": name, "args": ev_args})
    outs = [v for k, v in sorted(kwargs.items()) if k in ("out", "output") and isinstance(v, torch.Tensor)]
    outs += [args[i] for i in in_place if i < len(args) and isinstance(args[i], torch.Tensor)]
    outs += [result] if isinstance(result, torch.Tensor) else []
    outs = list({id(o): o for o in outs}.values())
    for o in outs:
        RECORDER.wrote(o, idx)
    RECORDER.events[idx]["outputs"] = [RECORDER.describe(o) for o in outs]


class Recorded:
    """A name of a recording stand-in package (see the module docstring)."""

    def __init__(self, name: str, instance: bool = False) -> None:
        self._name = name
        self._instance = instance

    def __getattr__(self, attr: str) -> Recorded:
        if attr.startswith("__"):
            raise AttributeError(attr)
        return Recorded(f"{self._name}.{attr}")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        import torch

        like = RESULTS.get(self._name)
        out = kwargs.get("out")
        result = None
        if like is not None and like < len(args):
            result = out if isinstance(out, torch.Tensor) else torch.empty_like(args[like], device="meta")
        _record(self._name, args, kwargs, result)
        if result is not None:
            return result
        leaf = self._name.rsplit(".", 1)[-1]
        if not self._instance and leaf[:1].isupper():
            return Recorded(f"{self._name}()", instance=True)
        return None

    def __repr__(self) -> str:
        return f"<recording stand-in {self._name}>"


def _getattr(modname: str) -> Any:
    def getattr_(attr: str) -> Recorded:
        if attr.startswith("_"):
            raise AttributeError(attr)
        return Recorded(f"{modname}.{attr}")
    return getattr_


def install_recording_packages(names: tuple[str, ...] = tuple(PACKAGES)) -> list[str]:
    """Install the stand-ins for the packages of ``names`` that are not installed (after vLLM's
    availability check has cached its answer); returns the ones installed."""
    import importlib
    import importlib.machinery
    import importlib.util
    import types

    made = []
    for name in names:
        if name in sys.modules or importlib.util.find_spec(name) is not None:
            continue
        subs, check = PACKAGES[name]
        mod_name, _, fn = check.partition(":")
        getattr(importlib.import_module(mod_name), fn)()       # cached: False, the package is absent
        for sub in (name, *(f"{name}.{s}" for s in subs)):
            mod = types.ModuleType(sub)
            mod.__spec__ = importlib.machinery.ModuleSpec(sub, None, is_package=True)
            mod.__path__ = []  # type: ignore[attr-defined]
            mod.__getattr__ = _getattr(sub)  # type: ignore[attr-defined,method-assign]
            mod.__version__ = "0.0.0"  # type: ignore[attr-defined]
            sys.modules[sub] = mod
            parent, _, leaf = sub.rpartition(".")
            if parent:
                setattr(sys.modules[parent], leaf, mod)
        made.append(name)
    return made
