"""Worker start-up steps that newer architectures need (runs only inside the worker; imports vLLM).

Checklist steps ``meta-placements``, ``mamba-ssu`` and ``fa-versions`` (:mod:`vkc.modeltrace.checklist`),
called from :mod:`vkc.modeltrace.startup`.  None changes a trace that ran without it: a model that
placed a tensor on ``"cuda"`` by name, or had Mamba1/Mamba2 layers, failed before (CPU-only torch
refuses the placement; vLLM refuses an SSU call without a backend), and ``fa-versions`` runs only
for ``attention_backend="FLASH_ATTN"``, which failed before (no FlashAttention version).
"""
from __future__ import annotations

from typing import Any

__all__ = ["FA_VERSIONS", "WeightLaunches", "enter_meta_placements", "flash_attn_versions", "mamba_ssu_backend",
           "meta_placements"]

# the FlashAttention versions a vllm-flash-attn wheel built for SM 9.0 supports (FA4 is built for SM 10.x)
FA_VERSIONS = (2, 3)

_ACTIVE: list[Any] = []


def _meta(d: Any) -> Any:
    import torch

    if isinstance(d, torch.device) and d.type == "cuda" or isinstance(d, str) and d.split(":")[0] == "cuda":
        return torch.device("meta")
    return d


def meta_placements() -> Any:
    """A mode (enter it) in which a tensor vLLM places on ``current_platform.device_type`` (``"cuda"``)
    by name -- ``device="cuda"``, ``.to("cuda")``, ``.cuda()`` -- goes to the meta device like every
    other (newer model files create buffers so; CPU-only torch would refuse).  A call without a CUDA
    placement is untouched."""
    from torch.overrides import TorchFunctionMode

    class _MetaPlacements(TorchFunctionMode):
        def __torch_function__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
            kwargs = dict(kwargs or {})
            if "device" in kwargs:
                kwargs["device"] = _meta(kwargs["device"])
            name = getattr(func, "__name__", "")
            if name == "cuda" and args:
                return args[0]
            if name == "to":
                args = tuple(_meta(a) for a in args)
            return func(*args, **kwargs)

    return _MetaPlacements()


def enter_meta_placements() -> None:
    """Checklist step ``meta-placements``, for the worker's lifetime."""
    mode = meta_placements()
    mode.__enter__()
    _ACTIVE.append(mode)


def mamba_ssu_backend(vllm_config: Any, kv_cfg: Any) -> None:
    """Checklist step ``mamba-ssu``: ``GPUModelRunner.initialize_kv_cache`` picks the Mamba SSU backend
    (``initialize_mamba_ssu_backend``; a no-op without Mamba1/Mamba2 layers)."""
    try:
        from vllm.model_executor.layers.mamba.ops.ssu_dispatch import initialize_mamba_ssu_backend
    except ImportError:      # vLLM without the SSU dispatch: nothing to pick
        return
    initialize_mamba_ssu_backend(vllm_config.mamba_config, kv_cfg,
                                 use_replayssm=vllm_config.cache_config.use_replayssm)


def flash_attn_versions() -> None:
    """Checklist step ``fa-versions`` (attention backend ``FLASH_ATTN`` only): the stand-in
    ``vllm.vllm_flash_attn`` answers ``is_fa_version_supported`` as its SM 9.0 build does
    (:data:`FA_VERSIONS`), so ``get_flash_attn_version`` picks FA3 as on an H100; the attention call
    itself stays an ``external`` event (:mod:`vkc.modeltrace.external`), the KV-cache write is vLLM's
    ``reshape_and_cache_flash`` op."""
    import sys

    def supported(version: int, device: Any = None) -> bool:
        return version in FA_VERSIONS

    def reason(version: int, device: Any = None) -> str | None:
        return None if version in FA_VERSIONS else f"FA{version} is not built for SM 9.0"

    for name in ("vllm.vllm_flash_attn", "vllm.vllm_flash_attn.flash_attn_interface"):
        mod = sys.modules.get(name)
        if mod is not None:
            mod.is_fa_version_supported = supported  # type: ignore[attr-defined]
            mod.fa_version_unsupported_reason = reason  # type: ignore[attr-defined]


class WeightLaunches:
    """Checklist step ``weights-post``: Triton launches of ``process_weights_after_loading`` (online
    quantization of a weight: vLLM runs them once, at load, not in a serving step) are captured as the
    forward's are, kept by name only (in ``names``), never run (CPU Triton has no driver); a model whose
    weight processing launches nothing is traced exactly as before."""

    def __init__(self, names: list[str]) -> None:
        self.names = names

    def describe(self, t: Any, param: str) -> dict[str, Any]:
        return {"kind": "tensor", "shape": list(t.shape), "dtype": str(t.dtype)}

    def append(self, rec: dict[str, Any]) -> None:
        self.names.append(f"{rec['fn']['module']}:{rec['fn']['qualname']}")

    def __enter__(self) -> Any:
        from vkc.modeltrace.launches import capture_module

        tw = capture_module()
        tw.install_capture()
        self.state, self.saved = tw.STATE, (tw.STATE.factory, tw.STATE.launches)
        tw.STATE.factory, tw.STATE.launches = self, self
        return self

    def __exit__(self, *exc: object) -> None:
        self.state.factory, self.state.launches = self.saved
