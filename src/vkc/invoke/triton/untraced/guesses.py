"""Name- and usage-based guesses of the generic path: sizes from model dims, constexpr values."""
from __future__ import annotations

import re
from typing import Any

from vkc.invoke.triton.untraced.sigtypes import Param
from vkc.records import ModelConfig

_FLAG = re.compile(r"^(USE|IS|HAS|ENABLE|EVEN|APPLY|DO|WITH|SAVE|RETURN|NEED|SHOULD|ADD|MUL|CAUSAL|FUSE|SKIP|"
                   r"INCLUDE|ALLOW|TRANS|SPLIT_K_ENABLED|LAUNCH_PDL)(_|$)|_ENABLED$|^causal$|"
                   r"^(use|is|has|enable|even|apply|with|do)_", re.IGNORECASE)
_DTYPE_NAME = re.compile(r"dtype|DTYPE|_TYPE$|_ty$|^dtype", re.IGNORECASE)


def pow2(n: float) -> int:
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


def scalar_int(name: str, model: ModelConfig, small: bool) -> int:
    n = name.lower()
    if "stride" in n:
        last = re.search(r"(_d|_k|_n|_col|_c|dim|_1|_x|_e|_inner|_hd|1)$", n)
        return 1 if last else (64 if small else int(model.head_dim or 128))
    if re.search(r"^off|offset|start|^pid|_idx$|^idx|layer_id", n):
        return 0
    g = dim_guess(name, model, small)
    return g if g is not None else (16 if small else 256)


def cx_guess(p: Param, model: ModelConfig, small: bool) -> Any:
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
        return pow2(model.head_dim or 64)
    if re.search(r"BLOCK|TILE|CHUNK|_BS$|^BS$|^BT$|^BK$|^BV$|^BM$|^BN$|^BD$|^B[A-Z]$", up):
        if re.search(r"_K$|^BK$", up):
            return 32 if small else 64
        return 16 if small else 64
    if re.search(r"NUM_STAGES|STAGES|WARPS|GROUP_SIZE|GROUP_M|SPLIT|NUM_", up):
        return 1 if "SPLIT" in up or "NUM_" in up else 8
    g = dim_guess(name, model, small)
    if g is not None:
        return pow2(g) if p.pow2 else g
    return 16


def itemsize(dt: str) -> int:
    return {"float32": 4, "int32": 4, "int64": 8, "float64": 8, "int8": 1, "uint8": 1, "float8_e4m3fn": 1,
            "float8_e5m2": 1}.get(dt, 2)


__all__ = ["cx_guess", "dim_guess", "itemsize", "pow2", "scalar_int"]
