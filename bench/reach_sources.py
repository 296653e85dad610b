"""The reach map's sources: what each one adds, and the bundled config class defaults.

    python bench/reach_sources.py measure [--json FILE] [SOURCE ...]
        The bundled models' reach (as ``vkc collect --all`` builds it), then each variant source
        (default: vkc.batch.reach.REACH_SOURCES, in order): its trace time (cold: the worker's
        process time recorded when it was traced), the tree kernels it reaches that neither the bundled
        models nor an earlier source reach (Triton / CUDA, names), or why it failed; then the totals.
        Traces are cached ($VKC_CACHE_DIR/modeltraces/): a second run reads them.
    python bench/reach_sources.py defaults [--out DIR] [ARCH ...]
        Regenerate the bundled config class defaults (src/vkc/modelcfg/defaults/ARCH.json; default: the
        BUNDLED ones; any of DEFAULTS by name, e.g. to retry one that did not trace) from the classes
        (transformers, or vLLM's own configs: the vLLM tree is put on sys.path).

Set HF_HUB_OFFLINE=1 to use the bundled snapshots (as the recorded numbers did).
"""
from __future__ import annotations

import argparse
import copy
import importlib
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DEFAULTS_DIR = ROOT / "src" / "vkc" / "modelcfg" / "defaults"

