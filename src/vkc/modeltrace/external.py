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

__all__ = ["USED", "cute_dsl_stand_in", "install_external_stand_ins", "stand_in_missing_packages"]

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


_CUTE_SCALARS = ("max_seqlen_q", "max_seqlen_k", "softmax_scale", "causal", "window_size", "softcap",
                 "num_splits", "return_lse", "pack_gqa")


def cute_flash_attn_varlen_func(q: Any, k: Any, v: Any, *args: Any, out: Any = None, return_lse: bool = False,
                                **kw: Any) -> Any:
    """``vllm_flash_attn.cute.flash_attn_varlen_func`` (FlashAttention 4, CuTe DSL): ``(out, lse)``,
    out ``(total_q, H, D_v)``, lse ``(H, total_q)`` fp32 when asked for (else None)."""
    import torch

    o = out if out is not None else torch.empty(*q.shape[:-1], v.shape[-1], dtype=q.dtype, device=q.device)
    lse = torch.empty(q.shape[-2], q.shape[0], dtype=torch.float32, device=q.device) if return_lse else None
    aux = kw.get("aux_tensors") or []
    tensors = {"q": q, "k": k, "v": v, "out": o, "lse": lse,
               **{n: kw.get(n) for n in ("cu_seqlens_q", "cu_seqlens_k", "seqused_q", "seqused_k", "page_table")},
               **{f"aux_tensors[{i}]": t for i, t in enumerate(aux)}}
    scalars = {k_: v_ for k_, v_ in kw.items() if k_ in _CUTE_SCALARS}
    scalars.update({"return_lse": return_lse, "score_mod": kw.get("score_mod") is not None})
    _record("vllm_flash_attn.cute::flash_attn_varlen_func", tensors, scalars, [o] + ([lse] if lse is not None else []))
    return o, lse


def _cute_module() -> None:
    """``vllm.vllm_flash_attn.cute`` (the FA4 CuTe package, absent from an sdist): a module with the recording
    ``flash_attn_varlen_func`` only, so ``cute.interface`` / ``cute.utils`` stay unimportable and vLLM's FA4
    availability (a file check) is unchanged."""
    import types

    if "vllm.vllm_flash_attn.cute" in sys.modules:
        return
    mod = types.ModuleType("vllm.vllm_flash_attn.cute")
    mod.flash_attn_varlen_func = cute_flash_attn_varlen_func  # type: ignore[attr-defined]
    sys.modules[mod.__name__] = mod
    # the type a score_mod annotates its argument with (inkling/nvidia/ops/fa4_rel_attention.py)
    info = types.ModuleType("vllm.vllm_flash_attn.cute.seqlen_info")
    info.__getattr__ = _module_getattr(info.__name__)  # type: ignore[attr-defined,method-assign]
    sys.modules[info.__name__] = mod.seqlen_info = info  # type: ignore[attr-defined]


def _identity_jit(fn: Any = None, **_kw: Any) -> Any:
    return fn if fn is not None else (lambda f: f)


def cute_dsl_stand_in() -> list[str]:
    """``cutlass`` / ``cutlass.cute`` (NVIDIA's CuTe DSL, not installed): ``cute.jit`` leaves the function
    as it is (it compiles on a kernel launch, and the one consumer, a ``score_mod`` handed to the FA4
    stand-in above, is recorded, never run); any other attribute is a placeholder that raises when called.
    ``__spec__`` is None, so ``importlib.util.find_spec("cutlass")`` raises and vLLM's ``has_cutedsl()``
    stays False (its CuTe DSL kernel choices are unchanged)."""
    import importlib.util
    import types

    if "cutlass" in sys.modules or importlib.util.find_spec("cutlass") is not None:
        return []
    for name in ("cutlass", "cutlass.cute"):
        mod = types.ModuleType(name)
        mod.__getattr__ = _module_getattr(name)  # type: ignore[attr-defined,method-assign]
        mod.__spec__ = None
        sys.modules[name] = mod
    sys.modules["cutlass.cute"].jit = _identity_jit  # type: ignore[attr-defined]
    sys.modules["cutlass"].cute = sys.modules["cutlass.cute"]  # type: ignore[attr-defined]
    return ["cutlass"]


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
    _cute_module()


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
