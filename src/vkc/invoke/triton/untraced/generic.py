"""Generic (untraced) launch of a Triton kernel: inputs synthesised from its signature.

Used for kernels without a workload recipe.  Parameter kinds come from the kernel body
(:mod:`.sigtypes`): pointers become flat tensors (bf16 data, int32 for index-like buffers, fp32
scales; index buffers filled from a range their use derives, :mod:`.indexinit`), integer scalars take
model-dim guesses from their names, floats 1.0 (eps 1e-6).  Constexprs come, in order, from the
launch site's literal/evaluable arguments (:mod:`.launchsite`), the signature default, the first
autotune config, the ``@triton.heuristics`` lambdas, then name and usage heuristics (powers of
two for block shapes).  The grid is the launch site's grid expression evaluated with those
values when possible, else ``(cdiv(N, BLOCK),)`` or ``(1,)``.  Pointer dtypes are then settled
by Triton's front end (:mod:`.variants`).
"""
from __future__ import annotations

import ast
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from vkc.invoke.triton.plan import (
    Arg,
    Buffer,
    LaunchConfig,
    LaunchInfo,
    Scalar,
    Site,
    TensorView,
    TritonPlan,
    fill_for,
    flat_view,
)
from vkc.invoke.triton.untraced.constexprs import (
    Constraints,
    apply_rules,
    default_value,
    is_value,
    read_constraints,
)
from vkc.invoke.triton.untraced.decorators import decorators as _decorators
from vkc.invoke.triton.untraced.decorators import eval_heuristic as _eval_heuristic
from vkc.invoke.triton.untraced.guesses import (
    cx_guess,
    dim_guess,
    itemsize,
    pow2,
    scalar_int,
)
from vkc.invoke.triton.untraced.indexinit import index_inits
from vkc.invoke.triton.untraced.launchsite import (
    Env,
    Launch,
    Unknown,
    arg_kind,
    read_launch,
)
from vkc.invoke.triton.untraced.sigtypes import Param, analyze
from vkc.invoke.triton.untraced.variants import choose_dtypes
from vkc.records import Extraction, ModelConfig, SourceTree

FULL_MAX_NUMEL = 1 << 24
SMALL_NUMEL = 1 << 14
POW2_MAX = 4096
GUESSED_POW2_MAX = 256   # block shapes from guessed sizes: bigger tiles only make huge compiles
GUESSED_UNROLL_MAX = 4   # guessed tl.static_range trip counts (each iteration is unrolled)


@dataclass
class _Kernel:
    """What the generic path reads once per kernel (shared by FULL and SMALL)."""

    params: list[Param]
    fact_defaults: dict[str, Any]
    autotune: dict[str, Any]
    heur: dict[str, str]
    launch: Launch | None
    cons: Constraints | None


@dataclass
class _Draft:
    """One configuration while it is being synthesised."""

    env: Env
    constexprs: dict[str, Any] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)
    args: list[Arg] = field(default_factory=list)
    buffers: dict[str, Buffer] = field(default_factory=dict)


def _launch_for(tree: SourceTree | None, extraction: Extraction, names: list[str],
                guess: Callable[[str], Any]) -> Launch | None:
    kernel = extraction.kernel
    if tree is None:
        return None
    for site in kernel.launch_sites:
        if site.form != "grid":
            continue
        lau = read_launch(tree, site, kernel.name, names, guess)
        if lau is not None:
            return lau
    return None


def generic_plan(tree: SourceTree | None, extraction: Extraction, model: ModelConfig, entry: str, dtype: str,
                 budget: int, notes: list[str]) -> TritonPlan | None:
    """The generic launch plan, or None when the entry has no parsable signature."""
    params = analyze(extraction.source_code, entry)
    if not params:
        return None
    fact_defaults = {}
    for fp in extraction.facts.get("params", []) or []:
        if isinstance(fp, dict) and fp.get("default") is not None:
            v = default_value(fp["default"])
            if is_value(v):
                fact_defaults[fp["name"]] = v
    autotune, heur = _decorators(extraction.source_code, entry)
    names = [p.name for p in params]
    launch = _launch_for(tree, extraction, names, lambda n: dim_guess(n, model, False))
    k = _Kernel(params, fact_defaults, autotune, heur, launch, read_constraints(extraction.source_code, entry))
    full, grid_src, flags = _one_config(k, model, dtype, False, budget, notes)
    small, _src, _flags = _one_config(k, model, dtype, True, budget, [])
    site = launch.site if launch else (extraction.kernel.launch_sites[0] if extraction.kernel.launch_sites else None)
    where = f"{site.file}:{site.line}" if site else "no launch site"
    mode = f"generic (untraced): inputs synthesised from the kernel signature; grid from {where} ({grid_src})"
    info = LaunchInfo(params=tuple(names), mode=mode,
                      site=Site(site.file, site.line, site.wrapper or "?") if site else None)
    full, small = choose_dtypes(extraction, entry, params, full, small, flags, info, notes)
    full = index_inits(extraction.source_code, entry, params, full, model.num_experts, notes)
    small = index_inits(extraction.source_code, entry, params, small, model.num_experts)
    return TritonPlan(full=full, small=small, path="generic", launch=info)