# arch -> (module, config class, constructor kwargs): the class's defaults, with the kwargs that pick
# which layers the cut keeps (documented in each file's "cut") and the fewest that make the architecture
# build where its defaults do not (each says where its values come from; recorded in the file's
# "constructor_kwargs")
DEFAULTS: dict[str, tuple[str, str, dict[str, Any]]] = {
    "NemotronHForCausalLM": ("transformers", "NemotronHConfig", {}),
    "JambaForCausalLM": ("transformers", "JambaConfig", {"attn_layer_period": 2, "attn_layer_offset": 1}),
    "BeamForCausalLM": ("vllm.transformers_utils.configs.beam", "BeamConfig", {}),
    "DeepseekV32ForCausalLM": ("transformers", "DeepseekV32Config", {}),
    # topk_method noaux_tc: the V4 gate's score-correction bias (models/deepseek_v4/nvidia/model.py reads it);
    # without it the router is FusedTopKRouter, which raises for the class's scoring_func sqrtsoftplus
    "DeepseekV4ForCausalLM": ("transformers", "DeepseekV4Config", {"topk_method": "noaux_tc"}),
    "Dots3NoteForCausalLM": ("vllm.transformers_utils.configs.dots3_note", "Dots3NoteConfig", {}),
    # DeepSeek-V4.1: DeepseekV41Config (vllm/transformers_utils/configs/deepseek_v41.py) only flattens a
    # text_config and has no text defaults; its text_config here is DeepseekV4Config's defaults (TEXT_BASES: the
    # V4 text model V4.1's code is ported from) with V4.1's own layer topology in place of V4's layer lists
    # (the model reads compress_ratios first, vllm/transformers_utils/deepseek_v4_utils.py; its MoE has no hash
    # layers, nvidia/model.py:153 num_hash_layers=0): vLLM's five-layer V4.1 test config (tests/models/
    # deepseek_v41/nvidia/specialized_decode/test_layers.py TRUNCATED, also tests/models/test_dsv41_mono_layers.py:
    # 0 sliding window, 1 ratio-2 KV + index source, 2 ratio-2 consumer, 3 ratio-1 KV, index and candidate
    # source, 4 ratio-1 index source over 3's candidates), its compress_ratios with the one MTP layer of the V4
    # defaults (num_nextn_predict_layers 1; the test's MTP entries are 0, attention.py:320 reads a missing one as
    # 0).  Without its Engram (the test's layer 2 Engram): EngramHashState builds its token map from the
    # checkpoint's tokenizer (common/engram.py:450), which a defaults config has none of; without its DSpark
    # draft (dspark_target_layer_ids: a speculative-decoding draft).  No vision tower (vision_config absent:
    # vision_n_layers 0, configs/deepseek_v41.py)
    "DeepseekV41ForCausalLM": ("vllm.transformers_utils.configs.deepseek_v41", "DeepseekV41Config", {"text_config": {
        "num_hidden_layers": 5, "compress_ratios": [0, 2, 2, 1, 1, 0], "kv_source_layer_ids": [1, 3],
        "index_source_layer_ids": [1, 3, 4], "candidate_source_layer_id": 3,
        # the candidate blocks (published by layer 3, read by 4) as vLLM's NVIDIA V4.1 numerics test sizes them
        # (tests/models/deepseek_v41/nvidia/specialized_decode/test_numerics.py: CANDIDATE_BLOCKS, _SIZE = 2048, 8)
        "candidate_topk_blocks": 2048, "candidate_block_size": 8}}),
    # Glm5Next: the config class has no ``mhc`` (the decoder layer reads it); False as vLLM's own test builds
    # the model (tests/models/glm5next/test_sequence_parallel.py; True needs tilelang's mHC kernels); no
    # ``mla_use_nope`` either (common/model.py reads it as the MLA's skip_rope): True, as the class's
    # qk_rope_head_dim 0 has no rope part; nor ``indexer_rope_interleave`` (common/attention.py reads it): False,
    # the default vLLM's DeepSeek-V2/V3.2 indexers take (deepseek_v2.py, deepseek_v32/attention.py: getattr ... False);
    # nor ``topk_method`` / ``scoring_func`` (Glm5NextMoE reads both, common/model.py:256, :312): noaux_tc and
    # sigmoid, as vLLM's own Glm5NextTextConfig test builds the MoE (tests/model_executor/layers/
    # test_fused_shared_expert.py, the glm5_next case)
    "Glm5NextForCausalLM": ("transformers.models.glm5_next.configuration_glm5_next", "Glm5NextTextConfig",
                            {"mhc": False, "mla_use_nope": True, "indexer_rope_interleave": False,
                             "topk_method": "noaux_tc", "scoring_func": "sigmoid"}),
    "HYV4ForCausalLM": ("vllm.transformers_utils.configs.hy_v4", "HYV4Config", {}),
    # Inkling: InklingMoE asserts the served checkpoint's MoE (nvidia/moe.py: sigmoid gate, shared sink
    # experts); the class default has no routed experts.  Shared experts and top-k as vLLM's tests build the
    # gate (tests/models/inkling/test_moe_weight_layout.py: 2 shared, 2 per token); 8 routed: chosen, no
    # checkpoint value in vLLM's tree (moe.py: "n_routed is a power of two"); dense_mlp_idx=1: layer 0 dense,
    # layer 1 MoE (model.py);
    # local_layer_ids: the even layers sliding-window, so the cut keeps one local and one global layer
    "InklingForCausalLM": ("vllm.models.inkling.configs", "InklingModelConfig",
                           {"n_routed_experts": 8, "n_shared_experts": 2, "num_experts_per_tok": 2,
                            "shared_expert_sink": True, "dense_mlp_idx": 1, "local_layer_ids": list(range(0, 16, 2))}),
    # KimiK3 (a text_config of KimiLinearConfig, whose defaults have no KDA layers and no MLA dims): the text
    # shapes vLLM's K3 kernels are written for (vllm/models/kimi_k3/amd/specialized_decode/: K3_SHAPES = hidden
    # 7168, 896 experts, 96 KDA heads of 128, conv 4; stages/moe.py: top-16, latent 3584, routed intermediate
    # 8 x 384, shared 8 x 768 = 2 x 3072, SiTU beta 4 / 25), the layer lists and attn_res_block_size of vLLM's
    # K3 config test (tests/models/kimi_k3/amd_specialized_decode/test_runtime.py: KDA layer 1, full layer 2),
    # the MLA dims of vLLM's Kimi-Linear test (tests/distributed/test_kimi_linear_context_parallel.py)
    "KimiK3ForConditionalGeneration": ("vllm.transformers_utils.configs.kimi_k3", "KimiK3Config", {"text_config": {
        "hidden_size": 7168, "num_hidden_layers": 2, "num_experts": 896, "num_experts_per_token": 16,
        "moe_intermediate_size": 3072, "num_shared_experts": 2, "routed_expert_hidden_size": 3584,
        "activation_situ_beta": 4.0, "activation_situ_linear_beta": 25.0, "attn_res_block_size": 12,
        "linear_attn_config": {"kda_layers": [1], "full_attn_layers": [2], "num_heads": 96, "head_dim": 128,
                               "short_conv_kernel_size": 4},
        "kv_lora_rank": 512, "qk_nope_head_dim": 128, "qk_rope_head_dim": 64, "v_head_dim": 128,
        "mla_use_nope": True, "mla_use_output_gate": True}}),
    "MiniMaxM3SparseForCausalLM": ("vllm.transformers_utils.configs.minimax_m3", "MiniMaxM3Config", {}),
    # Qwen4Exp: output_gate_type None means hidden_act in transformers' model (modeling_qwen4_exp.py:
    # ``config.output_gate_type or config.hidden_act``, silu); vLLM's GDN layer reads it literally
    "Qwen4ExpForCausalLM": ("transformers.models.qwen4_exp.configuration_qwen4_exp", "Qwen4ExpTextConfig",
                            {"output_gate_type": "silu"}),
    # Qwen4Exp with QSA (an ARCH+TAG name: same architecture, its own defaults:ID): the class defaults leave
    # indexer_n_heads None, so vLLM builds Qwen3NextAttention for the indexed_attention layer
    # (nvidia/model.py: use_qsa).  Index heads x dim 4 x 128 (tests/models/qwen4_exp/test_qsa_prepare.py
    # ``HQ, D = 4, 128``; test_qsa_reference.py ``heads, head_dim = 4, 128``); 1 index KV head
    # (test_qsa_amd.py ``index_kv_heads = 1``; nvidia/low_latency_gemm.py's TP=2 plans: QKV/gate + indexer Q/K
    # 7296 minus QKV/gate 6656 = (4 + 1) x 128); budget 2048 and compress ratio 4 (test_qsa_reference.py
    # ``indexer_budget = 2048``, ``indexer_compress_ratio = 4``); partial_rotary_factor 0.25 with the class's
    # head_dim 256 (test_qsa_prepare.py's rope: rotary_dim 64, what nvidia/indexer_qsa.py
    # _supports_fused_pre_indexer takes), rope_theta the class default
    "Qwen4ExpForCausalLM+qsa": ("transformers.models.qwen4_exp.configuration_qwen4_exp", "Qwen4ExpTextConfig",
                                {"output_gate_type": "silu", "indexer_n_heads": 4, "indexer_head_dim": 128,
                                 "indexer_kv_heads": 1, "indexer_budget": 2048, "indexer_compress_ratio": 4,
                                 "rope_parameters": {"rope_type": "default", "rope_theta": 10000.0,
                                                     "partial_rotary_factor": 0.25}}),
    # Qwen4Exp with PLE on layer 0 (``ple_layer_ids`` counts layers from 1) and the EOS token the config requires
    # for it: ple_layer_ids [1], eos_token_id 1, as vLLM's Qwen4Exp config test (tests/models/qwen4_exp/
    # test_config.py _text_config: "Qwen4ExpTextConfig requires an EOS token whenever PLE is enabled")
    "Qwen4ExpForCausalLM+ple": ("transformers.models.qwen4_exp.configuration_qwen4_exp", "Qwen4ExpTextConfig",
                                {"output_gate_type": "silu", "ple_layer_ids": [1], "eos_token_id": 1}),
    # Step5 (vllm/models/step5/nvidia/): a sparse_config is required (model.py: "requires a checkpoint with a
    # sparse_config section"); its fields are Step5SparseConfig's defaults (config.py) but index_tp_size, which
    # must equal the KV groups (num_attention_groups 8, _validate_step5_dsa_parallel_geometry); the DSA kernels
    # need head_size 192 and 4/8/16 query heads per KV group (sparse_attention.py: 64 / 8 = 8)
    "Step5ForCausalLM": ("vllm.transformers_utils.configs.step5", "Step5Config",
                         {"sparse_config": {"index_tp_size": 8}, "head_dim": 192, "num_attention_heads": 64,
                          # required by the DSA layers and Step5MoE (model.py raises without them)
                          "use_head_wise_attn_gate": True, "use_moe_router_bias": True, "need_fp32_gate": True}),
}
# arch -> (module, config class, kwargs, keys left out): a class whose defaults are the ``text_config`` of an
# architecture whose own class has no text defaults (DEFAULTS' text_config kwargs are applied over them)
TEXT_BASES: dict[str, tuple[str, str, dict[str, Any], tuple[str, ...]]] = {
    # V4's per-layer lists give way to V4.1's compress_ratios / source layer ids (DEFAULTS' comment)
    "DeepseekV41ForCausalLM": ("transformers", "DeepseekV4Config", {"topk_method": "noaux_tc"},
                               ("layer_types", "mlp_layer_types", "compress_rates", "num_hidden_layers")),
}
# the ones bundled (their model traces run, Glm5Next's with the options of its reach source;
# bench/results/reach_map_wide.md says why the others are not)
BUNDLED = ("BeamForCausalLM", "DeepseekV32ForCausalLM", "DeepseekV4ForCausalLM", "DeepseekV41ForCausalLM",
           "Glm5NextForCausalLM", "HYV4ForCausalLM",
           "InklingForCausalLM",
           "JambaForCausalLM", "KimiK3ForConditionalGeneration", "MiniMaxM3SparseForCausalLM", "NemotronHForCausalLM",
           "Qwen4ExpForCausalLM", "Qwen4ExpForCausalLM+qsa", "Step5ForCausalLM")
