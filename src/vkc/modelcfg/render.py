"""ModelConfig -> JSON dict (``vkc model show --json``) and a human-readable text block."""
from __future__ import annotations

import json
from dataclasses import fields
from typing import Any

from vkc.records import ModelConfig


def model_to_json(cfg: ModelConfig) -> dict[str, Any]:
    """Every ModelConfig field, in declaration order, JSON-serialisable (tuples -> lists)."""
    return {f.name: _plain(getattr(cfg, f.name)) for f in fields(cfg)}


def _plain(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict) or hasattr(value, "items"):
        return {str(k): _plain(v) for k, v in value.items()}
    return value


def format_model(cfg: ModelConfig) -> str:
    """A short aligned text report; deterministic."""
    rows: list[tuple[str, str]] = [
        ("model", f"{cfg.model_id}  (origin: {cfg.origin})"),
        ("model_type", f"{cfg.model_type or '-'}  [{', '.join(cfg.architectures) or '-'}]"),
        ("dtype", cfg.dtype),
        ("attention", _attention(cfg)),
        ("hidden_size", _v(cfg.hidden_size)),
        ("intermediate_size", _v(cfg.intermediate_size)),
        ("num_hidden_layers", _v(cfg.num_hidden_layers)),
        ("max_position", _v(cfg.max_position_embeddings)),
        ("vocab_size", _v(cfg.vocab_size)),
        ("rms_norm_eps", _v(cfg.rms_norm_eps)),
        ("sliding_window", _v(cfg.sliding_window)),
        ("layer_types", _layers(cfg.layer_types)),
        ("flags", (f"attention_sinks={_b(cfg.attention_sinks)} qk_norm={_b(cfg.qk_norm)} "
                   f"qkv_bias={_b(cfg.qkv_bias)}")),
        ("rope_scaling", json.dumps(dict(cfg.rope_scaling), sort_keys=True) if cfg.rope_scaling else "-"),
    ]
    if cfg.num_experts:
        rows.append(("moe", (f"experts={cfg.num_experts} top_k={_v(cfg.num_experts_per_tok)} "
                             f"expert_intermediate={_v(cfg.moe_intermediate_size)}")))
    if cfg.is_mla:
        rows.append(("mla", (f"kv_lora_rank={cfg.kv_lora_rank} q_lora_rank={_v(cfg.q_lora_rank)} "
                             f"qk_nope={_v(cfg.qk_nope_head_dim)} qk_rope={_v(cfg.qk_rope_head_dim)} "
                             f"v_head_dim={_v(cfg.v_head_dim)}")))
    width = max(len(k) for k, _ in rows)
    lines = [f"{k.ljust(width)}  {v}" for k, v in rows]
    lines += ["sources:"] + [f"  {s}" for s in cfg.sources]
    if cfg.warnings:
        lines += ["warnings:"] + [f"  - {w}" for w in cfg.warnings]
    return "\n".join(lines)


def _attention(cfg: ModelConfig) -> str:
    hq, hkv = cfg.num_attention_heads, cfg.num_key_value_heads
    group = hq // hkv if hq and hkv else None
    return f"H_q={_v(hq)} H_kv={_v(hkv)} group={_v(group)} head_dim={_v(cfg.head_dim)}"


def _layers(types: tuple[str, ...] | None) -> str:
    if not types:
        return "-"
    counts: dict[str, int] = {}
    for t in types:
        counts[t] = counts.get(t, 0) + 1
    summary = ", ".join(f"{t} x{n}" for t, n in sorted(counts.items()))
    return f"{len(types)} layers: {summary}; first: {', '.join(types[:6])}{', ...' if len(types) > 6 else ''}"


def _v(value: Any) -> str:
    return "-" if value is None else str(value)


def _b(value: bool) -> str:
    return "yes" if value else "no"
