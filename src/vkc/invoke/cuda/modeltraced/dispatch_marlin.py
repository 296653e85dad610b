"""Dispatch rules for the Marlin GEMMs (``_C::marlin_gemm``, ``_moe_C::moe_wna16_marlin_gemm``).

Each op's host file (csrc/quantization/marlin/marlin.cu, csrc/moe/marlin_moe_wna16/ops.cu, vLLM
0.33.0) launches ``kernel<<<...>>>`` through a function pointer that ``get_marlin_kernel`` sets from
the generated ``kernel_selector.h``: one ``Marlin<...>`` instantiation of the ``marlin_template.h``
next to it, or the ``MarlinDefault`` sentinel (marlin.cu:44 / ops.cu:44) when no instantiation fits.
The sentinel is never launched: ``marlin_mm`` fails ``STD_TORCH_CHECK(false, "Unsupported shapes")``
first (marlin.cu:387, ops.cu:369).  ``marlin_template.h`` defines ``Marlin`` twice: an empty stub
under ``#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ < 750`` and the real kernel in its ``#else``;
the H100's device pass (``__CUDA_ARCH__`` 900) compiles the real one, so the rules answer the label
:data:`MARLIN_DEVICE` that :mod:`.dispatch` resolves to the definition live for SM 9.0.

There is no act-order permute kernel in these host functions (0.33.0): ``g_idx`` / ``perm`` are
gone from both schemas, so every call that passes the checks launches the Marlin kernel only.
"""
from __future__ import annotations

from collections.abc import Callable

from vkc.modeltrace.records import TracedEvent

from .binding import tensor
from .dispatch_args import SM_VERSION, opt_int

__all__ = ["MARLIN_DEVICE", "RULES"]

# a label: the kernel named ``Marlin`` whose definition is live in the SM 9.0 device compile
MARLIN_DEVICE = "Marlin@device"

_16BIT = ("float16", "bfloat16")


def _fp8_activation_fails(a_dtype: str) -> bool:
    """marlin.cu:295-301 / ops.cu:308-314: FP8 activations (W4A8-FP8) need SM 8.9 or SM 12.x."""
    return a_dtype == "float8_e4m3fn" and not (SM_VERSION == 89 or SM_VERSION // 10 == 12)


def _marlin_gemm(ev: TracedEvent) -> set[str] | None:
    """csrc/quantization/marlin/marlin.cu marlin_gemm (line 422): returns ``c`` before any launch for
    ``size_m == 0`` (line 583); FP8 activations fail on SM 9.0 (line 299); otherwise ``marlin_mm``
    (line 241) splits M and launches the selected Marlin instantiation for each part (line 406)."""
    a, size_m = tensor(ev, "a"), opt_int(ev, "size_m")
    if a is None or size_m is None:
        return None
    if size_m == 0:
        return set()
    if _fp8_activation_fails(a.dtype):
        return set()
    return {MARLIN_DEVICE}


def _moe_marlin_gemm(ev: TracedEvent) -> set[str] | None:
    """csrc/moe/marlin_moe_wna16/ops.cu moe_wna16_marlin_gemm (line 392): no early return, but
    ``marlin_mm`` (line 245) checks ``prob_m > 0`` (line 261) before its one launch (line 382); FP8
    activations fail on SM 9.0 (line 312)."""
    a, size_m = tensor(ev, "a"), opt_int(ev, "size_m")
    if a is None or size_m is None:
        return None
    if size_m <= 0 or _fp8_activation_fails(a.dtype):
        return set()
    return {MARLIN_DEVICE}


RULES: dict[str, Callable[[TracedEvent], set[str] | None]] = {
    "_C::marlin_gemm": _marlin_gemm,
    "_moe_C::moe_wna16_marlin_gemm": _moe_marlin_gemm,
}
