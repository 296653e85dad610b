"""Where vkc's single-wrapper launch tracer lives (fake H100 platform, Triton recorders).

The model trace reuses it rather than copying it: from the platform module
``install_fake_h100`` / ``_register_capability_ops``; from the capture module ``install_capture``,
``STATE`` (its ``launches`` list and tensor ``factory`` are swapped for the model recorder's) and
``_jsonable``.  Older layouts kept both in one ``trace_worker`` module.
"""
from __future__ import annotations

import importlib
from types import ModuleType

__all__ = ["capture_module", "platform_module"]

_PLATFORM = ("vkc.invoke.triton.traced.platform", "vkc.invoke.triton.trace_worker")
_CAPTURE = ("vkc.invoke.triton.traced.capture", "vkc.invoke.triton.trace_worker")


def _first(names: tuple[str, ...]) -> ModuleType:
    err: Exception | None = None
    for name in names:
        try:
            return importlib.import_module(name)
        except ModuleNotFoundError as e:
            if e.name != name:
                raise
            err = e
    assert err is not None
    raise err


def platform_module() -> ModuleType:
    return _first(_PLATFORM)


def capture_module() -> ModuleType:
    return _first(_CAPTURE)
