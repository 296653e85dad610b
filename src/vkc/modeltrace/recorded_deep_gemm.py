"""A recording DeepGEMM for the traces that ask for it (``MODEL@deep-gemm=recorded``; runs only inside the worker).

vLLM 0.33.0's CUDA wheel vendors DeepGEMM as ``vllm.third_party.deep_gemm`` (``setup.py``: the
``vllm._deep_gemm_C`` extension; ``cmake/external_projects/deepgemm.cmake``: vllm-project/DeepGEMM at
0820030, "upstream's 2.8.1 plus ..."), and vLLM's recommended setup for the DeepSeek-V3.2 / V4 family runs
on it: ``has_deep_gemm()`` is True on an H100, the sparse attention indexer requires it
(``layers/sparse_attn_indexer.py``: "Sparse Attention Indexer CUDA op requires DeepGEMM"), and vLLM's
own wrapper (``vllm/utils/deep_gemm.py``) picks its kernels by the same capability checks it makes on
an H100.  The worker has no DeepGEMM, so the option installs this stand-in under the vendored name
*before* vLLM asks; then vLLM takes exactly the paths an H100 with the stock wheel takes, and the trace
is what vLLM runs there.  Without the option nothing of it exists (the bundled models keep vLLM's
choices without DeepGEMM).

What it answers:

* the names vLLM 0.33.0 resolves from the package (:data:`NAMES`: ``vllm/utils/deep_gemm.py``
  ``_lazy_init``'s ``getattr(_dg, ...)``, its direct ``dg.`` calls, the MegaMoE entry points of
  ``fused_moe/deep_gemm_mega_moe.py`` and ``per_block_cast_to_fp8`` of Dots3's vision tower); any other
  attribute is missing, as ``getattr(_dg, name, None)`` expects of a package without it;
* a kernel call is one recorded ``external`` event (not a tree kernel: DeepGEMM's kernels are JIT
  compiled from its own headers), with its tensors, scalars and the tensors it writes;
* out-of-place kernels (:data:`RESULTS`) return a new meta tensor of the shape and dtype vLLM's wrapper
  documents for SM 9.0 (fp32 logits off SM100), recorded as the event's output; kernels that write
  caller-owned tensors (:data:`IN_PLACE`) record those arguments as written;
* host queries (:data:`HOST`) are answered without an event: ``get_num_sms`` the H100's 132 SMs
  (``multi_processor_count`` of the worker's H100 profile; DeepGEMM's default is the device's SM count)
  or the value ``set_num_sms`` gave, the setters keep their value, ``get_pdl``/``get_tc_util`` what was set.

Any other call returns None, so a caller that needs a result fails loudly (nothing is emulated).
"""
from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

__all__ = ["HOST", "IN_PLACE", "MODULE", "NAMES", "RESULTS", "install_recorded_deep_gemm"]

MODULE = "vllm.third_party.deep_gemm"

# vllm/utils/deep_gemm.py _lazy_init (getattr(_dg, NAME, None)) and its dg.NAME calls; fused_moe/deep_gemm_mega_moe.py;
# models/dots3_note/nvidia/vision.py (from vllm.third_party.deep_gemm import per_block_cast_to_fp8)
NAMES: tuple[str, ...] = (
    "bf16_mega_gate", "bf16_mega_moe", "cublaslt_gemm_nt", "fp4_fp4_mega_moe", "fp8_einsum", "fp8_fp4_mega_moe",
    "fp8_fp4_mqa_logits", "fp8_fp4_paged_mqa_logits", "fp8_fp4_paged_sparse_mqa_logits", "fp8_fp4_sparse_mqa_logits",
    "fp8_gemm_nt", "fp8_m_grouped_gemm_nt_masked", "get_block_m_for_mega_moe", "get_block_m_for_nvfp4_mega_moe",
    "get_k_grouped_mn_major_tma_aligned_packed_ue8m0_tensor", "get_mk_alignment_for_contiguous_layout",
    "get_mn_major_tma_aligned_packed_ue8m0_tensor", "get_mn_major_tma_aligned_tensor", "get_num_sms",
    "get_paged_mqa_logits_metadata", "get_paged_sparse_mqa_logits_metadata", "get_pdl",
    "get_sparse_mqa_logits_metadata", "get_symm_buffer_for_mega_moe", "get_tc_util",
    "get_theoretical_mk_alignment_for_contiguous_layout", "m_grouped_fp8_fp4_gemm_nt_contiguous",
    "m_grouped_fp8_gemm_nt_contiguous", "m_grouped_fp8_gemm_nt_masked", "mega_mhc", "pack_ue8m0_to_int",
    "per_block_cast_to_fp8", "set_mk_alignment_for_contiguous_layout", "set_num_sms", "set_pdl", "set_tc_util",
    "tf32_hc_prenorm_gemm", "transform_sf_into_required_layout", "transform_weights_for_mega_moe",
)

