"""One record of a model's dimensions as recipes need them (both languages), with its checks.

:meth:`ModelDims.from_config` is the only normalisation of a :class:`~vkc.records.ModelConfig`
into kernel sizes (spec 3.2 step 2): ``H_kv`` defaults to ``H_q``; an explicit ``head_dim`` wins
over ``hidden // H_q`` and a mismatch is a warning (Qwen3-MoE, gpt-oss, Gemma-3 break it);
``H_q % H_kv`` must be 0.  What a recipe needs of the model (:class:`Need`) is checked with
:meth:`ModelDims.require` before any trace subprocess starts.
"""
from __future__ import annotations

import dataclasses
import enum
from dataclasses import dataclass
from typing import Any

from vkc.errors import InvocationError, NotApplicableError
from vkc.records import ModelConfig

__all__ = [
    "GROUPED_TOPK_MODELS",
    "MLA_MODELS",
    "MOE_MODELS",
    "SSM_MODELS",
    "ModelDims",
    "Need",
    "config_dict",
    "config_summary",
    "need_attention",
    "need_mla",
    "need_moe",
]

# Example models per need, for "does not apply" hints.
MOE_MODELS = "Qwen/Qwen3-30B-A3B, Qwen/Qwen3-Coder-480B-A35B-Instruct, openai/gpt-oss-120b, deepseek-ai/DeepSeek-V3"
MLA_MODELS = "deepseek-ai/DeepSeek-V3, deepseek-ai/DeepSeek-R1, moonshotai/Kimi-K2-Instruct"
GROUPED_TOPK_MODELS = "deepseek-ai/DeepSeek-V3, deepseek-ai/DeepSeek-R1, moonshotai/Kimi-K2-Instruct"
SSM_MODELS = "Qwen/Qwen3-Next-80B-A3B-Instruct"

_DTYPES = {"bfloat16": "bfloat16", "bf16": "bfloat16", "float16": "float16", "fp16": "float16",
           "half": "float16", "float32": "float32", "float": "float32", "fp32": "float32"}


class Need(str, enum.Enum):
    """What a kernel family needs of the model before it can apply."""

    MOE = "moe"
    MLA = "mla"
    ATTENTION = "attention"
    SSM = "ssm"
    GROUPED_TOPK = "grouped_topk"

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class ModelDims:
    """The model's sizes, normalised once."""

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
    config: ModelConfig = dataclasses.field(repr=False, compare=False, default=None)  # type: ignore[assignment]

    @property
    def is_moe(self) -> bool:
        return bool(self.num_experts)

    @property
    def is_mla(self) -> bool:
        return self.kv_lora_rank is not None

    @property
    def is_hybrid(self) -> bool:
        """Linear-attention / SSM layers beside attention (Qwen3-Next, Mamba hybrids)."""
        types = self.config.layer_types if self.config is not None else None
        return bool(types) and any(t not in ("full_attention", "sliding_attention", "attention") for t in types or ())

    @classmethod
    def from_config(cls, model: ModelConfig) -> ModelDims:
        """Resolve and validate the dims (spec 3.2 step 2)."""
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
        return cls(
            model_id=mid, dtype=_DTYPES.get((model.dtype or "").lower(), "bfloat16"), hidden=model.hidden_size,
            h_q=h_q, h_kv=h_kv, head_dim=head_dim, max_ctx=model.max_position_embeddings or 4096,
            intermediate=model.intermediate_size, num_experts=model.num_experts,
            topk=model.num_experts_per_tok, moe_intermediate=model.moe_intermediate_size,
            kv_lora_rank=model.kv_lora_rank, qk_rope_head_dim=model.qk_rope_head_dim,
            vocab=model.vocab_size, eps=model.rms_norm_eps or 1e-6,
            flags=_flags(model), warnings=tuple(warns), config=model)

    def recipe_dict(self) -> dict[str, Any]:
        """The ModelConfig as a JSON-able dict (tuples -> lists): what Triton recipes receive."""
        return config_dict(self.config)

    def summary(self) -> dict[str, Any]:
        """The header's one-line summary of the model: H_q, H_kv, Dh, hidden, max_ctx, flags."""
        return config_summary(self.config)

    def require(self, need: Need, kernel: str) -> None:
        """Raise NotApplicableError (exit 12) when the model lacks what ``kernel`` needs."""
        _CHECKS[need](self, kernel)


