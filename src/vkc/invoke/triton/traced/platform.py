"""The trace worker's fake H100: torch.cuda queries and vLLM's current_platform answer like one.

Runs only inside the trace worker (:mod:`.worker`) and the fidelity worker; no GPU is needed.
"""
from __future__ import annotations

import sys
import types
from typing import Any


def install_fake_h100(profile: dict[str, Any]) -> None:
    """Make torch.cuda queries and vLLM's current_platform answer like an H100."""
    import torch

    _register_capability_ops()
    _stub_gpu_only_modules()
    props = types.SimpleNamespace(**{k: v for k, v in profile.items() if k != "free_memory"})
    props.gcnArchName = ""
    props.is_integrated = False
    props.uuid = "GPU-00000000-0000-0000-0000-000000000000"
    torch.cuda.get_device_properties = lambda device=None: props  # type: ignore[assignment,return-value]
    torch.cuda.get_device_capability = lambda device=None: (profile["major"], profile["minor"])
    torch.cuda.get_device_name = lambda device=None: profile["name"]
    torch.cuda.device_count = lambda: 1
    torch.cuda.current_device = lambda: 0
    torch.cuda.mem_get_info = lambda device=None: (profile["free_memory"], profile["total_memory"])
    from vkc.modeltrace.release_stubs import install_release_stubs

    install_release_stubs()     # the compiled extensions vllm/platforms/cuda.py imports; per-release deps
    from vllm import platforms
    from vllm.platforms.cuda import NonNvmlCudaPlatform

    platforms._current_platform = NonNvmlCudaPlatform()


_CAPABILITY_OPS = ("cutlass_scaled_mm_supports_fp8", "cutlass_scaled_mm_supports_block_fp8",
                   "cutlass_scaled_mm_supports_fp4", "cutlass_group_gemm_supported")
# build queries without tensor arguments (no dispatch key reaches a Meta kernel): what a CUDA 12 build
# answers -- csrc/moe/moe_permute_unpermute_op.cu: moe_permute_unpermute_supported() is CUDA_VERSION >= 12000
_BUILD_QUERIES = {("_moe_C", "moe_permute_unpermute_supported"): True}
_LIBS: list[Any] = []


def _register_capability_ops() -> None:
    """vLLM's compiled ``_C`` answers these at import (fp8_utils); answer as an SM 9.0 build does."""
    import torch

    need = [n for n in _CAPABILITY_OPS if not hasattr(torch.ops._C, n)]
    if need:
        lib = torch.library.Library("_C", "FRAGMENT")
        _LIBS.append(lib)
        for n in need:
            lib.define(f"{n}(int cap) -> bool")
            lib.impl(n, (lambda cap, _n=n: cap >= 90 and "fp4" not in _n), "CompositeExplicitAutograd")
    for (ns, n), answer in sorted(_BUILD_QUERIES.items()):
        if hasattr(getattr(torch.ops, ns), n):
            continue
        q = torch.library.Library(ns, "FRAGMENT")
        _LIBS.append(q)
        q.define(f"{n}() -> bool")
        q.impl(n, (lambda _a=answer: _a), "CompositeExplicitAutograd")


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
    fa.get_flash_attn_version = lambda *a, **k: None  # type: ignore[attr-defined]
    fa.is_fa_version_supported = lambda *a, **k: False  # type: ignore[attr-defined]
    fa.fa_version_unsupported_reason = lambda *a, **k: "not built in the trace worker"  # type: ignore[attr-defined]
    # the submodule some model files import by name (vllm/models/dots3_note/nvidia/attention.py); same stubs
    iface = types.ModuleType("vllm.vllm_flash_attn.flash_attn_interface")
    for n in dir(fa):
        if not n.startswith("__"):
            setattr(iface, n, getattr(fa, n))
    fa.__path__ = []  # type: ignore[attr-defined]   # a package, so the submodule imports
    fa.flash_attn_interface = iface  # type: ignore[attr-defined]
    sys.modules["vllm.vllm_flash_attn"] = fa
    sys.modules["vllm.vllm_flash_attn.flash_attn_interface"] = iface


def install_generic() -> None:
    from vkc.modeltrace.release_stubs import install_release_stubs

    install_release_stubs()
    from vllm import platforms
    from vllm.platforms.interface import UnspecifiedPlatform

    platforms._current_platform = UnspecifiedPlatform()


__all__ = ["install_fake_h100", "install_generic"]
