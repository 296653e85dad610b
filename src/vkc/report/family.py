"""Kernel family from its file path and name: the first rule whose pattern matches wins.

The text matched is ``"<file path> <kernel name>"`` lower-cased (for CUDA the qualified
``csrc/...`` form, for Triton the ``vllm/...py`` path or the dotted module).  Order matters:
specific families (mamba, fla, lora, moe) come before the generic ones they overlap with
(a LoRA-MoE kernel is "lora", a fused-MoE fp8 kernel is "moe", a fused RMSNorm+quant kernel is
"norm"); KV-cache writers come before attention because they live under attention/ paths.
"""
from __future__ import annotations

import re

FAMILY_RULES: tuple[tuple[str, str], ...] = (
    ("mamba/ssm", r"mamba|selective_scan|selective_state|ssd_|/ssm|causal_conv1d"),
    ("fla", r"(^|/|\.)fla(/|\.)|gated_delta|delta_rule|chunk_gla|linear_attn|lightning_attn"),
    ("lora", r"lora|punica|sgmv|bgmv"),
    ("moe", r"moe|expert|topk_softmax|topkgating|grouped_topk|router"),
    ("cache", r"reshape_and_cache|cache_kernels|concat_and_cache|kv_cache|copy_blocks|swap_blocks|gather_cache"),
    ("attention", r"attention|attn|paged|flash|mla|decode_att|prefill|softmax"),
    ("norm", r"layernorm|layer_norm|rms_?norm|group_norm|norm_kernel|/norm"),
    ("rotary", r"rotary|(^|[/_.])m?rope([/_.]|$)|pos_encoding"),
    ("activation", r"activation|_and_mul|silu|gelu|swiglu|relu"),
    ("quantization", r"quant|fp8|int8|int4|gptq|awq|marlin|machete|w8a8|scaled_mm|mxfp4|nvfp4|fp4|gguf"),
    ("sampling", r"sampl|top_?k|top_?p|penalt|rejection|logits"),
    ("communication", r"all_?reduce|all_?gather|reduce_scatter|custom_ar|nccl"),
)
FAMILIES: tuple[str, ...] = tuple(f for f, _ in FAMILY_RULES) + ("other",)
_COMPILED = tuple((f, re.compile(p)) for f, p in FAMILY_RULES)


def family_of(path: str | None, name: str | None) -> str:
    """The family of a kernel defined in ``path`` named ``name`` (``other`` when no rule matches)."""
    text = f"{path or ''} {name or ''}".lower()
    for fam, rx in _COMPILED:
        if rx.search(text):
            return fam
    return "other"
