"""Sane bounds for every dimension a normalised model config carries (issue 15: a 1 KB
config with ``num_hidden_layers: 10**12`` exhausted memory; ``hidden_size: 2**31`` became a
C++ ``int`` that nvcc narrowed).  Kernels index with 32-bit ints, so nothing may exceed
``INT32_MAX``; the per-key limits are far above any published model (DeepSeek-V3: hidden
7168, 61 layers, 256 experts; Kimi-K2: 384 experts; Llama-3.1-405B: intermediate 53248).
"""
from __future__ import annotations

import math
from typing import Any

from vkc.errors import ModelError

__all__ = ["INT32_MAX", "LIMITS", "check_eps", "check_int"]

INT32_MAX = 2**31 - 1
# config key -> (lowest, highest) accepted value
LIMITS: dict[str, tuple[int, int]] = {
    "hidden_size": (1, 65536 * 4),
    "num_attention_heads": (1, 4096),
    "num_key_value_heads": (1, 4096),
    "num_hidden_layers": (1, 1000),
    "head_dim": (1, 8192),
    "intermediate_size": (1, 1 << 20),
    "moe_intermediate_size": (1, 1 << 20),
    "num_experts": (0, 8192), "num_local_experts": (0, 8192), "n_routed_experts": (0, 8192),
    "num_experts_per_tok": (0, 8192), "experts_per_token": (0, 8192), "moe_topk": (0, 8192),
    "max_position_embeddings": (1, INT32_MAX), "initial_context_length": (1, INT32_MAX),
    "sliding_window": (0, INT32_MAX),
    "vocab_size": (1, 1 << 24),
    "kv_lora_rank": (1, 65536), "q_lora_rank": (0, 65536),
    "qk_rope_head_dim": (0, 8192), "qk_nope_head_dim": (0, 8192), "v_head_dim": (0, 8192),
    "full_attention_interval": (1, 1000), "sliding_window_pattern": (1, 1000),
}
_DEFAULT = (0, INT32_MAX)
_HINT = "fix the config.json value (vkc accepts positive dimensions that fit the kernels' 32-bit indices)"


def check_int(model_id: str, key: str, value: Any) -> int:
    """``value`` as an int when it is an integral number within ``LIMITS[key]``; else ModelError."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or \
            (isinstance(value, float) and not math.isfinite(value)) or value != int(value):
        raise ModelError(f"config.json for {model_id}: {key} must be an integer, got {_short(value)}", hint=_HINT)
    lo, hi = LIMITS.get(key, _DEFAULT)
    if not lo <= value <= hi:
        what = "positive" if lo >= 1 and value < lo else "non-negative" if value < lo else f"at most {hi}"
        raise ModelError(f"config.json for {model_id}: {key} must be {what}, got {_short(value)}", hint=_HINT)
    return int(value)


def check_eps(model_id: str, key: str, value: float) -> float:
    """A norm epsilon: finite, positive, below 1."""
    if not (math.isfinite(value) and 0 < value < 1):
        raise ModelError(f"config.json for {model_id}: {key} must be a small positive number, got {value!r}",
                         hint=_HINT)
    return value


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:20] + "..." + text[-8:] + f" ({len(text)} characters)"