_STATE: dict[str, Any] = {}


def _meta(shape: tuple[int, ...], dtype: str) -> Any:
    import torch

    return torch.empty(shape, dtype=getattr(torch, dtype), device="meta")


def _mqa_logits(q: Any, kv: Any, weights: Any, ks: Any, ke: Any, max_seqlen_k: int, *a: Any, **k: Any) -> Any:
    """[M, max_seqlen_k] fp32 (vllm/utils/deep_gemm.py fp8_fp4_mqa_logits: "bf16 on SM100, fp32 elsewhere")."""
    return _meta((int(q[0].shape[0]), int(max_seqlen_k)), "float32")


def _paged_mqa_logits(q: Any, kv_cache: Any, weights: Any, context_lens: Any, block_tables: Any, schedule: Any,
                      max_model_len: int, *a: Any, **k: Any) -> Any:
    """[B * next_n, max_model_len] fp32 (fp8_fp4_paged_mqa_logits; q values are [B, next_n, H, D])."""
    return _meta((int(q[0].shape[0]) * int(q[0].shape[1]), int(max_model_len)), "float32")


def _paged_metadata(context_lens: Any, block_size: int, num_slots: int, *a: Any, **k: Any) -> Any:
    """[slots + 1, 2] int32 (get_paged_mqa_logits_metadata: "Tensor of shape [slots + 1, 2]")."""
    return _meta((int(num_slots) + 1, 2), "int32")


# entry point -> its result (a new meta tensor), from the call's arguments
RESULTS: dict[str, Callable[..., Any]] = {
    "fp8_fp4_mqa_logits": _mqa_logits,
    "fp8_fp4_paged_mqa_logits": _paged_mqa_logits,
    "get_paged_mqa_logits_metadata": _paged_metadata,
}
# entry point -> the arguments it writes (vllm/utils/deep_gemm.py: tf32_hc_prenorm_gemm(x, fn, out, sqrsum, ...)
# "out = x.float() @ fn.T; sqrsum = ..."; fp8_gemm_nt((a, sa), (b, sb), d); fp8_einsum(expr, a, b, d, ...))
IN_PLACE: dict[str, tuple[int, ...]] = {"tf32_hc_prenorm_gemm": (2, 3), "fp8_gemm_nt": (2,), "cublaslt_gemm_nt": (2,),
                                        "fp8_einsum": (3,)}


def _setter(key: str) -> Callable[..., None]:
    def set_(value: Any, *a: Any, **k: Any) -> None:
        _STATE[key] = value
    return set_


# host queries and settings: answered, no event
HOST: dict[str, Callable[..., Any]] = {
    "get_num_sms": lambda: int(_STATE["num_sms"]),
    "set_num_sms": _setter("num_sms"),
    "set_pdl": _setter("pdl"),
    "get_pdl": lambda: bool(_STATE.get("pdl", False)),
    "set_tc_util": _setter("tc_util"),
    "get_tc_util": lambda: int(_STATE.get("tc_util", 100)),
}


class _Kernel:
    """One DeepGEMM entry point: a recorded call (see the module docstring)."""

    def __init__(self, name: str) -> None:
        self.__name__ = name
        self.__qualname__ = name

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        from vkc.modeltrace.recording_packages import record_call

        make = RESULTS.get(self.__name__)
        result = make(*args, **kwargs) if make is not None else None
        record_call(f"deep_gemm.{self.__name__}", args, kwargs, result, IN_PLACE.get(self.__name__, ()))
        return result

    def __repr__(self) -> str:
        return f"<recorded deep_gemm.{self.__name__}>"


def install_recorded_deep_gemm(num_sms: int) -> list[str]:
    """Put the recording DeepGEMM in ``sys.modules`` as :data:`MODULE` (before vLLM's ``has_deep_gemm()``
    is first asked; the parent package is not imported here); ``num_sms``: the H100 profile's SM count."""
    import importlib.machinery
    import types

    if MODULE in sys.modules:
        return []
    _STATE.clear()
    _STATE["num_sms"] = int(num_sms)
    mod = types.ModuleType(MODULE, "vkc's recording stand-in for DeepGEMM (vkc.modeltrace.recorded_deep_gemm)")
    mod.__spec__ = importlib.machinery.ModuleSpec(MODULE, None, is_package=True)
    mod.__path__ = []  # type: ignore[attr-defined]
    mod.__version__ = "2.8.1"  # type: ignore[attr-defined]   # deepgemm.cmake: "upstream's ... release (2.8.1)"
    for name in NAMES:
        setattr(mod, name, HOST.get(name) or _Kernel(name))
    sys.modules[MODULE] = mod
    return ["deep_gemm"]