# generic PretrainedConfig fields that say nothing about the model
NOISE = {"output_hidden_states", "return_dict", "id2label", "label2id", "problem_type", "chunk_size_feed_forward",
         "is_encoder_decoder", "output_attentions", "_name_or_path", "architectures", "dtype", "torch_dtype"}
# keys the class sets itself whatever the file says (left out: vkc's config reader refuses their 0)
OMIT = {"Glm5NextForCausalLM": ("head_dim",)}
KEEP_LAYERS = 2      # the model trace keeps at least 2 layers; a 2-layer config is traced whole


def _jsonable(v: Any) -> bool:
    if isinstance(v, float):
        return math.isfinite(v)
    if isinstance(v, (list, tuple)):
        return all(_jsonable(x) for x in v)
    if isinstance(v, dict):
        return all(isinstance(k, str) and _jsonable(x) for k, x in v.items())
    return v is None or isinstance(v, (str, int, bool))


def _clean(v: Any) -> Any:
    """A nested config dict without the generic fields (their int-keyed label maps are not JSON)."""
    if isinstance(v, dict) and "model_type" in v:
        return {k: _clean(x) for k, x in sorted(v.items()) if k not in NOISE and _jsonable(_clean(x))}
    return v


def _layer_lists(cfg: dict[str, Any], n: int) -> list[tuple[str, ...]]:
    """Paths of the per-layer lists (length ``n``): top-level keys, and keys of a dict one level down
    (MiniMax-M3's ``sparse_attention_config.sparse_attention_freq``, which picks its sparse layers)."""
    if n <= KEEP_LAYERS:
        return []
    top = [(k,) for k, v in cfg.items() if isinstance(v, list) and len(v) == n]
    nested = [(k, j) for k, d in cfg.items() if isinstance(d, dict) and "model_type" not in d
              for j, v in d.items() if isinstance(v, list) and len(v) == n]
    return sorted(top + nested)


