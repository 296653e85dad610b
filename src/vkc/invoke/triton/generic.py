"""Generic (untraced) launch of a Triton kernel: inputs synthesised from its signature.

Used when no workload recipe exists or vLLM's wrapper cannot be traced.  Parameter kinds come
from the kernel body (:mod:`.sigtypes`): pointers become flat tensors (bf16 data, int32 for
index-like buffers, fp32 scales; index buffers start zeroed so loaded indices stay in bounds),
integer scalars take model-dim guesses from their names, floats 1.0 (eps 1e-6).  Constexprs
come, in order, from the launch site's literal/evaluable arguments (:mod:`.launchsite`), the
signature default, the first autotune config, the ``@triton.heuristics`` lambdas, then name and
usage heuristics (powers of two for block shapes).  The grid is the launch site's grid
expression evaluated with those values when possible, else ``(cdiv(N, BLOCK),)`` or ``(1,)``.
"""
from __future__ import annotations

import ast
import math
import re
from typing import Any

from vkc.invoke.triton.constexprs import (
    Constraints,
    apply_rules,
    default_value,
    is_value,
    read_constraints,
)
from vkc.invoke.triton.decorators import decorators as _decorators
from vkc.invoke.triton.decorators import eval_heuristic as _eval_heuristic
from vkc.invoke.triton.launchsite import Env, Launch, Unknown, arg_kind, read_launch
from vkc.invoke.triton.sigtypes import Param, analyze
from vkc.records import Extraction, ModelConfig, SourceTree

FULL_MAX_NUMEL = 1 << 24
SMALL_NUMEL = 1 << 14
POW2_MAX = 4096
GUESSED_POW2_MAX = 256   # block shapes from guessed sizes: bigger tiles only make huge compiles
GUESSED_UNROLL_MAX = 4   # guessed tl.static_range trip counts (each iteration is unrolled)
_FLAG = re.compile(r"^(USE|IS|HAS|ENABLE|EVEN|APPLY|DO|WITH|SAVE|RETURN|NEED|SHOULD|ADD|MUL|CAUSAL|FUSE|SKIP|"
                   r"INCLUDE|ALLOW|TRANS|SPLIT_K_ENABLED|LAUNCH_PDL)(_|$)|_ENABLED$|^causal$|"
                   r"^(use|is|has|enable|even|apply|with|do)_", re.IGNORECASE)
_DTYPE_NAME = re.compile(r"dtype|DTYPE|_TYPE$|_ty$|^dtype", re.IGNORECASE)


def _pow2(n: float) -> int:
    n = int(max(1, n))
    return 1 << (n - 1).bit_length()


def dim_guess(name: str, model: ModelConfig, small: bool) -> int | None:
    """A plausible integer for a size-like name, from the model's dims (None when unknown)."""
    n = name.lower()
    hd = model.head_dim or 128
    table = [
        (r"head_?(size|dim)|^d$|^dh$|headdim|^hd$|^dim$|d_head", hd),
        (r"kv_?heads?|num_kv|h_?kv|^hk$", model.num_key_value_heads or 8),
        (r"q_?heads?|num_heads|^heads$|^h$|nheads|n_heads|^hq$|num_q", model.num_attention_heads or 32),
        (r"hidden|d_?model|^embed", model.hidden_size or 4096),
        (r"intermediate|ffn|inter_size", model.intermediate_size or 14336),
        (r"vocab", model.vocab_size or 32000),
        (r"num_experts|n_?expts|^e$|experts", model.num_experts or 8),
        (r"top_?k|n_expts_act", model.num_experts_per_tok or 2),
        (r"block_size|page_size|^bs$|kv_block", 16),
        (r"batch|num_seqs|num_reqs|^b$|n_seqs|num_requests", 8),
        (r"seq_?len|num_tokens|n_tokens|^t$|^m$|tokens|^l$|ctx|context", 256),
        (r"^n$|^k$|n_cols|ncols|^cols|^d_?in|^d_?out|^n_?dim|size_n|size_k", model.hidden_size or 4096),
        (r"rows|n_rows|^nrows", 256),
        (r"group|chunk", 64),
        (r"rank", 16),
        (r"layer", 1),
    ]
    for pat, val in table:
        if re.search(pat, n):
            v = int(val)
            return min(v, 64) if small else v
    return None


