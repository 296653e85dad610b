"""One vocabulary of kernel families, shared by both languages' recipes and the report."""
from __future__ import annotations

import enum
import re

__all__ = ["RULES", "Family"]


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
    LINEAR_ATTENTION = "linear_attention"
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

    @classmethod
    def of(cls, path: str | None, name: str | None) -> Family:
        """The family of a kernel from its file path and name: the first rule that matches wins.

        Order matters: specific families (ssm, linear attention, lora, moe) come before the generic
        ones they overlap with (a LoRA-MoE kernel is lora, a fused-MoE fp8 kernel is moe, a fused
        RMSNorm+quant kernel is norm); KV-cache writers come before attention (they live under
        attention/ paths)."""
        text = f"{path or ''} {name or ''}".lower()
        for fam, rx in _COMPILED:
            if rx.search(text):
                return fam
        return cls.OTHER


RULES: tuple[tuple[Family, str], ...] = (
    (Family.SSM, r"mamba|selective_scan|selective_state|ssd_|/ssm|causal_conv1d"),
    (Family.LINEAR_ATTENTION, r"(^|/|\.)fla(/|\.)|gated_delta|delta_rule|chunk_gla|linear_attn|lightning_attn"),
    (Family.LORA, r"lora|punica|sgmv|bgmv"),
    (Family.MOE, r"moe|expert|topk_softmax|topkgating|grouped_topk|router"),
    (Family.CACHE, r"reshape_and_cache|cache_kernels|concat_and_cache|kv_cache|copy_blocks|swap_blocks|gather_cache"),
    (Family.ATTENTION, r"attention|attn|paged|flash|mla|decode_att|prefill|softmax"),
    (Family.NORM, r"layernorm|layer_norm|rms_?norm|group_norm|norm_kernel|/norm"),
    (Family.ROTARY, r"rotary|(^|[/_.])m?rope([/_.]|$)|pos_encoding"),
    (Family.ACTIVATION, r"activation|_and_mul|silu|gelu|swiglu|relu"),
    (Family.QUANT, r"quant|fp8|int8|int4|gptq|awq|marlin|machete|w8a8|scaled_mm|mxfp4|nvfp4|fp4|gguf"),
    (Family.SAMPLER, r"sampl|top_?k|top_?p|penalt|rejection|logits"),
    (Family.ALLREDUCE, r"all_?reduce|all_?gather|reduce_scatter|custom_ar|nccl"),
)
_COMPILED = tuple((f, re.compile(p)) for f, p in RULES)

_ALIASES: dict[str, str] = {
    "norms": "norm", "layernorm": "norm", "rmsnorm": "norm",
    "sampling": "sampler", "sample": "sampler", "rejection": "sampler",
    "mamba": "ssm", "mamba/ssm": "ssm", "fla": "linear_attention", "gdn": "linear_attention",
    "activations": "activation", "act": "activation",
    "rope": "rotary", "pos_encoding": "rotary",
    "quantization": "quant", "fp8": "quant", "communication": "allreduce",
    "kv_cache": "cache", "custom_all_reduce": "allreduce", "all_reduce": "allreduce",
    "attn": "attention", "fused_moe": "moe",
}
