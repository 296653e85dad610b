"""Settle the generic launch's pointer dtypes with Triton's front end.

The generic path (:mod:`.generic`) can only guess pointer element types from the source; the
variants here (most faithful first: as inferred, float data as fp16 / fp32 / fp8, index-like
names re-typed, all pointers int32 / int64 / fp32, descriptor pointers as None, each guessed
False flag set True) are lowered by :func:`vkc.invoke.triton.probe.probe_variants` and the
first one the front end accepts is applied to both configurations.
"""
from __future__ import annotations

import math
import re
from dataclasses import replace
from typing import Any

from vkc.invoke.triton.plan import (
    ZEROS,
    Arg,
    LaunchConfig,
    LaunchInfo,
    Scalar,
    TensorView,
    compile_literal,
)
from vkc.invoke.triton.untraced.guesses import itemsize
from vkc.invoke.triton.untraced.sigtypes import Param
from vkc.records import Extraction

_FLOATS = ("bfloat16", "float16", "float32")
MAX_FLAG_VARIANTS = 8
Variant = tuple[str, dict[str, str], dict[str, Any]]


def _dtype_maps(params: list[Param], base: dict[str, str]) -> list[tuple[str, dict[str, str]]]:
    """Pointer dtype maps to try, most faithful first (duplicates dropped)."""
    name_only = {p.name for p in params if p.kind == "ptr" and p.why == "index-like name"}
    fp32 = {k: ("float32" if v in _FLOATS else v) for k, v in base.items()}
    fp16 = {k: ("float16" if v in _FLOATS else v) for k, v in base.items()}
    out = [("as inferred", base), ("float data as float16", fp16), ("float data as float32", fp32),
           ("float32, index-like names as float32", {k: ("float32" if k in name_only else v) for k, v in fp32.items()}),
           ("index-like names as bfloat16", {k: ("bfloat16" if k in name_only else v) for k, v in base.items()}),
           ("float data as float8_e4m3fn", {k: ("float8_e4m3fn" if v in ("bfloat16", "float16") else v)
                                            for k, v in base.items()}),
           ("all pointers int32", {k: "int32" for k in base}),
           ("all pointers int64", {k: "int64" for k in base}),
           ("all pointers float32", {k: "float32" for k in base})]
    seen, uniq = set(), []
    for label, m in out:
        key = tuple(sorted(m.items()))
        if key not in seen:
            seen.add(key)
            uniq.append((label, m))
    return uniq


def _variants(params: list[Param], base: dict[str, str], flags: list[str]) -> list[Variant]:
    dtype_maps = _dtype_maps(params, base)
    variants: list[Variant] = [(label, m, {}) for label, m in dtype_maps]
    desc = [a for a in base if re.search(r"desc", a, re.IGNORECASE)]
    if desc:
        variants.append((f"{desc} as None", {k: v for k, v in base.items() if k not in desc}, {}))
    fp32 = dict(dtype_maps).get("float data as float32", base)
    for flag in flags[:MAX_FLAG_VARIANTS]:
        for label, m in (("as inferred", base), ("float data as float32", fp32)):
            variants.append((f"{label} with {flag}=True", m, {flag: True}))
    return variants


def _retyped(args: tuple[Arg, ...], dtypes: dict[str, str]) -> tuple[Arg, ...]:
    """Tensor arguments re-typed per ``dtypes``; a tensor not in it is passed as None."""
    return tuple((replace(a, dtype=dtypes[a.param]) if a.param in dtypes else Scalar(a.param, None))
                 if isinstance(a, TensorView) else a for a in args)


def _apply(cfg: LaunchConfig, chosen: dict[str, str], cx: dict[str, Any]) -> LaunchConfig:
    buffers = tuple(replace(b, dtype=chosen[b.name], init=ZEROS if chosen[b.name].startswith(("int", "uint")) else b.init)
                    for b in cfg.buffers if b.name in chosen)
    live = int(sum(math.prod(b.shape) * itemsize(b.dtype) for b in buffers))
    return replace(cfg, args=_retyped(cfg.args, chosen), buffers=buffers, constexprs={**cfg.constexprs, **cx},
                   live_bytes=live, bytes=float(live))


def choose_dtypes(extraction: Extraction, entry: str, params: list[Param], full: LaunchConfig, small: LaunchConfig,
                  flags: list[str], info: LaunchInfo, notes: list[str]) -> tuple[LaunchConfig, LaunchConfig]:
    """Probe the pointer dtype variants with Triton's front end; apply the first accepted one."""
    from vkc.invoke.triton.probe import probe_variants

    base = {a.param: a.dtype for a in full.tensors}
    if not base:
        return full, small
    variants = _variants(params, base, flags)
    specs = []
    for _label, m, cx in variants:
        cfg = replace(full, args=_retyped(full.args, m), constexprs={**full.constexprs, **cx})
        lit = compile_literal(entry, cfg, info)
        specs.append({"signature": lit["signature"], "constexprs": lit["constexprs"]})
    ok, errors = probe_variants(extraction.source_code, "kernel_probe.py", entry, specs, full.num_warps)
    if ok is None:
        notes.append(f"pointer dtypes as inferred; Triton's front end accepted none of {len(variants)} variants "
                     f"(first error: {errors[0] if errors else 'none'})")
        return full, small
    label, chosen, cx = variants[ok]
    if ok:
        notes.append(f"pointer dtypes/flags: {label} (the front end rejected the inferred ones: {errors[0]})")
    return _apply(full, chosen, cx), _apply(small, chosen, cx)


__all__ = ["choose_dtypes"]