def _get(cfg: dict[str, Any], path: tuple[str, ...]) -> Any:
    return cfg[path[0]] if len(path) == 1 else cfg[path[0]][path[1]]


def _cut(cfg: dict[str, Any]) -> dict[str, Any]:
    """Keep layer 0 and the first layer of another kind (per-layer lists, first_k_dense_replace):
    every per-layer list is cut to those layers, ``first_k_dense_replace`` counts the dense ones kept."""
    n = cfg.get("num_hidden_layers")
    if not isinstance(n, int) or n <= KEEP_LAYERS:
        return {}
    lists = _layer_lists(cfg, n)
    fk = cfg.get("first_k_dense_replace")

    def sig(i: int) -> tuple[Any, ...]:
        return (*(json.dumps(_get(cfg, k)[i]) for k in lists), isinstance(fk, int) and i < fk)

    other = next((i for i in range(1, n) if sig(i) != sig(0)), 1)
    keep = [0, other]
    cut: dict[str, Any] = {"num_hidden_layers": len(keep), "kept_layers": keep, "of": n}
    for path in lists:
        kept = [_get(cfg, path)[i] for i in keep]
        if len(path) == 1:
            cfg[path[0]] = kept
        else:
            cfg[path[0]] = {**cfg[path[0]], path[1]: kept}
        cut[".".join(path)] = kept
    if isinstance(fk, int):
        cfg["first_k_dense_replace"] = cut["first_k_dense_replace"] = sum(1 for i in keep if i < fk)
    cfg["num_hidden_layers"] = len(keep)
    return cut


