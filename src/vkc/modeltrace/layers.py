"""Layer types of a model config, the few layers to trace, and the per-layer scale factors.

A layer's type is ``<attention>/<mlp>``: attention from ``compress_ratios`` and the source layer ids
(DeepSeek-V4.1), ``layer_types`` (gpt-oss sliding/full,
Qwen3-Next linear/full), ``sliding_window_pattern`` (Gemma 3) or ``full_attention_interval``;
mlp ``moe`` or ``dense`` from ``first_k_dense_replace``/``moe_layer_freq`` (DeepSeek, Kimi),
``mlp_only_layers``/``decoder_sparse_step`` (Qwen MoE) or the expert count.  Layer 0 is traced
on its own (its first norm differs); the traced prefix is the shortest one whose layers 1.. hold
every type of layers 1.. of the full model, and each traced layer i >= 1 stands for
``count_full(type) / count_traced(type)`` layers.
"""
from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from vkc.errors import ModelError

__all__ = ["LayerPlan", "plan_layers", "text_config"]


@dataclass(frozen=True)
class LayerPlan:
    full_layers: int
    types: tuple[str, ...]                 # one per layer of the full model
    traced: int                            # layers kept in the traced model
    weights: Mapping[int, float]           # traced layer index -> layers of the full model it stands for
    config: Mapping[str, Any]              # config.json with the layers cut


def text_config(cfg: Mapping[str, Any]) -> Mapping[str, Any]:
    inner = cfg.get("text_config")
    return inner if isinstance(inner, Mapping) and "num_hidden_layers" in inner else cfg


def _compress_type(c: Mapping[str, Any], i: int) -> str | None:
    """DeepSeek-V4.1's per-layer attention: its compress ratio (0 a sliding window only; a layer past the list
    is one, vllm/models/deepseek_v41/attention.py:320) and whether it is a KV, index or candidate source
    (attention.py:331-357, :469: a compressor, indexer or candidate publisher of its own)."""
    ratios = c.get("compress_ratios")
    if not isinstance(ratios, list) or "kv_source_layer_ids" not in c:
        return None
    roles = [r for r, key in (("kv", "kv_source_layer_ids"), ("index", "index_source_layer_ids"))
             if i in (c.get(key) or ())]
    if c.get("candidate_source_layer_id") == i:
        roles.append("candidate")
    return "".join([f"ratio{ratios[i] if i < len(ratios) else 0}", *(f"+{r}" for r in roles)])


def _attn_type(c: Mapping[str, Any], i: int) -> str:
    compressed = _compress_type(c, i)
    if compressed is not None:
        return compressed
    lt = c.get("layer_types")
    if isinstance(lt, list) and i < len(lt):
        return str(lt[i]).replace("_attention", "")
    pattern = c.get("sliding_window_pattern", 6 if str(c.get("model_type", "")).startswith("gemma3") else None)
    if isinstance(pattern, int) and pattern > 1:
        return "sliding" if (i + 1) % pattern else "full"
    interval = c.get("full_attention_interval")
    if isinstance(interval, int) and interval > 1:
        return "full" if (i + 1) % interval == 0 else "linear"
    return "attn"


def _mlp_type(c: Mapping[str, Any], i: int) -> str:
    experts = c.get("n_routed_experts") or c.get("num_experts") or c.get("num_local_experts") or 0
    if not experts:
        return "dense"
    if i < int(c.get("first_k_dense_replace") or 0):
        return "dense"
    raw_freq = c.get("moe_layer_freq") or 1
    if isinstance(raw_freq, list):            # one 0/1 per layer (MiniMax-M3)
        return "moe" if i < len(raw_freq) and raw_freq[i] else "dense"
    freq = int(raw_freq)
    if "first_k_dense_replace" in c and i % freq:
        return "dense"
    if i in (c.get("mlp_only_layers") or []):
        return "dense"
    step = int(c.get("decoder_sparse_step") or 1)
    return "moe" if (i + 1) % step == 0 else "dense"


def plan_layers(cfg: Mapping[str, Any], *, max_traced: int = 8) -> LayerPlan:
    c = text_config(cfg)
    n_full = c.get("num_hidden_layers")
    if not isinstance(n_full, int) or n_full < 1:
        raise ModelError("config.json has no usable num_hidden_layers", hint="check the model's config.json")
    types = tuple(f"{_attn_type(c, i)}/{_mlp_type(c, i)}" for i in range(n_full))
    want = set(types[1:])
    n = min(2, n_full)
    while n < n_full and not want <= set(types[1:n]):
        n += 1
    if n > max_traced:
        raise ModelError(f"covering every layer type needs {n} traced layers (> {max_traced})",
                         hint="the layer pattern of this config is not supported by the model trace")
    weights: dict[int, float] = {0: 1.0}
    for i in range(1, n):
        t = types[i]
        weights[i] = sum(x == t for x in types[1:]) / sum(x == t for x in types[1:n])
    return LayerPlan(n_full, types, n, weights, _cut(cfg, n))


def _cut(cfg: Mapping[str, Any], n: int) -> dict[str, Any]:
    out = copy.deepcopy(dict(cfg))
    c = out["text_config"] if out.get("text_config") is not text_config(cfg) and "text_config" in out \
        and isinstance(out["text_config"], dict) and "num_hidden_layers" in out["text_config"] else out
    c["num_hidden_layers"] = n
    if isinstance(c.get("layer_types"), list):
        c["layer_types"] = c["layer_types"][:n]
    if isinstance(c.get("moe_layer_freq"), list):
        c["moe_layer_freq"] = c["moe_layer_freq"][:n]
    if isinstance(c.get("mlp_only_layers"), list):
        c["mlp_only_layers"] = [i for i in c["mlp_only_layers"] if i < n]
    return out
