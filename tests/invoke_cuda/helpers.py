"""Test helpers: ModelConfig and Extraction objects without the other stages.

``model(id)`` uses ``vkc.modelcfg.load_model`` once it exists, else builds the
ModelConfig by hand from the shared config snapshots.  ``extraction(tree, qualified)``
uses the CUDA extractor once it exists, else a hand-built Extraction whose
source_code is a stand-in unit including the original vLLM TU (compile-only).
"""
from __future__ import annotations

import json
from pathlib import Path

from vkc.records import Extraction, Handoff, KernelEntry, ModelConfig, SourceTree

SHARED_MODELS = Path("/work/shared/models")


def _snapshot(model_id: str) -> tuple[dict, str]:
    try:
        from vkc.modelcfg.snapshots import load_snapshot
        snap = load_snapshot(model_id)
        if snap is not None:
            return snap.config, snap.canonical_url
    except ImportError:
        pass
    data = json.loads((SHARED_MODELS / (model_id.replace("/", "__") + ".json")).read_text())
    return data["config"], data["source"]["canonical_url"]


def model(model_id: str) -> ModelConfig:
    try:
        from vkc.modelcfg import load_model  # type: ignore[attr-defined]
        return load_model(model_id, offline=True)
    except ImportError:
        pass
    cfg, url = _snapshot(model_id)
    cfg = cfg.get("text_config", cfg) | {k: v for k, v in cfg.items() if k in ("torch_dtype",)}
    h_q = cfg.get("num_attention_heads")
    hidden = cfg.get("hidden_size")
    experts = cfg.get("num_experts") or cfg.get("num_local_experts") or cfg.get("n_routed_experts")
    return ModelConfig(
        model_id=model_id, num_attention_heads=h_q, num_key_value_heads=cfg.get("num_key_value_heads", h_q),
        head_dim=cfg.get("head_dim") or (hidden // h_q if hidden and h_q else None), hidden_size=hidden,
        intermediate_size=cfg.get("intermediate_size"), num_hidden_layers=cfg.get("num_hidden_layers"),
        num_experts=experts, num_experts_per_tok=cfg.get("num_experts_per_tok") or cfg.get("experts_per_token"),
        moe_intermediate_size=cfg.get("moe_intermediate_size"),
        max_position_embeddings=cfg.get("max_position_embeddings") or cfg.get("initial_context_length"),
        sliding_window=cfg.get("sliding_window"), layer_types=tuple(cfg["layer_types"]) if cfg.get("layer_types")
        else None, attention_sinks=cfg.get("model_type") == "gpt_oss", rope_scaling=cfg.get("rope_scaling"),
        qk_norm=bool(cfg.get("use_qk_norm")) or str(cfg.get("model_type", "")).startswith("qwen3"),
        qkv_bias=bool(cfg.get("attention_bias") or cfg.get("qkv_bias")), kv_lora_rank=cfg.get("kv_lora_rank"),
        q_lora_rank=cfg.get("q_lora_rank"), qk_rope_head_dim=cfg.get("qk_rope_head_dim"),
        qk_nope_head_dim=cfg.get("qk_nope_head_dim"), v_head_dim=cfg.get("v_head_dim"),
        dtype=cfg.get("torch_dtype") or "bfloat16", vocab_size=cfg.get("vocab_size"),
        rms_norm_eps=cfg.get("rms_norm_eps"), model_type=cfg.get("model_type"),
        architectures=tuple(cfg.get("architectures") or ()), warnings=(), sources=(url,), origin="snapshot")


def have_extractor() -> bool:
    try:
        from vkc.extract.cuda import extract_cuda  # noqa: F401
        from vkc.index.cuda_scan import scan_cuda  # noqa: F401
        return True
    except ImportError:
        return False


def _entry(tree: SourceTree, qualified: str) -> KernelEntry | None:
    from vkc.index.cuda_scan import scan_cuda
    for e in scan_cuda(tree):
        if e.qualified == qualified or e.qualified.split("@")[0] == qualified:
            return e
    return None


def extraction(tree: SourceTree, qualified: str, qualname: str) -> tuple[Extraction, bool]:
    """(Extraction, real) -- real is True when the extractor produced it."""
    if have_extractor():
        from vkc.extract.cuda import extract_cuda
        entry = _entry(tree, qualified)
        if entry is not None:
            return extract_cuda(tree, entry), True
    file, name = qualified.split("@")[0].split(":")
    entry = KernelEntry(lang="cuda", name=name, qualname=qualname, file=file, line=1, end_line=1,
                        qualified=qualified)
    src = f'// stand-in unit: the original TU (compile-only)\n#include "{Path(tree.root) / file}"\n'
    handoff = Handoff(leaf_symbols=(qualname,), arg_order=(), grid_expr="", meta_params={}, guards={},
                      smem_formula=None, stride_semantics="elements")
    return Extraction(kernel=entry, kernel_type="cuda", source_code=src, handoff=handoff, facts={}), False
