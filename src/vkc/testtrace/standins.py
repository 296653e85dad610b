"""Stand-ins inside the test worker (runs only there): compiled ops, missing packages, ``torch.accelerator``.

* :func:`register_cpu_ops`: vLLM's compiled ops declared from their schemas with CPU kernels that
  do nothing but note the storages they took (:data:`TOUCHED`: their contents are known not to be
  what vLLM's op would leave, so an index buffer among them is refused, never copied);
* :func:`stub_missing`: a stand-in for a third-party package the environment lacks (``anthropic``
  for ``tests/utils.py``), so a test module imports; a test that really uses it fails, with the reason;
* :func:`install_accelerator_patches`: ``torch.accelerator`` answers as for device 0;
* :func:`install_vllm_cpu_dispatch`: vLLM's Python custom ops run on the CPU tensors too.
"""
from __future__ import annotations

import sys
import types
from typing import Any

__all__ = ["SCHEMAS", "STUBS", "TOUCHED", "install_accelerator_patches", "install_vllm_cpu_dispatch", "register_cpu_ops",
           "stub_missing"]

TOUCHED: dict[int, list[str]] = {}     # storage -> compiled ops (not run) that took it as an argument or returned it
SCHEMAS: dict[str, str] = {}           # "ns::name[.overload]" -> the schema text the tree declares


def register_cpu_ops(tree_root: str) -> int:
    """Declare vLLM's compiled op schemas (``csrc/**/torch_bindings.cpp``; the CPU build has no
    ``_C``) with a CPU kernel that does nothing but note which storages it took (:data:`TOUCHED`:
    their contents are not what vLLM's op would leave) and returns ``empty_like`` guesses."""
    import torch

    from vkc.modeltrace.opschema import parse_schemas

    libs: dict[str, Any] = {}
    n = 0
    for ns, schema in parse_schemas(tree_root):
        name = schema.split("(", 1)[0].strip()
        ret = schema.rsplit("->", 1)[1].strip()
        if "Tensor" not in ret and ret not in ("()", ""):
            continue        # capability queries (-> bool/int): left to the fake platform's answers
        if hasattr(getattr(torch.ops, ns), name.split(".", 1)[0]):
            continue
        lib = libs.get(ns) or libs.setdefault(ns, torch.library.Library(ns, "FRAGMENT"))
        try:
            lib.define(schema)
            lib.impl(name, _cpu_op(f"{ns}::{name}", ret), "CPU")
        except RuntimeError:
            continue
        SCHEMAS[f"{ns}::{name}"] = schema
        n += 1
    _LIBS.extend(libs.values())
    return n


_LIBS: list[Any] = []


def _cpu_op(qual: str, ret: str) -> Any:
    def impl(*args: Any, **kwargs: Any) -> Any:
        import torch

        tensors = [a for a in list(args) + list(kwargs.values()) if isinstance(a, torch.Tensor)]
        for lst in [a for a in list(args) + list(kwargs.values()) if isinstance(a, (list, tuple))]:
            tensors += [x for x in lst if isinstance(x, torch.Tensor)]
        for t in tensors:
            TOUCHED.setdefault(int(t.untyped_storage()._cdata), []).append(qual)
        if ret in ("()", ""):
            return None
        count = ret.strip("()").count("Tensor")
        if not tensors or count == 0 or "[]" in ret or ret.strip("()").replace("Tensor", "").strip(", ") != "":
            raise NotImplementedError(f"compiled op {qual} is not available on the CPU (result {ret} not guessable)")
        outs = tuple(torch.empty_like(tensors[0]) for _ in range(count))
        for t in outs:                  # a guessed result: its values are not the op's either
            TOUCHED.setdefault(int(t.untyped_storage()._cdata), []).append(qual)
        return outs[0] if count == 1 and not ret.startswith("(") else outs

    return impl


class _StubFinder:
    """Imports of a stubbed package (one the environment lacks) and its submodules give stand-ins."""

    def __init__(self) -> None:
        self.tops: set[str] = set()

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> Any:
        import importlib.machinery

        if fullname.split(".")[0] not in self.tops:
            return None
        return importlib.machinery.ModuleSpec(fullname, self, is_package=True)   # type: ignore[arg-type]

    def create_module(self, spec: Any) -> Any:
        return _StubModule(spec.name)

    def exec_module(self, module: Any) -> None:
        module.__path__ = []


class _Anything:
    """Every attribute, call, subscript or base class of a stubbed package."""

    def __init__(self, *a: Any, **k: Any) -> None:
        pass

    def __class_getitem__(cls, _item: Any) -> Any:
        return cls

    def __call__(self, *a: Any, **k: Any) -> Any:
        return _Anything()

    def __getattr__(self, name: str) -> Any:
        return _Anything()


class _StubModule(types.ModuleType):
    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return _Anything


STUBS = _StubFinder()
_NEVER_STUB = {"vllm", "tests", "torch", "triton", "pytest", "numpy"}


def stub_missing(e: ModuleNotFoundError) -> str | None:
    """Register a stand-in for the missing top-level package of ``e``; its name, or None when it is
    one the tests need for real (vLLM, torch, ...) or was stubbed already."""
    top = (e.name or "").split(".")[0]
    if not top or top in _NEVER_STUB or top in STUBS.tops:
        return None
    if STUBS not in sys.meta_path:
        sys.meta_path.insert(0, STUBS)   # type: ignore[arg-type]
    STUBS.tops.add(top)
    for name in [m for m in sys.modules if m == top or m.startswith(top + ".")]:
        del sys.modules[name]
    return top


def install_accelerator_patches() -> None:
    """``torch.accelerator`` answers as for device 0 (tests build ``torch.device(type, index)``)."""
    import torch

    acc = getattr(torch, "accelerator", None)
    if acc is None:
        return
    acc.current_device_index = lambda *a, **k: 0
    acc.set_device_index = lambda *a, **k: None
    acc.synchronize = lambda *a, **k: None
    acc.empty_cache = lambda *a, **k: None        # tests and vllm/v1/worker/workspace.py


def install_vllm_cpu_dispatch() -> None:
    """vLLM's own Python custom ops (``direct_register_custom_op``, registered for the fake platform's
    ``CUDA`` key) are registered for ``CPU`` as well: the test's tensors are CPU tensors, and the op's
    body -- vLLM's code, which may launch Triton kernels -- must run as it would on the GPU."""
    import torch

    real = torch.library.Library.impl
    if getattr(real, "_vkc_cpu_dispatch", False):
        return

    def impl(self: Any, op_name: Any, fn: Any, dispatch_key: str = "", *a: Any, **kw: Any) -> Any:
        out = real(self, op_name, fn, dispatch_key, *a, **kw)
        if getattr(self, "ns", None) == "vllm" and dispatch_key == "CUDA" and callable(fn):
            try:
                real(self, op_name, fn, "CPU", *a, **kw)
            except RuntimeError:
                pass
        return out

    impl._vkc_cpu_dispatch = True  # type: ignore[attr-defined]
    torch.library.Library.impl = impl  # type: ignore[method-assign]
