"""Recording stand-ins for compiled kernels outside vLLM's tree (runs only inside the trace worker).

vLLM's own code picks them (MLA prefill on an H100 runs FlashAttention from ``vllm-flash-attn``;
every MLA prefill backend vLLM has for SM 9.0 is compiled outside ``csrc/``).  The worker has no
such extension, so each entry point here records one ``external`` event with its tensors and
returns meta outputs of the shapes the real function returns; nothing of the kernel is emulated.
The trace result lists every stand-in that ran (``external_stand_ins``), and the table shows the
events as external, like the cuBLAS GEMMs behind ``aten.linear``.
"""
from __future__ import annotations

import sys
from typing import Any

__all__ = ["USED", "install_external_stand_ins", "stand_in_missing_packages"]

USED: set[str] = set()


def _record(name: str, tensors: dict[str, Any], scalars: dict[str, Any], outs: list[Any]) -> None:
    from vkc.modeltrace.recorder import RECORDER, _arg_json

    if not RECORDER.active:
        return
    USED.add(name)
    args = [[k, RECORDER.describe(v)] for k, v in tensors.items() if v is not None]
    args += [[k, _arg_json(v)] for k, v in sorted(scalars.items())]
    idx = RECORDER.add({"kind": "external", "name": name, "args": args})
    for o in outs:
        RECORDER.wrote(o, idx)
    RECORDER.events[idx]["outputs"] = [RECORDER.describe(o) for o in outs]


_SCALARS = ("max_seqlen_q", "max_seqlen_k", "softmax_scale", "causal", "window_size", "softcap",
            "return_softmax_lse", "fa_version", "num_splits")


def flash_attn_varlen_func(q: Any, k: Any, v: Any, max_seqlen_q: Any = None, cu_seqlens_q: Any = None,
                           max_seqlen_k: Any = None, cu_seqlens_k: Any = None, *args: Any,
                           out: Any = None, return_softmax_lse: bool = False, **kw: Any) -> Any:
    """``vllm_flash_attn.flash_attn_varlen_func``: out ``(total_q, H, D_v)``, lse ``(H, total_q)`` fp32."""
    import torch

    o = out if out is not None else torch.empty(*q.shape[:-1], v.shape[-1], dtype=q.dtype, device=q.device)
    outs = [o]
    lse = None
    if return_softmax_lse:
        lse = torch.empty(q.shape[-2], q.shape[0], dtype=torch.float32, device=q.device)
        outs.append(lse)
    scalars = {k_: v_ for k_, v_ in kw.items() if k_ in _SCALARS}
    scalars.update({"max_seqlen_q": max_seqlen_q, "max_seqlen_k": max_seqlen_k,
                    "return_softmax_lse": return_softmax_lse})
    _record("vllm_flash_attn::flash_attn_varlen_func",
            {"q": q, "k": k, "v": v, "cu_seqlens_q": cu_seqlens_q, "cu_seqlens_k": cu_seqlens_k,
             "seqused_k": kw.get("seqused_k"), "block_table": kw.get("block_table"), "out": o, "lse": lse},
            scalars, outs)
    return (o, lse) if return_softmax_lse else o


def install_external_stand_ins() -> None:
    """Replace the raising stubs of ``vllm.vllm_flash_attn`` with the recording stand-ins above
    (before vLLM's attention modules import them by name)."""
    fa = sys.modules.get("vllm.vllm_flash_attn")
    if fa is None:
        return
    fa.flash_attn_varlen_func = flash_attn_varlen_func  # type: ignore[attr-defined]
    fa.get_scheduler_metadata = lambda *a, **k: None  # type: ignore[attr-defined]
    iface = sys.modules.get("vllm.vllm_flash_attn.flash_attn_interface")
    if iface is not None:
        iface.flash_attn_varlen_func = flash_attn_varlen_func  # type: ignore[attr-defined]


class _Placeholder:
    """Any attribute of a stand-in package: a class-like object no traced code path calls."""

    def __init__(self, name: str) -> None:
        self._name = name

    def __getattr__(self, attr: str) -> _Placeholder:
        if attr.startswith("__"):
            raise AttributeError(attr)
        return _Placeholder(f"{self._name}.{attr}")

    def __call__(self, *a: Any, **k: Any) -> Any:
        raise RuntimeError(f"{self._name} is a stand-in in the trace worker (package not installed)")


def _module_getattr(modname: str) -> Any:
    def getattr_(attr: str) -> _Placeholder:
        if attr.startswith("_"):        # __file__, __version__, _private: absent, as for a namespace
            raise AttributeError(attr)
        return _Placeholder(f"{modname}.{attr}")
    return getattr_


def stand_in_missing_packages(names: tuple[str, ...] = ("torchvision",)) -> list[str]:
    """Multimodal model files import image libraries at module level (``gemma3_mm.py`` reaches
    ``torchvision`` through transformers' image processor) although a text step never runs them.
    A package that is not installed gets an import-only stand-in; the result names each one."""
    import importlib.machinery
    import importlib.util
    import types

    made = []
    for name in names:
        if name in sys.modules or importlib.util.find_spec(name) is not None:
            continue
        for sub in (name, f"{name}.transforms", f"{name}.transforms.v2", f"{name}.transforms.v2.functional",
                    f"{name}.transforms.functional", f"{name}.io", f"{name}.ops"):
            mod = types.ModuleType(sub)
            # a spec without a file: transformers' availability check calls it a namespace
            # package, not an install (transformers/utils/import_utils.py: _is_package_available)
            mod.__spec__ = importlib.machinery.ModuleSpec(sub, None, is_package=True)
            mod.__path__ = []  # type: ignore[attr-defined]
            mod.__getattr__ = _module_getattr(sub)  # type: ignore[attr-defined,method-assign]
            mod.__version__ = "0.0.0"  # type: ignore[attr-defined]  # older than any release: no feature gate opens
            sys.modules[sub] = mod
            parent, _, leaf = sub.rpartition(".")
            if parent:
                setattr(sys.modules[parent], leaf, mod)
        made.append(name)
    return made
