"""Helpers shared by the attention recipes (not a recipe: leading underscore)."""
from __future__ import annotations

from vkc.invoke.triton.recipes.base import model_dtype, round_down

BLOCK_SIZE = 16          # vLLM's default KV-cache page size for the Triton backends
SMALL_DTYPE = "float16"  # SMALL_SANITY runs under TRITON_INTERPRET=1 (no bf16 there)


def dims(model: dict, small: bool) -> dict:
    """H_q, H_kv, D, dtype, max_ctx, window, sinks, MLA dims from the model dict."""
    hq = int(model.get("num_attention_heads") or 32)
    hkv = int(model.get("num_key_value_heads") or hq)
    d = int(model.get("head_dim") or (int(model.get("hidden_size") or 4096) // hq))
    sw = model.get("sliding_window")
    mla = model.get("kv_lora_rank") is not None
    return {
        "H_q": hq, "H_kv": hkv, "D": d,
        "dtype": SMALL_DTYPE if small else model_dtype(model),
        "max_ctx": int(model.get("max_position_embeddings") or 4096),
        "sliding_window": int(sw) if sw else 0,
        "sinks": bool(model.get("attention_sinks")),
        "mla": mla,
        "kv_lora_rank": int(model.get("kv_lora_rank") or 0),
        "qk_rope_head_dim": int(model.get("qk_rope_head_dim") or 0),
        "qk_nope_head_dim": int(model.get("qk_nope_head_dim") or 0),
        "v_head_dim": int(model.get("v_head_dim") or 0),
    }


def fit_context(budget: int, batch: int, bytes_per_token: int, max_ctx: int, fixed: int = 0,
                block: int = BLOCK_SIZE) -> int:
    """Longest per-sequence context (a page multiple, <= max_ctx) whose bytes fit the budget."""
    room = max(budget - fixed, 0) // max(batch * bytes_per_token, 1)
    return max(block, min(round_down(room, block), round_down(max_ctx, block)))


def itemsize(dtype: str) -> int:
    return 4 if dtype == "float32" else 2
