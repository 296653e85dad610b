"""Worker start-up steps that newer architectures need (runs only inside the worker; imports vLLM).

Checklist steps ``meta-placements``, ``mamba-ssu`` and ``fa-versions`` (:mod:`vkc.modeltrace.checklist`),
called from :mod:`vkc.modeltrace.startup`.  None changes a trace that ran without it: a model that
placed a tensor on ``"cuda"`` by name, or had Mamba1/Mamba2 layers, failed before (CPU-only torch
refuses the placement; vLLM refuses an SSU call without a backend), and ``fa-versions`` runs only
for ``attention_backend="FLASH_ATTN"``, which failed before (no FlashAttention version).
"""
from __future__ import annotations

from typing import Any

__all__ = ["FA_VERSIONS", "WeightLaunches", "customized_spec", "enter_meta_placements", "flash_attn_versions", "mamba_ssu_backend",
           "meta_placements", "placements_again", "update_block_size"]

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
    other (newer model files create buffers so; CPU-only torch would refuse).  Pinned host memory
    (``.pin_memory()``, ``pin_memory=True``: CPU-only torch refuses it too) is plain host memory, the same
    values (Step5's DSA metadata uploads).  ``Tensor.is_cuda`` of a meta tensor is True: it stands for a
    tensor on the H100 (a host tensor stays False).  A call without any of these is untouched."""
    import torch
    from torch.overrides import TorchFunctionMode

    is_cuda = getattr(torch.Tensor.is_cuda, "__get__")  # noqa: B009 -- the property's getter (mypy types it bool)

    class _MetaPlacements(TorchFunctionMode):
        def __torch_function__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
            if func == is_cuda and args and args[0].device.type == "meta":
                return True     # a meta tensor stands for the H100's tensor (vLLM asserts ``state.is_cuda``)
            kwargs = dict(kwargs or {})
            if "device" in kwargs:
                kwargs["device"] = _meta(kwargs["device"])
            if kwargs.get("pin_memory"):        # page-locked host memory: none without a GPU; same values
                kwargs["pin_memory"] = False
            name = getattr(func, "__name__", "")
            if name in ("cuda", "pin_memory") and args:
                return args[0]
            if name == "to":
                args = tuple(_meta(a) for a in args)
            return func(*args, **kwargs)

    return _MetaPlacements()


def keep_tensor_values() -> None:
    """``torch.tensor(data, device=...)`` builds its device tensor below the dispatcher (no copy the recorder
    sees, and inside a ``torch.ops.vllm.*`` body no function mode either): ``torch.tensor`` wrapped so that a meta
    integer result gets the values of the same call on the CPU, kept as a host copy's (an integer table of
    constants, e.g. vllm/v1/attention/ops/ultraquant/triton_store.py:79 ``torch.tensor(SORTED_TO_BITS,
    device=device)``); data the CPU cannot take (meta tensors inside a list) is left unknown.  Once per process."""
    import torch

    orig = torch.tensor
    if getattr(orig, "_vkc_host_values", False):
        return

    def tensor(data: Any, *args: Any, **kwargs: Any) -> Any:
        out = orig(data, *args, **kwargs)
        if isinstance(out, torch.Tensor) and out.device.type == "meta" and not out.is_floating_point() \
                and not isinstance(data, torch.Tensor):
            try:
                host = orig(data, *args, **{**kwargs, "device": "cpu"})
            except (RuntimeError, TypeError, ValueError, NotImplementedError):
                return out
            from vkc.modeltrace.recorder import RECORDER

            RECORDER.host_copy(out, host)
        return out

    # torch's default-device mode (``with torch.device("meta")``: vLLM builds the model so) recognises factory
    # functions by identity from a set it computes once (torch.utils._device._device_constructors); computed after
    # the wrap it would hold the wrapper, not the builtin the wrapper calls, and torch.tensor(data) would land
    # on the CPU (composed:fp8-static's scales: set_data fails in device_loading_context).  Compute it first.
    try:
        from torch.utils._device import _device_constructors

        _device_constructors()
    except (ImportError, AttributeError):
        pass
    tensor._vkc_host_values = True      # type: ignore[attr-defined]
    torch.tensor = tensor               # type: ignore[assignment]


def placements_again() -> Any:
    """The ``meta-placements`` mode once more (a fresh one, when the step entered one), for the Python body
    of a ``torch.ops.vllm`` op that the recorder runs: torch runs a mode's handler with the mode popped, so
    the body of an op called through it ran without it (DeepSeek-V4.1's sparse_attn_indexer asserts
    ``logits.is_cuda`` in select_candidate_blocks, model_executor/kernels/attention/dsa/candidate_blocks.py:171)."""
    import contextlib

    return meta_placements() if _ACTIVE else contextlib.nullcontext()


def enter_meta_placements() -> None:
    """Checklist step ``meta-placements``, for the worker's lifetime (with :func:`keep_tensor_values`)."""
    from vkc.modeltrace.recorder import BODY_CONTEXTS

    keep_tensor_values()
    mode = meta_placements()
    mode.__enter__()
    _ACTIVE.append(mode)
    if placements_again not in BODY_CONTEXTS:
        BODY_CONTEXTS.append(placements_again)


