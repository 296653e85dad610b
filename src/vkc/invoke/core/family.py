"""One vocabulary of kernel families, shared by both languages' recipes and the report."""
from __future__ import annotations

import enum

__all__ = ["Family"]


class Family(str, enum.Enum):
    """What a kernel does, at the granularity the report counts."""

    ATTENTION = "attention"
    MOE = "moe"
    QUANT = "quant"
    NORM = "norm"
    ACTIVATION = "activation"
    ROTARY = "rotary"
    SAMPLER = "sampler"
    SSM = "ssm"
    LORA = "lora"
    CACHE = "cache"
    ALLREDUCE = "allreduce"
    OTHER = "other"

    @classmethod
    def parse(cls, label: str) -> Family:
        """The family for a label, old spellings included (``norms``, ``sampling``, ``mamba`` ...)."""
        key = label.strip().lower()
        try:
            return cls(_ALIASES.get(key, key))
        except ValueError:
            raise ValueError(f"unknown kernel family {label!r}; known: {', '.join(f.value for f in cls)}") from None

    def __str__(self) -> str:
        return self.value


_ALIASES: dict[str, str] = {
    "norms": "norm", "layernorm": "norm", "rmsnorm": "norm",
    "sampling": "sampler", "sample": "sampler", "rejection": "sampler",
    "mamba": "ssm", "linear_attention": "ssm", "fla": "ssm",
    "activations": "activation", "act": "activation",
    "rope": "rotary", "pos_encoding": "rotary",
    "quantization": "quant", "fp8": "quant",
    "kv_cache": "cache", "custom_all_reduce": "allreduce", "all_reduce": "allreduce",
    "attn": "attention", "fused_moe": "moe",
}
