"""The recording stand-ins a variant asks for (``MODEL@deep-gemm=recorded,flash-mla=recorded,tilelang=recorded``).

Each is a library vLLM's CUDA wheel or its CUDA requirements give an H100 install, that the worker lacks:
DeepGEMM (:mod:`vkc.modeltrace.recorded_deep_gemm`), FlashMLA (:mod:`vkc.modeltrace.recorded_flashmla`),
TileLang (:mod:`vkc.modeltrace.recorded_tilelang`), the CuTe DSL (:mod:`vkc.modeltrace.recorded_cute_dsl`).  Only a trace whose id names one installs it, first
thing in the worker (before vLLM probes for it), so vLLM takes the paths it takes on an H100 with it, and
every call is an ``external`` event; a trace without the option is untouched (its cache key too: the
modules join a trace's key only when it asks for them).
"""
from __future__ import annotations

import importlib
from typing import Any

__all__ = ["RECORDED", "RECORDED_USES", "install_recorded"]

# variant key -> (worker module, its installer)
RECORDED: dict[str, tuple[str, str]] = {
    "deep-gemm": ("vkc.modeltrace.recorded_deep_gemm", "install_recorded_deep_gemm"),
    "flash-mla": ("vkc.modeltrace.recorded_flashmla", "install_recorded_flashmla"),
    "tilelang": ("vkc.modeltrace.recorded_tilelang", "install_recorded_tilelang"),
    "cute-dsl": ("vkc.modeltrace.recorded_cute_dsl", "install_recorded_cute_dsl"),
}

# worker modules a stand-in uses beyond its own (they join the trace key with it): the CuTe DSL's kernels take
# make_ptr(dtype, t.data_ptr()), so it installs the meta tensors' distinct fake addresses (the LoRA module's)
RECORDED_USES: dict[str, tuple[str, ...]] = {"cute-dsl": ("vkc.modeltrace.lora",)}


def install_recorded(names: list[str] | tuple[str, ...], profile: dict[str, Any]) -> list[str]:
    """Install the stand-ins of ``names`` (keys of :data:`RECORDED`); returns the packages installed."""
    out: list[str] = []
    for name in sorted(names):
        module, fn = RECORDED[name]
        install = getattr(importlib.import_module(module), fn)
        out += install(int(profile["multi_processor_count"])) if name == "deep-gemm" else install()
    return out