def _one_config(k: _Kernel, model: ModelConfig, dtype: str, small: bool, budget: int,
                notes: list[str]) -> tuple[LaunchConfig, str, list[str]]:
    """(configuration, where its grid came from, constexpr flags guessed False)."""
    launch = k.launch
    env = launch.env if launch else Env()
    if launch:
        env.values = {}
        env.guess = lambda n: dim_guess(n, model, small)
    d = _Draft(env)
    n_ptr = sum(1 for p in k.params if p.kind == "ptr" or (launch and arg_kind(launch, p.name) == "tensor"
                                                            and p.kind != "constexpr"))
    numel = SMALL_NUMEL if small else max(1 << 16, min(FULL_MAX_NUMEL, pow2(budget // max(1, n_ptr) // 4) // 2))
    for p in k.params:                                     # 1. constexprs
        if p.kind == "constexpr":
            _constexpr(d, k, p, model, small)
    for p in k.params:                                     # 2. runtime arguments
        if p.kind != "constexpr":
            _runtime_arg(d, k, p, model, dtype, small, numel)
    _heuristics(d, k, model, small)                        # 3. heuristics on the synthesised arguments
    if k.cons is not None:                                 # 4. the kernel's compile-time rules
        d.constexprs, d.args, d.buffers = apply_rules(d.constexprs, d.sources, d.args, d.buffers, k.cons,
                                                      notes if not small else [])
        env.values.update(d.constexprs)
    num_warps, num_stages = _options(k, env)               # 5. launch options and grid
    grid, grid_src = _grid(launch, env, d.constexprs, d.args)
    flags = [n for n, s in d.sources.items() if s.startswith("guess") and d.constexprs[n] is False]
    if not small:
        guessed = sorted(n for n, s in d.sources.items() if s.startswith("guess"))
        if guessed:
            notes.append(f"constexprs guessed from names/usage: {guessed}")
    live = sum(math.prod(b.shape) * itemsize(b.dtype) for b in d.buffers.values())
    cfg = LaunchConfig(grid=grid, num_warps=int(num_warps), num_stages=int(num_stages), options={},
                       constexprs=d.constexprs, buffers=tuple(d.buffers[n] for n in sorted(d.buffers)),
                       args=tuple(d.args), live_bytes=int(live), flops=None, bytes=float(live),
                       shapes={"numel_per_pointer": numel, "dtype": dtype})
    return cfg, grid_src, flags


def _constexpr(d: _Draft, k: _Kernel, p: Param, model: ModelConfig, small: bool) -> None:
    launch, env = k.launch, d.env
    val, src = None, None
    if launch and p.name in launch.args:
        env.used_guess = False
        try:
            val, src = env.eval(launch.args[p.name]), "launch site"
            if env.used_guess:
                src = "launch site (from guessed sizes)"
        except Unknown:
            val = None
        if isinstance(val, ast.Lambda):
            val = None
    if src is None or val is None and not isinstance(launch.args.get(p.name) if launch else None, ast.Constant):
        val, src = _fallback_value(k, p, model, small)
    if isinstance(val, str) and (p.flag or p.pow2) and not p.compared:
        val, src = cx_guess(p, model, small), "guess (launch value unusable)"
    if p.pow2 and isinstance(val, int) and not isinstance(val, bool):
        guessed = src.startswith("guess") or "guessed" in src
        fixed = min(pow2(val), GUESSED_POW2_MAX if guessed else POW2_MAX)
        if fixed != val:
            val, src = fixed, src + (" (rounded to a power of two)" if fixed >= val else " (capped)")
    if p.unroll and isinstance(val, int) and not isinstance(val, bool) and val > GUESSED_UNROLL_MAX and (
            src.startswith("guess") or "guessed" in src):
        val, src = GUESSED_UNROLL_MAX, src + " (unrolled trip count capped)"
    if isinstance(val, str) and p.compared and val not in p.compared and src == "guess":
        val = p.compared[0]
    d.constexprs[p.name], d.sources[p.name] = val, src
    if src != "heuristics":
        env.values[p.name] = val
        if src.startswith("guess") or "guessed" in src:
            env.tainted.add(p.name)   # what derives from it (BK = next_power_of_2(K)) is guessed too


def _fallback_value(k: _Kernel, p: Param, model: ModelConfig, small: bool) -> tuple[Any, str]:
    """A constexpr's value when the launch site does not give one: default, autotune, heuristics, guess."""
    if p.name in k.fact_defaults:
        return k.fact_defaults[p.name], "default"
    if p.has_default:
        return p.default, "default"
    if p.name in k.autotune.get("kwargs", {}):
        return k.autotune["kwargs"][p.name], "autotune config 0"
    if p.name in k.heur:
        return None, "heuristics"
    return cx_guess(p, model, small), "guess"


def _runtime_arg(d: _Draft, k: _Kernel, p: Param, model: ModelConfig, dtype: str, small: bool, numel: int) -> None:
    launch, env = k.launch, d.env
    lk = arg_kind(launch, p.name) if launch else None
    kind = p.kind
    if lk == "tensor" and kind != "none":
        kind = "ptr"
    elif lk in ("int", "float") and kind == "ptr" and p.name not in _body_ptrs(k.params):
        kind = lk
    if kind == "none":
        d.args.append(Scalar(p.name, None))
        return
    if kind == "ptr":
        dt = p.dtype or dtype
        if dt == "bfloat16" and dtype != "bfloat16":
            dt = dtype
        d.buffers[p.name] = Buffer(p.name, (numel,), dt, fill_for(dt))
        d.args.append(flat_view(p.name, numel, dt))
        return
    val = None
    if launch and p.name in launch.args:
        try:
            val = env.eval(launch.args[p.name])
            if isinstance(val, bool) or not isinstance(val, (int, float)):
                val = None if not isinstance(val, bool) else int(val)
        except Unknown:
            val = None
    if val is None:
        if kind == "float" or lk == "float":
            val = 1e-6 if "eps" in p.name.lower() else 1.0
        else:
            val = scalar_int(p.name, model, small)
    if kind == "float" and isinstance(val, int):
        val = float(val)
    if isinstance(val, int) and not -2**31 <= val < 2**31:
        val = max(-2**31, min(2**31 - 1, val))
    env.values[p.name] = val
    d.args.append(Scalar(p.name, val))


def _heuristics(d: _Draft, k: _Kernel, model: ModelConfig, small: bool) -> None:
    for name, lam in k.heur.items():
        if name in d.constexprs and d.sources.get(name) == "heuristics":
            allv: dict[str, Any] = dict(d.env.values)
            allv.update({a.param: a for a in d.args if isinstance(a, TensorView)})
            try:
                v = _eval_heuristic(lam, allv)
                if hasattr(v, "item"):
                    v = v.item()
                src = "heuristics"
            except Exception:  # noqa: BLE001  (a lambda over runtime state)
                p = next(x for x in k.params if x.name == name)
                v, src = cx_guess(p, model, small), "guess (heuristic not evaluable)"
            d.constexprs[name], d.sources[name] = v, src
            d.env.values[name] = v


def _options(k: _Kernel, env: Env) -> tuple[int, int]:
    num_warps, num_stages = k.autotune.get("num_warps", 4), k.autotune.get("num_stages", 3)
    if k.launch:
        for opt in ("num_warps", "num_stages"):
            if opt in k.launch.options:
                try:
                    v = env.eval(k.launch.options[opt])
                    if isinstance(v, int) and v > 0:
                        if opt == "num_warps":
                            num_warps = pow2(min(v, 32))
                        else:
                            num_stages = min(v, 8)
                except Unknown:
                    pass
    return num_warps, num_stages


def _body_ptrs(params: list[Param]) -> set[str]:
    return {p.name for p in params if p.kind == "ptr" and p.why != "index-like name"}


def _grid(launch: Launch | None, env: Env, constexprs: dict[str, Any], args: list[Arg]) -> tuple[tuple[int, ...], str]:
    if launch is not None and launch.grid is not None:
        try:
            g = env.eval(launch.grid)
            if isinstance(g, ast.Lambda):
                g = env.call_lambda(g, {**constexprs, **{a.param: a.value for a in args if isinstance(a, Scalar)}})
            if isinstance(g, (int, float)) and not isinstance(g, bool):
                g = (g,)
            if isinstance(g, tuple) and 1 <= len(g) <= 3 and all(isinstance(x, (int, float)) for x in g):
                lim = (2**31 - 1, 65535, 65535)
                return tuple(int(min(max(1, x), lim[i])) for i, x in enumerate(g)), ast.unparse(launch.grid)[:80]
        except (Unknown, RecursionError):
            pass
    n = next((a.value for a in args if isinstance(a, Scalar) and isinstance(a.value, int)
              and re.search(r"^(n|n_elements|numel|num_elements|total|n_tokens|num_tokens|m)$", a.param, re.IGNORECASE)),
             None)
    blk = next((v for k, v in constexprs.items() if isinstance(v, int) and not isinstance(v, bool)
                and re.search(r"BLOCK", k)), None)
    if n and blk:
        return (max(1, -(-n // blk)),), "cdiv(N, BLOCK) (launch-site grid not evaluable)"
    return (1,), "(1,) (launch-site grid not evaluable)"


__all__ = ["dim_guess", "generic_plan"]
