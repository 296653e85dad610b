"""A recording FlashMLA for the traces that ask for it (``MODEL@flash-mla=recorded``; runs only inside the worker).

vLLM 0.33.0's CUDA wheel builds FlashMLA (``cmake/external_projects/flashmla.cmake``: vllm-project/FlashMLA at
e2afa5f) into ``vllm._flashmla_C`` / ``vllm._flashmla_extension_C`` and copies its Python interface to
``vllm.third_party.flashmla.flash_mla_interface``; ``vllm/v1/attention/ops/flashmla.py`` imports both when the
extensions import.  The DeepSeek-V4 family's attention (``models/deepseek_v4/nvidia/flashmla.py``, the sparse SWA
metadata builder) calls it on an H100 with no alternative.  The worker has none of it, so the option installs
this stand-in *before* vLLM imports ``ops/flashmla.py``; vLLM's own support checks (SM 9.0 family) then decide
as on an H100.  Without the option nothing of it exists.

What it answers (FlashMLA's ``flash_mla/flash_mla_interface.py`` documents each):

* ``get_mla_metadata()``: a fresh empty :class:`FlashMLASchedMeta` and None ("Returns an empty instance of
  FlashMLASchedMeta"), no event (a host call);
* ``flash_mla_with_kvcache``: one recorded ``external`` event; returns ``(out, softmax_lse)``: ``out=`` as given
  (vLLM's fork takes it) else a meta ``(batch, seq_len_q, num_heads_q, head_dim_v)`` tensor of q's dtype, lse a
  meta ``(batch, num_heads_q, seq_len_q)`` fp32 tensor;
* ``flash_mla_sparse_fwd``: one event; ``(output [s_q, h_q, d_v] bf16 or out=, max_logits [s_q, h_q] fp32,
  lse [s_q, h_q] fp32)``;
* ``flash_attn_varlen_func``: one event; ``(out [total_q, h_q, v's head dim] or out=, lse [total_q, h_q] fp32)``;
  the packed variants record and return None (a caller that needs them fails loudly).
"""
from __future__ import annotations

import dataclasses
import sys
from typing import Any

__all__ = ["INTERFACE", "FlashMLASchedMeta", "install_recorded_flashmla"]

INTERFACE = "vllm.third_party.flashmla.flash_mla_interface"
EXTENSIONS = ("vllm._flashmla_C", "vllm._flashmla_extension_C")


@dataclasses.dataclass
class FlashMLASchedMeta:
    """FlashMLA's tile scheduler metadata holder (its fields, as the interface declares them)."""

    have_initialized: bool = False
    config: Any = None
    tile_scheduler_metadata: Any = None
    num_splits: Any = None


def _meta(shape: tuple[int, ...], dtype: Any) -> Any:
    import torch

    return torch.empty(tuple(int(s) for s in shape), dtype=dtype, device="meta")


def _record(name: str, args: tuple[Any, ...], kwargs: dict[str, Any], result: Any) -> None:
    from vkc.modeltrace.recording_packages import record_call

    record_call(f"flash_mla.{name}", args, {k: v for k, v in kwargs.items()
                                            if not isinstance(v, FlashMLASchedMeta)}, result)


def get_mla_metadata(*args: Any, **kwargs: Any) -> tuple[FlashMLASchedMeta, None]:
    return FlashMLASchedMeta(), None


def flash_mla_with_kvcache(q: Any, k_cache: Any, *args: Any, out: Any = None, **kwargs: Any) -> tuple[Any, Any]:
    import torch

    head_dim_v = kwargs.get("head_dim_v", args[2] if len(args) > 2 else 512)
    b, s_q, h_q = q.shape[0], q.shape[1], q.shape[2]
    o = out if out is not None else _meta((b, s_q, h_q, head_dim_v), q.dtype)
    lse = _meta((b, h_q, s_q), torch.float32)
    _record("flash_mla_with_kvcache", (q, k_cache, *args), {**kwargs, "out": o}, lse)
    return o, lse


def flash_mla_sparse_fwd(q: Any, kv: Any, indices: Any, *args: Any, out: Any = None, **kwargs: Any) -> tuple[Any, ...]:
    import torch

    d_v = kwargs.get("d_v", args[1] if len(args) > 1 else 512)
    o = out if out is not None else _meta((q.shape[0], q.shape[1], d_v), torch.bfloat16)
    max_logits, lse = _meta((q.shape[0], q.shape[1]), torch.float32), _meta((q.shape[0], q.shape[1]), torch.float32)
    _record("flash_mla_sparse_fwd", (q, kv, indices, *args), {**kwargs, "out": o}, None)
    return o, max_logits, lse


def flash_attn_varlen_func(q: Any, k: Any, v: Any, *args: Any, out: Any = None, **kwargs: Any) -> tuple[Any, Any]:
    import torch

    o = out if out is not None else _meta((q.shape[0], q.shape[1], v.shape[-1]), q.dtype)
    lse = _meta((q.shape[0], q.shape[1]), torch.float32)
    _record("flash_attn_varlen_func", (q, k, v, *args), {**kwargs, "out": o}, lse)
    return o, lse


def _recorded(name: str) -> Any:
    def call(*args: Any, **kwargs: Any) -> None:
        _record(name, args, kwargs, None)
    call.__name__ = name
    return call


def install_recorded_flashmla() -> list[str]:
    """Put the FlashMLA extensions (import-only) and the recording interface in ``sys.modules`` (before vLLM
    imports ``vllm/v1/attention/ops/flashmla.py``; no parent package is imported here)."""
    import importlib.machinery
    import types

    if INTERFACE in sys.modules:
        return []
    for name in EXTENSIONS:
        ext = types.ModuleType(name, "vkc: import-only stand-in of a FlashMLA extension (vkc.modeltrace.recorded_flashmla)")
        ext.__spec__ = importlib.machinery.ModuleSpec(name, None)
        sys.modules[name] = ext
    mod = types.ModuleType(INTERFACE, "vkc's recording stand-in for FlashMLA (vkc.modeltrace.recorded_flashmla)")
    mod.__spec__ = importlib.machinery.ModuleSpec(INTERFACE, None)
    for fn in (get_mla_metadata, flash_mla_with_kvcache, flash_mla_sparse_fwd, flash_attn_varlen_func):
        setattr(mod, fn.__name__, fn)
    mod.FlashMLASchedMeta = FlashMLASchedMeta  # type: ignore[attr-defined]
    for name in ("flash_attn_varlen_kvpacked_func", "flash_attn_varlen_qkvpacked_func"):
        setattr(mod, name, _recorded(name))
    sys.modules[INTERFACE] = mod
    return ["flashmla"]