def _scalar_int(name: str, model: ModelConfig, small: bool) -> int:
    n = name.lower()
    if "stride" in n:
        last = re.search(r"(_d|_k|_n|_col|_c|dim|_1|_x|_e|_inner|_hd|1)$", n)
        return 1 if last else (64 if small else int(model.head_dim or 128))
    if re.search(r"^off|offset|start|^pid|_idx$|^idx|layer_id", n):
        return 0
    g = dim_guess(name, model, small)
    return g if g is not None else (16 if small else 256)


def _cx_guess(p: Param, model: ModelConfig, small: bool) -> Any:
    name = p.name
    up = name.upper()
    if p.dtype_cx or (_DTYPE_NAME.search(name) and not p.pow2):
        if re.search(r"ACC|COMPUTE|FP32|FLOAT32", up):
            return {"__tl_dtype__": "fp32"}
        if re.search(r"FP8|QUANT|Q_DTYPE", up):
            return {"__tl_dtype__": "fp8e4nv"}
        if re.search(r"IDX|INDEX|INT", up):
            return {"__tl_dtype__": "int32"}
        return {"__tl_dtype__": "bf16"}
    if p.compared:
        strs = [c for c in p.compared if isinstance(c, str)]
        return strs[0] if strs else p.compared[0]
    if p.flag or (_FLAG.search(name) and not p.pow2):
        return False
    if re.search(r"HEAD|DMODEL|HEADDIM|_DIM$|^D$|^DV$|^DK$|^D_", up):
        return _pow2(model.head_dim or 64)
    if re.search(r"BLOCK|TILE|CHUNK|_BS$|^BS$|^BT$|^BK$|^BV$|^BM$|^BN$|^BD$|^B[A-Z]$", up):
        if re.search(r"_K$|^BK$", up):
            return 32 if small else 64
        return 16 if small else 64
    if re.search(r"NUM_STAGES|STAGES|WARPS|GROUP_SIZE|GROUP_M|SPLIT|NUM_", up):
        return 1 if "SPLIT" in up or "NUM_" in up else 8
    g = dim_guess(name, model, small)
    if g is not None:
        return _pow2(g) if p.pow2 else g
    return 16


def _launch_for(tree: SourceTree, extraction: Extraction, names: list[str], guess) -> Launch | None:
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


def generic_configs(tree: SourceTree, extraction: Extraction, model: ModelConfig, entry: str, dtype: str,
                    budget: int, notes: list[str]) -> tuple[dict, dict] | None:
    """(configs, launches) for the generic launch, or None when the entry has no parsable signature."""
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
    cons = read_constraints(extraction.source_code, entry)
    configs = {}
    for cname, small in (("FULL", False), ("SMALL", True)):
        configs[cname] = _one_config(params, fact_defaults, autotune, heur, launch, model, dtype, small, budget,
                                     notes if cname == "FULL" else [], cons)
    _choose_dtypes(extraction, entry, params, configs, names, notes)
    site = launch.site if launch else (extraction.kernel.launch_sites[0] if extraction.kernel.launch_sites else None)
    where = f"{site.file}:{site.line}" if site else "no launch site"
    grid_src = configs["FULL"].pop("_grid_src")
    configs["SMALL"].pop("_grid_src")
    for c in configs.values():
        c.pop("_guessed_flags", None)
    mode = f"generic (untraced): inputs synthesised from the kernel signature; grid from {where} ({grid_src})"
    lf = {"params": names, "generic": True, "mode": mode,
          "site": {"file": site.file, "line": site.line, "function": site.wrapper or "?"} if site else None}
    return configs, {"FULL": lf, "SMALL": dict(lf)}