def defaults_file(arch: str) -> dict[str, Any]:
    import transformers

    mod, cls_name, kwargs = DEFAULTS[arch]
    if arch in TEXT_BASES:
        return _text_based_file(arch)
    obj = getattr(importlib.import_module(mod), cls_name)(**kwargs)
    d = obj.to_dict()
    if "num_hidden_layers" not in d and isinstance(getattr(obj, "num_hidden_layers", None), int):
        d["num_hidden_layers"] = obj.num_hidden_layers      # a property of the class (NemotronH)
    dropped = sorted(k for k, v in d.items() if k not in NOISE and not _jsonable(_clean(v)))
    omit = OMIT.get(arch, ())
    cfg = {k: _clean(v) for k, v in sorted(d.items()) if k not in NOISE and k not in omit and _jsonable(_clean(v))}
    text = cfg.get("text_config")
    cut = _cut(text if isinstance(text, dict) and "num_hidden_layers" in text else cfg)
    cfg["architectures"] = [arch.partition("+")[0]]      # ARCH+TAG: the architecture, its own defaults id
    cfg["torch_dtype"] = "bfloat16"
    return {"model_id": f"defaults:{arch}", "config_class": f"{mod}.{cls_name}", "constructor_kwargs": kwargs,
            "transformers_version": transformers.__version__, "cut": cut,
            "dropped_not_json": dropped, "omitted_class_sets_them": list(omit), "config": cfg}


def _text_based_file(arch: str) -> dict[str, Any]:
    """A config nested as the checkpoint's (``text_config``): the base class's defaults, less the keys
    TEXT_BASES leaves out, under DEFAULTS' text_config kwargs; the class itself built from it as a check."""
    import transformers

    mod, cls_name, kwargs = DEFAULTS[arch]
    bmod, bcls, bkwargs, drop = TEXT_BASES[arch]
    base = getattr(importlib.import_module(bmod), bcls)(**bkwargs).to_dict()
    text = {k: _clean(v) for k, v in sorted(base.items())
            if k not in NOISE and k not in drop and k != "transformers_version" and _jsonable(_clean(v))}
    text.update(kwargs.get("text_config", {}))
    top = {k: v for k, v in kwargs.items() if k != "text_config"}
    getattr(importlib.import_module(mod), cls_name)(text_config=copy.deepcopy(text), **top)   # it builds
    model_type = getattr(importlib.import_module(mod), cls_name).model_type
    cfg = {**top, "architectures": [arch.partition("+")[0]], "model_type": model_type,
           "text_config": dict(sorted(text.items())), "torch_dtype": "bfloat16"}
    return {"model_id": f"defaults:{arch}", "config_class": f"{mod}.{cls_name}", "constructor_kwargs": kwargs,
            "text_config_base": {"config_class": f"{bmod}.{bcls}", "constructor_kwargs": bkwargs,
                                 "left_out": list(drop)},
            "transformers_version": transformers.__version__, "cut": {},
            "dropped_not_json": [], "omitted_class_sets_them": [], "config": cfg}


def cmd_defaults(a: argparse.Namespace) -> int:
    from vkc.source import resolve_source

    sys.path.insert(0, str(resolve_source(None, None).root))
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    for arch in a.arch or BUNDLED:
        try:
            d = defaults_file(arch)
        except Exception as e:  # noqa: BLE001 -- reported, the others are still written
            print(f"{arch}: not written ({type(e).__name__}: {e})")
            continue
        (out / f"{arch}.json").write_text(json.dumps(d, indent=1, sort_keys=True) + "\n")
        print(f"{arch}: cut {d['cut'] or 'none'}; dropped {d['dropped_not_json'] or 'nothing'}")
    return 0


