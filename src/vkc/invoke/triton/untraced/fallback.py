"""The untraced path's entry: a kernel without a workload recipe gets a synthesised launch.

The generic path (:mod:`.generic`) types every parameter from the kernel body and the launch
site, so the FULL launch carries a complete Triton signature for ``vkc verify --compile``.
When the entry's signature cannot be read at all, a name-only guess is used (pointer-like
names become flat tensors, the grid is (1,)).  The header of the generated script says
untraced and quotes the launch site verbatim (``# from file:line``).
"""
from __future__ import annotations

import ast
import math
from typing import Any

from vkc.invoke.common import budget_bytes
from vkc.invoke.triton.plan import (
    RANDN,
    Arg,
    Buffer,
    LaunchConfig,
    Scalar,
    TritonPlan,
    flat_view,
)
from vkc.invoke.triton.recipes.base import model_dtype
from vkc.invoke.triton.untraced.generic import generic_plan
from vkc.records import Extraction, ModelConfig, SourceTree

FULL_NUMEL = 1 << 22
SMALL_NUMEL = 1 << 12
_INT_HINTS = ("stride", "size", "len", "num", "dim", "count", "offset", "block", "width", "rows", "cols")


def _signature(source: str, entry: str) -> list[tuple[str, str, Any, bool]]:
    """(name, annotation text, default or None, has_default) for the entry function."""
    tree = ast.parse(source)
    target = entry.split(".")[-1]
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef) and node.name == target:
            a = node.args
            params = a.posonlyargs + a.args
            defaults = [None] * (len(params) - len(a.defaults)) + list(a.defaults)
            out = []
            for p, d in zip(params, defaults):
                ann = ast.unparse(p.annotation) if p.annotation is not None else ""
                val, has = None, False
                if d is not None:
                    try:
                        val, has = ast.literal_eval(d), True
                    except ValueError:
                        val, has = None, False
                out.append((p.arg, ann, val, has))
            return out
    return []


def _pow2(n: int) -> int:
    return 1 << max(0, int(n) - 1).bit_length()


def _int_guess(name: str, model: ModelConfig, small: bool) -> int:
    n = name.lower()
    if "stride" in n:
        return 1
    table = [("head_size", model.head_dim), ("head_dim", model.head_dim), ("kv_head", model.num_key_value_heads),
             ("num_kv", model.num_key_value_heads), ("head", model.num_attention_heads), ("hidden", model.hidden_size),
             ("expert", model.num_experts), ("topk", model.num_experts_per_tok), ("vocab", model.vocab_size)]
    for key, val in table:
        if key in n and val:
            return int(min(val, 1024)) if small else int(val)
    return 16 if small else 256


def _constexpr_guess(name: str, model: ModelConfig, small: bool) -> Any:
    n = name.upper()
    if n.startswith(("USE_", "IS_", "HAS_", "ENABLE_", "EVEN_")) or n in ("CAUSAL",):
        return False
    if "HEAD" in n or "DMODEL" in n:
        return _pow2(model.head_dim or 64)
    if "BLOCK" in n or "TILE" in n:
        return 16 if small else 64
    return _int_guess(name, model, small)


def _config(params: list[tuple[str, str, Any, bool]], model: ModelConfig, small: bool) -> LaunchConfig:
    dtype = "float16" if small else model_dtype({"dtype": model.dtype})
    numel = SMALL_NUMEL if small else FULL_NUMEL
    buffers: list[Buffer] = []
    args: list[Arg] = []
    constexprs: dict[str, Any] = {}
    for name, ann, default, has_default in params:
        if "constexpr" in ann:
            constexprs[name] = default if has_default else _constexpr_guess(name, model, small)
            continue
        low = name.lower()
        if has_default and not isinstance(default, str):
            args.append(Scalar(name, default))
        elif "eps" in low or ann in ("float", "tl.float32"):
            args.append(Scalar(name, 1e-6 if "eps" in low else 1.0))
        elif ann.startswith("tl.int") or ann == "int" or (
                not low.endswith("ptr") and any(h in low for h in _INT_HINTS)) or name in ("M", "N", "K"):
            args.append(Scalar(name, _int_guess(name, model, small)))
        else:
            buffers.append(Buffer(name, (numel,), dtype, RANDN))
            args.append(flat_view(name, numel, dtype))
    live = sum(math.prod(b.shape) * (4 if b.dtype == "float32" else 2) for b in buffers)
    return LaunchConfig(grid=(1,), num_warps=4, num_stages=3, options={}, constexprs=constexprs,
                        buffers=tuple(sorted(buffers, key=lambda b: b.name)), args=tuple(args), live_bytes=int(live),
                        flops=None, bytes=float(live), shapes={"numel_per_pointer": numel, "dtype": dtype})


def untraced_plan(extraction: Extraction, model: ModelConfig, entry: str, notes: list[str],
                  tree: SourceTree | None = None) -> TritonPlan:
    """The untraced plan: the generic launch, else a name-only guess."""
    dtype = model_dtype({"dtype": model.dtype})
    try:
        got = generic_plan(tree, extraction, model, entry, dtype, budget_bytes(), notes)
    except SyntaxError:
        got = None
    if got is not None:
        notes.append("UNTRACED generic launch: grid, sizes and values synthesised from the kernel signature and launch "
                     "site; contents are best-effort, check the launch site quoted below before timing anything")
        return got
    params = _signature(extraction.source_code, entry)
    if not params:
        notes.append(f"entry {entry} not found in source_code; the example launches a kernel with no arguments")
    notes.append("UNTRACED: grid (1,) and guessed sizes; check the launch site quoted below before timing anything")
    return TritonPlan(full=_config(params, model, False), small=_config(params, model, True), path="guess")


__all__ = ["untraced_plan"]