_FLOATS = ("bfloat16", "float16", "float32")


def _variants(params: list[Param], base: dict[str, str]) -> list[tuple[str, dict[str, str]]]:
    """Pointer dtype maps to try, most faithful first."""
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


def _choose_dtypes(extraction: Extraction, entry: str, params: list[Param], configs: dict, names: list[str],
                   notes: list[str]) -> None:
    """Probe the pointer dtype variants with Triton's front end; apply the first accepted one."""
    from vkc.invoke.triton.invoker import compile_literal
    from vkc.invoke.triton.probe import probe_variants

    full = configs["FULL"]
    base = {a: spec[5] for a, spec in full["args"] if spec[0] == "tensor"}
    if not base:
        return
    dtype_maps = _variants(params, base)
    variants = [(label, m, {}) for label, m in dtype_maps]
    # then: descriptor-like pointers passed as None, and each guessed False flag set True
    desc = [a for a in base if re.search(r"desc", a, re.IGNORECASE)]
    if desc:
        variants.append((f"{desc} as None", {k: v for k, v in base.items() if k not in desc}, {}))
    fp32 = dict(dtype_maps).get("float data as float32", base)
    for flag in full.get("_guessed_flags", [])[:8]:
        for label, m in (("as inferred", base), ("float data as float32", fp32)):
            variants.append((f"{label} with {flag}=True", m, {flag: True}))
    specs = []
    for _label, m, cx in variants:
        args = [(a, ((s[:5] + (m[a],)) if a in m else ("scalar", None)) if s[0] == "tensor" else s)
                for a, s in full["args"]]
        cfg = dict(full, args=args, constexprs={**full["constexprs"], **cx})
        lit = compile_literal(entry, cfg, {"params": names})
        specs.append({"signature": lit["signature"], "constexprs": lit["constexprs"]})
    ok, errors = probe_variants(extraction.source_code, "kernel_probe.py", entry, specs, full["num_warps"])
    if ok is None:
        notes.append(f"pointer dtypes as inferred; Triton's front end accepted none of {len(variants)} variants "
                     f"(first error: {errors[0] if errors else 'none'})")
        return
    label, chosen, cx = variants[ok]
    if ok:
        notes.append(f"pointer dtypes/flags: {label} (the front end rejected the inferred ones: {errors[0]})")
    for cfg in configs.values():
        cfg["args"] = [(a, ((s[:5] + (chosen[a],)) if a in chosen else ("scalar", None)) if s[0] == "tensor" else s)
                       for a, s in cfg["args"]]
        cfg["buffers"] = {b: (shape, chosen[b], (("zeros",) if chosen[b].startswith(("int", "uint")) else init))
                          for b, (shape, dt, init) in cfg["buffers"].items() if b in chosen}
        cfg["constexprs"] = {**cfg["constexprs"], **cx}
        cfg["live_bytes"] = int(sum(math.prod(sh) * _itemsize(dt) for sh, dt, _ in cfg["buffers"].values()))
        cfg["bytes"] = float(cfg["live_bytes"])


def _itemsize(dt: str) -> int:
    return {"float32": 4, "int32": 4, "int64": 8, "float64": 8, "int8": 1, "uint8": 1, "float8_e4m3fn": 1,
            "float8_e5m2": 1}.get(dt, 2)


