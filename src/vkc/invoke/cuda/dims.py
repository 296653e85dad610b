"""Model dimensions as the recipes need them, with checks and applicability errors."""
from __future__ import annotations

from dataclasses import dataclass

from vkc.errors import InvocationError, NotApplicableError
from vkc.records import ModelConfig

# Example models per family, for "does not apply" messages.
MOE_MODELS = "Qwen/Qwen3-30B-A3B, Qwen/Qwen3-Coder-480B-A35B-Instruct, openai/gpt-oss-120b, deepseek-ai/DeepSeek-V3"
MLA_MODELS = "deepseek-ai/DeepSeek-V3, deepseek-ai/DeepSeek-R1, moonshotai/Kimi-K2-Instruct"
GROUPED_TOPK_MODELS = "deepseek-ai/DeepSeek-V3, deepseek-ai/DeepSeek-R1, moonshotai/Kimi-K2-Instruct"

DTYPES = {"bfloat16": "bfloat16", "bf16": "bfloat16", "float16": "float16", "fp16": "float16",
          "half": "float16", "float32": "float32", "float": "float32", "fp32": "float32"}


@dataclass(frozen=True)
class Dims:
    model_id: str
    dtype: str              # "bfloat16" | "float16" | "float32"
    hidden: int
    h_q: int | None
    h_kv: int | None
    head_dim: int | None
    max_ctx: int
    intermediate: int | None
    num_experts: int | None
    topk: int | None
    moe_intermediate: int | None
    kv_lora_rank: int | None
    qk_rope_head_dim: int | None
    vocab: int | None
    eps: float
    flags: tuple[str, ...]
    warnings: tuple[str, ...]

    @property
    def is_moe(self) -> bool:
        return bool(self.num_experts)

    @property
    def is_mla(self) -> bool:
        return self.kv_lora_rank is not None


def resolve(model: ModelConfig) -> Dims:
    """Resolve the dims (spec 3.2 step 2) and validate them."""
    mid = model.model_id
    if not model.hidden_size:
        raise InvocationError(f"model {mid} has no hidden_size", hint="check the model's config.json")
    warns: list[str] = list(model.warnings)
    h_q, h_kv = model.num_attention_heads, model.num_key_value_heads
    if h_q and not h_kv:
        h_kv = h_q
    head_dim = model.head_dim or (model.hidden_size // h_q if h_q else None)
    if h_q and h_kv and h_q % h_kv:
        raise InvocationError(f"model {mid}: H_q={h_q} is not a multiple of H_kv={h_kv}")
    if h_q and head_dim and head_dim * h_q != model.hidden_size and not model.is_mla:
        warns.append(f"Dh*H_q = {head_dim * h_q} != hidden_size {model.hidden_size} (explicit head_dim kept)")
    dtype = DTYPES.get((model.dtype or "").lower(), "bfloat16")
    flags = []
    if model.sliding_window:
        flags.append(f"sliding_window={model.sliding_window}")
    if model.rope_scaling:
        rs = model.rope_scaling
        flags.append(f"rope_scaling={rs.get('rope_type') or rs.get('type') or '?'}")
    if model.qkv_bias:
        flags.append("qkv_bias")
    if model.qk_norm:
        flags.append("qk_norm")
    if model.attention_sinks:
        flags.append("attention_sinks")
    if model.is_mla:
        flags.append("mla")
    if model.num_experts:
        flags.append(f"moe={model.num_experts}x top{model.num_experts_per_tok}")
    return Dims(
        model_id=mid, dtype=dtype, hidden=model.hidden_size, h_q=h_q, h_kv=h_kv,
        head_dim=head_dim, max_ctx=model.max_position_embeddings or 4096,
        intermediate=model.intermediate_size, num_experts=model.num_experts,
        topk=model.num_experts_per_tok, moe_intermediate=model.moe_intermediate_size,
        kv_lora_rank=model.kv_lora_rank, qk_rope_head_dim=model.qk_rope_head_dim,
        vocab=model.vocab_size, eps=model.rms_norm_eps or 1e-6,
        flags=tuple(flags), warnings=tuple(warns))


def need_moe(d: Dims, kernel: str) -> None:
    if not d.is_moe or not d.topk:
        raise NotApplicableError(
            f"{kernel} is a MoE kernel; model {d.model_id} has no experts",
            hint=f"use a MoE model, e.g. {MOE_MODELS}")


def need_mla(d: Dims, kernel: str) -> None:
    if not d.is_mla or not d.qk_rope_head_dim:
        raise NotApplicableError(
            f"{kernel} writes the MLA latent cache; model {d.model_id} does not use MLA",
            hint=f"use an MLA model, e.g. {MLA_MODELS}")


def need_attention(d: Dims, kernel: str) -> None:
    if not (d.h_q and d.h_kv and d.head_dim):
        raise NotApplicableError(f"{kernel} needs attention heads; model {d.model_id} lacks them",
                                 hint="use a model with attention layers (num_attention_heads / head_dim), "
                                      "e.g. meta-llama/Llama-3.1-8B-Instruct")