def _reached(index: Any, trace: Any) -> dict[str, str]:
    from vkc.batch.used import op_map, step_kernels
    from vkc.invoke.triton.modeltraced.session import FULL_STEPS

    known = {k.qualified: k for k in index.kernels if k.role == "entry"}
    ops = op_map(index)
    out: dict[str, str] = {}
    for w, spec in FULL_STEPS.items():
        step = next((s for s in trace.steps if s.spec == spec), None)
        for q in sorted(step_kernels(step, known, ops, tree=index.tree)) if step else ():
            out.setdefault(q, w)
    return out


def cmd_measure(a: argparse.Namespace) -> int:
    from vkc.batch.reach import reach_map, reach_sources
    from vkc.index import build_index
    from vkc.invoke.triton.modeltraced.session import model_trace_for
    from vkc.modelcfg import load_model
    from vkc.source import resolve_source

    index = build_index(resolve_source(None, None))
    lang = {k.qualified: k.lang for k in index.kernels}
    t0 = time.perf_counter()
    base = reach_map(index, sources=())
    seen = set(base.kernels)
    count = lambda names: {lg: sum(1 for q in names if lang[q] == lg) for lg in ("triton", "cuda")}
    rows: list[dict[str, Any]] = []
    print(f"bundled: {len(seen)} kernels {count(seen)} ({time.perf_counter() - t0:.1f} s)")
    for src in a.source or reach_sources():
        t = time.perf_counter()
        try:
            trace = model_trace_for(index.tree, load_model(src))
        except Exception as e:  # noqa: BLE001 -- a failing source is a row, not a crash
            rows.append({"source": src, "error": " ".join(str(getattr(e, "message", e)).split())[:300]})
            print(f"{src}: FAILED {rows[-1]['error']}")
            continue
        got = _reached(index, trace)
        new = sorted(q for q in got if q not in seen)
        seen |= set(new)
        rows.append({"source": src, "wall_s": round(time.perf_counter() - t, 1),
                     "cold_process_s": trace.timings.get("process_s"), "reached": len(got),
                     "new": {q: got[q] for q in new}, "new_count": count(new)})
        print(f"{src}: cold {trace.timings.get('process_s')} s, reaches {len(got)}, new {count(new)}")
        for q in new:
            print(f"    {lang[q]:6} {q} ({got[q]})")
    total = {"before": {"kernels": len(base.kernels), **count(base.kernels)},
             "after": {"kernels": len(seen), **count(seen)}}
    print(f"totals: before {total['before']}, after {total['after']}")
    if not a.source:      # the map collect --all builds (bundled models, then REACH_SOURCES): the same union
        full = reach_map(index)
        by_source = {m: sum(1 for r in full.kernels.values() if r.model == m) for m in dict.fromkeys(m for m, _ in full.order)}
        total["reach_map"] = {"kernels": len(full.kernels), **count(full.kernels), "key": full.key,
                              "same_as_union": set(full.kernels) == seen, "failed": [list(f) for f in full.failed],
                              "by_source": by_source, "bundled_unchanged": all(full.kernels[q] == r for q, r in base.kernels.items())}
        print(f"reach map: {full.describe()}; same kernels as the union: {set(full.kernels) == seen}; "
              f"bundled assignments unchanged: {total['reach_map']['bundled_unchanged']}")
    if a.json:
        Path(a.json).write_text(json.dumps({"sources": rows, "totals": total}, indent=1, sort_keys=True) + "\n")
    return 0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    m = sub.add_parser("measure")
    m.add_argument("source", nargs="*")
    m.add_argument("--json")
    d = sub.add_parser("defaults")
    d.add_argument("arch", nargs="*")
    d.add_argument("--out", default=str(DEFAULTS_DIR))
    a = p.parse_args()
    return cmd_measure(a) if a.cmd == "measure" else cmd_defaults(a)


if __name__ == "__main__":
    sys.exit(main())