def mamba_ssu_backend(vllm_config: Any, kv_cfg: Any) -> None:
    """Checklist step ``mamba-ssu``: ``GPUModelRunner.initialize_kv_cache`` picks the Mamba SSU backend
    (``initialize_mamba_ssu_backend``; a no-op without Mamba1/Mamba2 layers)."""
    try:
        from vllm.model_executor.layers.mamba.ops.ssu_dispatch import initialize_mamba_ssu_backend
    except ImportError:      # vLLM without the SSU dispatch: nothing to pick
        return
    initialize_mamba_ssu_backend(vllm_config.mamba_config, kv_cfg,
                                 use_replayssm=vllm_config.cache_config.use_replayssm)


def customized_spec(layer: Any, spec: Any) -> Any:
    """Checklist step ``kv-spec``: ``GPUModelRunner.get_kv_cache_spec`` passes every layer's ``AttentionSpec``
    through ``customize_attention_spec(layer.get_attn_backend(), spec)`` (the backend's own packing and block
    stride alignment: Step5's DSA pages); a release without that function takes the layer's spec as it is."""
    try:
        from vllm.v1.kv_cache_interface import AttentionSpec
        from vllm.v1.worker.utils import customize_attention_spec
    except ImportError:
        return spec
    return customize_attention_spec(layer.get_attn_backend(), spec) if isinstance(spec, AttentionSpec) else spec


def update_block_size(vllm_config: Any) -> dict[str, Any]:
    """Checklist step ``block-size``: ``UniProcExecutor._init_executor`` (and the multiprocess worker) call
    ``current_platform.update_block_size_for_backend(vllm_config)`` right after ``load_model``: the KV-cache
    block size every attention backend of the built model supports (unless ``--block-size`` was given), then
    the hybrid attention/Mamba page alignment and the mixed-KV-dtype alignment (which may override it).
    Returns what it chose: ``{"block_size", "before", "user_specified", "how"}`` (``how``: why it is not
    vLLM's default 16, or ``""``)."""
    from vllm.platforms import current_platform

    cc = vllm_config.cache_config
    before = int(cc.block_size)
    user = bool(getattr(cc, "user_specified_block_size", False))
    update = getattr(current_platform, "update_block_size_for_backend", None)
    if update is None:       # older releases choose it in check_and_update_config (inside create_engine_config)
        how = "" if before == 16 else "chosen by the platform's check_and_update_config"
        return {"block_size": before, "before": before, "user_specified": user, "how": how}
    update(vllm_config)
    after = int(cc.block_size)
    phases = ([] if user else ["the attention backends' block sizes"]) \
        + (["the hybrid attention/Mamba page alignment"] if vllm_config.model_config.is_hybrid else []) \
        + (["the mixed KV-dtype page alignment"] if getattr(cc, "kv_cache_dtype_skip_layers", None) else [])
    how = "" if after == before == 16 and not user else (
        f"Platform.update_block_size_for_backend ({', '.join(phases) or 'no phase'}): {before} -> {after}"
        + (" (--block-size given)" if user else ""))
    return {"block_size": after, "before": before, "user_specified": user, "how": how}


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