def _flags(model: ModelConfig) -> tuple[str, ...]:
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
    return tuple(flags)


def _jsonable(v: Any) -> Any:
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    if isinstance(v, dict) or hasattr(v, "items"):
        return {str(k): _jsonable(x) for k, x in dict(v).items()}
    return v


def config_dict(model: ModelConfig) -> dict[str, Any]:
    """A ModelConfig as a JSON-able dict (tuples -> lists)."""
    return {f.name: _jsonable(getattr(model, f.name)) for f in dataclasses.fields(model)}


def config_summary(model: ModelConfig) -> dict[str, Any]:
    """H_q, H_kv, Dh, hidden, max_ctx, dtype, MLA/MoE sizes and flags, for headers."""
    d: dict[str, Any] = {
        "H_q": model.num_attention_heads, "H_kv": model.num_key_value_heads,
        "Dh": model.head_dim, "hidden": model.hidden_size,
        "max_ctx": model.max_position_embeddings, "dtype": model.dtype,
    }
    if model.is_mla:
        d.update(kv_lora_rank=model.kv_lora_rank, qk_rope_head_dim=model.qk_rope_head_dim,
                 qk_nope_head_dim=model.qk_nope_head_dim, v_head_dim=model.v_head_dim)
    if model.num_experts:
        d.update(experts=model.num_experts, top_k=model.num_experts_per_tok,
                 moe_intermediate=model.moe_intermediate_size)
    flags = []
    if model.sliding_window:
        flags.append(f"sliding_window={model.sliding_window}")
    if model.attention_sinks:
        flags.append("sinks")
    if model.qk_norm:
        flags.append("qk_norm")
    if model.qkv_bias:
        flags.append("qkv_bias")
    if model.rope_scaling:
        rs = dict(model.rope_scaling)
        flags.append(f"rope_scaling={rs.get('rope_type') or rs.get('type')}")
    if model.is_mla:
        flags.append("mla")
    d["flags"] = ",".join(flags) or "none"
    return d


def need_moe(d: ModelDims, kernel: str) -> None:
    if not d.is_moe or not d.topk:
        raise NotApplicableError(
            f"{kernel} is a MoE kernel; model {d.model_id} has no experts",
            hint=f"use a MoE model, e.g. {MOE_MODELS}")


def need_mla(d: ModelDims, kernel: str) -> None:
    if not d.is_mla or not d.qk_rope_head_dim:
        raise NotApplicableError(
            f"{kernel} writes the MLA latent cache; model {d.model_id} does not use MLA",
            hint=f"use an MLA model, e.g. {MLA_MODELS}")


def need_attention(d: ModelDims, kernel: str) -> None:
    if not (d.h_q and d.h_kv and d.head_dim):
        raise NotApplicableError(f"{kernel} needs attention heads; model {d.model_id} lacks them",
                                 hint="use a model with attention layers (num_attention_heads / head_dim), "
                                      "e.g. meta-llama/Llama-3.1-8B-Instruct")


def need_ssm(d: ModelDims, kernel: str) -> None:
    if not d.is_hybrid:
        raise NotApplicableError(f"{kernel} is a linear-attention / SSM kernel; model {d.model_id} has no such layers",
                                 hint=f"use a hybrid model, e.g. {SSM_MODELS}")


def need_grouped_topk(d: ModelDims, kernel: str) -> None:
    """The static part (a MoE model); the routing details (n_group, scoring) are the recipe's checks."""
    need_moe(d, kernel)


_CHECKS = {Need.MOE: need_moe, Need.MLA: need_mla, Need.ATTENTION: need_attention, Need.SSM: need_ssm,
           Need.GROUPED_TOPK: need_grouped_topk}