def _one_config(params: list[Param], fact_defaults: dict, autotune: dict, heur: dict, launch: Launch | None,
                model: ModelConfig, dtype: str, small: bool, budget: int, notes: list[str],
                cons: Constraints | None = None) -> dict:
    env = launch.env if launch else Env()
    if launch:
        env.values = {}
        env.guess = lambda n: dim_guess(n, model, small)
    constexprs: dict[str, Any] = {}
    sources: dict[str, str] = {}
    args: list[tuple[str, tuple]] = []
    n_ptr = sum(1 for p in params if p.kind == "ptr" or (launch and arg_kind(launch, p.name) == "tensor"
                                                            and p.kind != "constexpr"))
    numel = SMALL_NUMEL if small else max(1 << 16, min(FULL_MAX_NUMEL, _pow2(budget // max(1, n_ptr) // 4) // 2))
    buffers: dict[str, tuple] = {}
    # 1. constexprs: launch site, default, autotune, (heuristics below), guesses
    for p in params:
        if p.kind != "constexpr":
            continue
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
        if src is None or val is None and not isinstance(launch.args.get(p.name), ast.Constant):
            if p.name in fact_defaults:
                val, src = fact_defaults[p.name], "default"
            elif p.has_default:
                val, src = p.default, "default"
            elif p.name in autotune.get("kwargs", {}):
                val, src = autotune["kwargs"][p.name], "autotune config 0"
            elif p.name in heur:
                val, src = None, "heuristics"
            else:
                val, src = _cx_guess(p, model, small), "guess"
        if isinstance(val, str) and (p.flag or p.pow2) and not p.compared:
            val, src = _cx_guess(p, model, small), "guess (launch value unusable)"
        if p.pow2 and isinstance(val, int) and not isinstance(val, bool):
            guessed = src.startswith("guess") or "guessed" in src
            fixed = min(_pow2(val), GUESSED_POW2_MAX if guessed else POW2_MAX)
            if fixed != val:
                val, src = fixed, src + (" (rounded to a power of two)" if fixed >= val else " (capped)")
        if p.unroll and isinstance(val, int) and not isinstance(val, bool) and val > GUESSED_UNROLL_MAX and (
                src.startswith("guess") or "guessed" in src):
            val, src = GUESSED_UNROLL_MAX, src + " (unrolled trip count capped)"
        if isinstance(val, str) and p.compared and val not in p.compared and src == "guess":
            val = p.compared[0]
        constexprs[p.name], sources[p.name] = val, src
        if src != "heuristics":
            env.values[p.name] = val
            if src.startswith("guess") or "guessed" in src:
                env.tainted.add(p.name)   # what derives from it (BK = next_power_of_2(K)) is guessed too
    # 2. runtime arguments
    for p in params:
        if p.kind == "constexpr":
            continue
        k = arg_kind(launch, p.name) if launch else None
        kind = p.kind
        if k == "tensor" and kind != "none":
            kind = "ptr"
        elif k in ("int", "float") and kind == "ptr" and p.name not in _body_ptrs(params):
            kind = k
        if kind == "none":
            args.append((p.name, ("scalar", None)))
            continue
        if kind == "ptr":
            dt = p.dtype or dtype
            if dt == "bfloat16" and dtype != "bfloat16":
                dt = dtype
            init = ("zeros",) if dt.startswith(("int", "uint")) else ("randn",)
            buffers[p.name] = ([numel], dt, init)
            args.append((p.name, ("tensor", p.name, [numel], [1], 0, dt)))
            continue
        val = None
        if launch and p.name in launch.args:
            try:
                val = env.eval(launch.args[p.name])
                if isinstance(val, bool) or not isinstance(val, (int, float)):
                    val = None if not isinstance(val, bool) else int(val)
            except Unknown:
                val = None
        if val is None:
            if kind == "float" or k == "float":
                low = p.name.lower()
                val = 1e-6 if "eps" in low else 1.0
            else:
                val = _scalar_int(p.name, model, small)
        if kind == "float" and isinstance(val, int):
            val = float(val)
        if isinstance(val, int) and not -2**31 <= val < 2**31:
            val = max(-2**31, min(2**31 - 1, val))
        env.values[p.name] = val
        args.append((p.name, ("scalar", val)))
    # 3. heuristics, evaluated on the synthesised arguments
    for name, lam in heur.items():
        if name in constexprs and sources.get(name) == "heuristics":
            allv = dict(env.values)
            allv.update({a: s for a, s in args if s[0] == "tensor"})
            try:
                v = _eval_heuristic(lam, allv)
                if hasattr(v, "item"):
                    v = v.item()
                src = "heuristics"
            except Exception:  # noqa: BLE001  (a lambda over runtime state)
                p = next(x for x in params if x.name == name)
                v, src = _cx_guess(p, model, small), "guess (heuristic not evaluable)"
            constexprs[name], sources[name] = v, src
            env.values[name] = v
    # 4. the kernel's compile-time rules (arange/shape powers of two, static_asserts)
    if cons is not None:
        cfg = {"constexprs": constexprs, "args": args, "buffers": buffers, "_sources": sources}
        apply_rules(cfg, cons, notes if not small else [])
        constexprs, args, buffers = cfg["constexprs"], cfg["args"], cfg["buffers"]
        env.values.update(constexprs)
    # 5. launch options and grid
    num_warps, num_stages = autotune.get("num_warps", 4), autotune.get("num_stages", 3)
    if launch:
        for opt in ("num_warps", "num_stages"):
            if opt in launch.options:
                try:
                    v = env.eval(launch.options[opt])
                    if isinstance(v, int) and v > 0:
                        if opt == "num_warps":
                            num_warps = _pow2(min(v, 32))
                        else:
                            num_stages = min(v, 8)
                except Unknown:
                    pass
    grid, grid_src = _grid(launch, env, constexprs, args)
    flags = [k for k, s in sources.items() if s.startswith("guess") and constexprs[k] is False]
    if notes is not None and not small:
        guessed = sorted(k for k, s in sources.items() if s.startswith("guess"))
        if guessed:
            notes.append(f"constexprs guessed from names/usage: {guessed}")
    live = sum(math.prod(s) * _itemsize(d) for s, d, _ in buffers.values())
    shapes = {"numel_per_pointer": numel, "dtype": dtype}
    return {"grid": grid, "num_warps": int(num_warps), "num_stages": int(num_stages), "options": {},
            "constexprs": constexprs, "buffers": dict(sorted(buffers.items())), "args": args,
            "live_bytes": int(live), "flops": None, "bytes": float(live), "shapes": shapes, "_grid_src": grid_src,
            "_guessed_flags": flags}


def _body_ptrs(params: list[Param]) -> set[str]:
    return {p.name for p in params if p.kind == "ptr" and p.why != "index-like name"}


def _grid(launch: Launch | None, env: Env, constexprs: dict, args: list) -> tuple[tuple, str]:
    if launch is not None and launch.grid is not None:
        try:
            g = env.eval(launch.grid)
            if isinstance(g, ast.Lambda):
                g = env.call_lambda(g, {**constexprs, **{a: s[1] for a, s in args if s[0] == "scalar"}})
            if isinstance(g, (int, float)) and not isinstance(g, bool):
                g = (g,)
            if isinstance(g, tuple) and 1 <= len(g) <= 3 and all(isinstance(x, (int, float)) for x in g):
                lim = (2**31 - 1, 65535, 65535)
                return tuple(int(min(max(1, x), lim[i])) for i, x in enumerate(g)), ast.unparse(launch.grid)[:80]
        except (Unknown, RecursionError):
            pass
    n = next((s[1] for a, s in args if s[0] == "scalar" and isinstance(s[1], int)
              and re.search(r"^(n|n_elements|numel|num_elements|total|n_tokens|num_tokens|m)$", a, re.IGNORECASE)), None)
    blk = next((v for k, v in constexprs.items() if isinstance(v, int) and not isinstance(v, bool)
                and re.search(r"BLOCK", k)), None)
    if n and blk:
        return (max(1, -(-n // blk)),), "cdiv(N, BLOCK) (launch-site grid not evaluable)"
    return (1,), "(1,) (launch-site grid not evaluable)"
