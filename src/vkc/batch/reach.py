"""The reach map: for each tree kernel, the first (model, workload) whose step launches it.

``vkc collect --all`` with no ``--model`` sizes a kernel in this map at that model and workload, so
its example is model-traced (:mod:`vkc.batch.collect_all`); the rest are collected as before (the
first of ``DEFAULT_MODELS`` that applies, the kernel's inferred workload).

Order (:func:`reach_order`), fixed and documented: the no-model default list
``vkc.modelcfg.DEFAULT_MODELS`` first (``meta-llama/Llama-3.1-8B-Instruct``, then the MoE / MLA /
hybrid defaults, so a kernel lands where today's fallback would send it), then the other bundled
models in ``bundled_ids()`` order (sorted); per model decode before prefill.  Then the *variant
sources* (:data:`REACH_SOURCES`, :func:`reach_sources`), in their fixed order: bundled models served
with options that switch kernels on (``MODEL@KEY=VALUE``), then architectures of vLLM's registry from
their config class defaults (``defaults:ARCH``), both :mod:`vkc.modelcfg.variants` ids.  They come
after every bundled model, so a kernel a bundled model launches keeps that model; a kernel only a
source launches is sized at that source, and its artifact's command names the variant id
(``--model MODEL@kv-cache-dtype=fp8``), which regenerates it.  Each model or source is traced
once by :func:`vkc.invoke.triton.modeltraced.session.model_trace_for` (the same cached trace the
per-kernel model-traced examples read); only its FULL serving steps count.  What a step launches is
:func:`vkc.batch.used.step_kernels`, exactly ``--all-used``'s rule: Triton launches by vkc's
qualified name, custom-op calls through the op map narrowed by the dispatch rules.

Cache: ``$VKC_CACHE_DIR/reach/<key>.json``, key = sha256 of the index's tree key, each model's trace
key (tree, cut config, options, worker sources), vkc's version and the source of the modules that
decide what a step launches; a warm run reads it and traces nothing.  A map with a failed trace is
not cached (the next run retries; :func:`vkc.modeltrace.trace_model` caches the failure itself).
``VKC_MODEL_TRACE=0`` turns the map off (:func:`reach_map` is then never called).
"""
from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import vkc
from vkc.records import KernelIndex, ModelConfig

__all__ = ["REACH_SOURCES", "RULE_MODULES", "Reach", "ReachMap", "reach_map", "reach_order", "reach_sources"]

FORMAT = 1
WORKLOAD_ORDER = ("decode", "prefill")
RULE_MODULES = ("vkc.batch.reach", "vkc.batch.used", "vkc.invoke.cuda.modeltraced.dispatch",
                "vkc.invoke.cuda.modeltraced.dispatch_args", "vkc.invoke.cuda.modeltraced.dispatch_quant",
                "vkc.invoke.cuda.modeltraced.dispatch_topk", "vkc.invoke.cuda.modeltraced.dispatch_fused",
                "vkc.invoke.cuda.modeltraced.opmap", "vkc.invoke.cuda.modeltraced.bind_extra",
                "vkc.invoke.cuda.modeltraced.binding", "vkc.invoke.triton.modeltraced.session")
# Variant sources, tried after the bundled models in this order (bench/results/reach_map_wide.md says
# what each adds): serving options on a bundled model, config class defaults of architectures, then online
# quantization (vLLM's --quantization on a bundled model).
REACH_SOURCES: tuple[str, ...] = (
    "meta-llama/Llama-3.1-8B-Instruct@speculative=ngram",   # n-gram drafts: rejection sampler, draft inputs, drafter
    "meta-llama/Llama-3.1-8B-Instruct@sampling=mixed",      # logit bias, min-p, bad words, logprobs, prompt logprobs
    "meta-llama/Llama-3.1-8B-Instruct@speculative=ngram-block,sampling=mixed",  # block verification, spec logprobs
    "meta-llama/Llama-3.1-8B-Instruct@watermark=gumbel",    # watermarking: the repeated-context search
    "meta-llama/Llama-3.1-8B-Instruct@return-sampling-mask=true,compute-nans=true",  # kept supports, NaN counts
    "meta-llama/Llama-3.1-8B-Instruct@kv-cache-dtype=fp8",  # fp8 KV cache: the query's static fp8 quant
    "meta-llama/Llama-3.1-8B-Instruct@attention-backend=FLASH_ATTN",  # the H100 default: CUDA KV-cache write
    "defaults:NemotronHForCausalLM",                        # Mamba2 (SSD chunked scan, state update), relu2
    "defaults:BeamForCausalLM",                             # Beam's own norms, qk-norm-rope, sigmoid routing
    "defaults:JambaForCausalLM",                            # Mamba1 selective scan
    # MiniMax-M3's fused q-norm/rope/KV insert (CUDA); its sparse layer (the cut keeps sparse_attention_freq's
    # layer 3): the Triton indexer top-k and block-sparse attention of minimax_m3/common/ops (SM 9.0: Triton impls)
    "defaults:MiniMaxM3SparseForCausalLM",
    "meta-llama/Llama-3.1-8B-Instruct@kv-cache-dtype=int4_per_token_head",  # int4 per-token-head KV cache
    "meta-llama/Llama-3.1-8B-Instruct@kv-cache-dtype=int8_per_token_head",  # int8 per-token-head KV cache write
    # vLLM's --quantization (online: the bf16 checkpoint quantized at load; the config is the model's)
    "meta-llama/Llama-3.1-8B-Instruct@quantization=fp8_per_tensor",  # dynamic per-token fp8 quant of activations
    "meta-llama/Llama-3.1-8B-Instruct@quantization=mxfp4",  # MXFP4 weights on Hopper: the dense Marlin GEMM
    "Qwen/Qwen3-30B-A3B@quantization=fp8_per_tensor",       # fp8 MoE: dynamic per-tensor fp8 quant (absmax, quant)
    "meta-llama/Llama-3.1-8B-Instruct@lora=16",             # LoRA (dummy adapters): Punica lora_shrink/lora_expand
    "Qwen/Qwen3-30B-A3B@lora=16",                           # MoE LoRA: fused_moe_lora one-shot, moe_lora_align (CUDA)
    "Qwen/Qwen3-30B-A3B@lora=256",                          # MoE LoRA past rank 128: fused_moe_lora shrink/expand
    # DeepSeek-V3.2 as on an H100 install (recorded DeepGEMM + CuTe DSL stand-ins; vLLM's first sparse MLA
    # backend there, FA3 MLA sparse, at its block size): the sparse indexer, fused q/norm-rope kernels
    ("defaults:DeepseekV32ForCausalLM@deep-gemm=recorded,cute-dsl=recorded,attention-backend=FLASH_ATTN_MLA_SPARSE,"
     "block-size=64"),
    # last, so no earlier source's assignment moves; its SMALL steps fail (vLLM takes the CuTe DSL hc_down_silu
    # for 1..48 tokens), its FULL steps (64 and 8192 tokens) take the Linear path and stand
    "defaults:Qwen4ExpForCausalLM",                         # Qwen4-Exp hyperconnection kernels (ops/hc.py), GDN
    # vLLM's start-up picks its KV-cache block size, 5760 (checklist step block-size; reach_map_wide.md)
    "defaults:KimiK3ForConditionalGeneration",              # Kimi-K3: KDA chunked prefill/decode, attn-res, MLA insert
    # Glm5Next (KDA + kpool sparse-indexed MLA): the in-tree Triton KDA prefill (FlashKDA is an external extension),
    # the recorded DeepGEMM the kpool indexer requires on CUDA (nvidia/sparse_indexer.py:737), and the sparse MLA
    # backend vLLM takes on SM 9.0 for its 512 head without flashinfer: FLASH_ATTN_MLA_SPARSE (with flashinfer
    # >= 0.6.18 an H100 takes FLASHINFER_MLA_SPARSE_SM90 first, platforms/cuda.py; its attention call is external
    # either way); block size 4608 from vLLM's start-up: KDA kernels, kpool compress/tail kernels, topKPerRowDecode
    "defaults:Glm5NextForCausalLM@kda-prefill-backend=triton,deep-gemm=recorded,attention-backend=FLASH_ATTN_MLA_SPARSE",
    # Qwen4-Exp with its QSA layer (config values from vLLM's QSA tests, bench/reach_sources.py DEFAULTS; like
    # defaults:Qwen4ExpForCausalLM its SMALL steps fail in the CuTe DSL hc_down_silu, its FULL steps stand): QSA
    # prepare, indexer MQA logits, split-K sparse GQA, QSA metadata, the persistent top-k (CUDA)
    "defaults:Qwen4ExpForCausalLM+qsa",
    # compressed-tensors int8 W8A8 (a real checkpoint's quantization_config on a bundled model; COMPOSED, not a
    # checkpoint: modelcfg/composed/w8a8-int8.json cites it): CUTLASS int8 scaled_mm (no tree kernel) after the
    # dynamic per-token int8 quant of each Linear's input; the MoE's int8 fused_moe quantizes per token in Triton
    "composed:w8a8-int8:meta-llama/Llama-3.1-8B-Instruct",  # dynamic_scaled_int8_quant (CUDA)
    "composed:w8a8-int8:Qwen/Qwen3-30B-A3B",                # int8 MoE: _per_token_quant_int8 (Triton)
    # vLLM's --quantization moe_wna16 on a GPTQ checkpoint (modelcfg/composed/gptq.json): the MoE experts in Triton
    # (MoeWNA16; "auto" takes Marlin MoE, whose AWQ/GPTQ weight repack reads qzeros on the host), Linears Machete
    "composed:gptq:Qwen/Qwen3-30B-A3B@quantization=moe_wna16",  # fused_moe_kernel_gptq_awq (Triton)
    # the recording CuTe DSL stand-in (cute-dsl=recorded: the DSL is in vLLM's CUDA requirements, so an H100
    # install takes its kernels; each compiled launch an external event; bench/results/reach_map_wide.md)
    "defaults:Step5ForCausalLM@cute-dsl=recorded",           # Step5: DSA sparse attention, indexer, summary ring
    "defaults:InklingForCausalLM@cute-dsl=recorded",         # Inkling: gate select, qkvr prep, short conv, sink
    # DeepSeek-V4 (recorded DeepGEMM, FlashMLA, TileLang, CuTe DSL; its sparse MLA's block size 256): the
    # compressor / indexer / sparse-SWA metadata kernels, fused q-norm/rope/KV insert (CUDA), hash top-k
    ("defaults:DeepseekV4ForCausalLM@deep-gemm=recorded,flash-mla=recorded,tilelang=recorded,cute-dsl=recorded,"
     "block-size=256"),
    # --- packed KV caches (h-kvq; bench/results/reach_attn_2026-12-04.md) ------------------------------------------
    # TurboQuant / UltraQuant on a hybrid model: vLLM keeps no boundary layer at the native dtype there
    # (TurboQuantConfig.get_boundary_skip_layers returns [] for a hybrid, quantization/turboquant/config.py:194), so
    # every full-attention layer is packed and its one backend is the named one: TURBOQUANT is the only CUDA backend
    # that takes a turboquant_* dtype (platforms/cuda.py's list ends in it), ULTRAQUANT the one for ultraquant_4bit
    # (not in CUDA's auto list: --attention-backend ULTRAQUANT; no FlyDSL off gfx950, so its Triton kernels run).
    # On a dense model the cut's two layers are both boundary layers (vLLM's rule at 2 layers), so no TQ kernel runs.
    "Qwen/Qwen3-Next-80B-A3B-Instruct@kv-cache-dtype=turboquant_k8v4,attention-backend=TURBOQUANT",   # fp8-K store, decode
    "Qwen/Qwen3-Next-80B-A3B-Instruct@kv-cache-dtype=turboquant_4bit_nc,attention-backend=TURBOQUANT",  # MSE-K store
    "Qwen/Qwen3-Next-80B-A3B-Instruct@kv-cache-dtype=ultraquant_4bit,attention-backend=ULTRAQUANT",  # FP4 store, 3-D decode
    # --- end h-kvq ------------------------------------------------------------------------------------------------------
    # speculative decoding with a drafter model (vkc.modeltrace.spec_draft; bench/results/reach_spec_2026-12-04.md):
    # DeepSeek-V3's own MTP layer (num_nextn_predict_layers 1: MTPSpeculator, a TargetDependentARSpeculator):
    # the draft prefill / decode input kernels and the draft-step update of target_dependent_ar
    "deepseek-ai/DeepSeek-V3@speculative=mtp",
    # a separate draft model, Llama-3.1-8B for Llama-3.1-70B (both bundled; StandaloneARSpeculator): its expanded prefill
    "meta-llama/Llama-3.1-70B-Instruct@speculative=draft-model,draft-model=meta-llama/Llama-3.1-8B-Instruct",
    # --reasoning-parser qwen3 with thinking-token budgets (vkc.modeltrace.thinking): apply_thinking_budget's kernels
    "Qwen/Qwen3-8B@reasoning-parser=qwen3,sampling=thinking",
    # --- h-arch (issue 12): DeepSeek-V4.1 ---
    # DeepSeek-V4.1 (V4's class defaults as its text_config, vLLM's five-layer V4.1 test topology: sliding, ratio-2
    # KV/index source and consumer, ratio-1 KV/index/candidate source, ratio-1 re-indexer; no Engram, which needs
    # the checkpoint's tokenizer; bench/reach_sources.py DEFAULTS) with V4's recording stand-ins and block size:
    # V4.1's compressor / KV-insert / indexer-K-store / top-k index kernels, the DSA candidate-block kernels
    ("defaults:DeepseekV41ForCausalLM@deep-gemm=recorded,flash-mla=recorded,tilelang=recorded,cute-dsl=recorded,"
     "block-size=256"),
    # GPTQ's exllama kernels (h-quant, 2026-12-04): a GPTQ checkpoint's quantization_config (modelcfg/composed/gptq.json,
    # gptq8.json cite theirs) served with vLLM's --linear-backend exllama --dtype float16: choose_mp_linear_kernel
    # keeps ExllamaLinearKernel (float16 activations only), whose forward is _C::gptq_gemm; at 64 decode tokens
    # (> MAX_Q_GEMM_ROWS 50, 24 at 8 bits) q_gemm.cu reconstructs the fp16 weight, then cuBLAS
    "composed:gptq:meta-llama/Llama-3.1-8B-Instruct@linear-backend=exllama,dtype=float16",   # reconstruct_exllama_4bit
    "composed:gptq8:meta-llama/Llama-3.1-8B-Instruct@linear-backend=exllama,dtype=float16",  # reconstruct_exllama_8bit
    # --linear-backend triton: the _LINEAR_BACKEND_KERNEL_MAP["triton"] Linear kernels in place of Machete / CUTLASS
    "composed:gptq:meta-llama/Llama-3.1-8B-Instruct@linear-backend=triton",       # TritonW4A16: triton_w4a16_gemm_kernel
    "composed:w8a8-int8:meta-llama/Llama-3.1-8B-Instruct@linear-backend=triton",  # TritonInt8ScaledMM: scaled_mm_kernel
    "meta-llama/Llama-3.1-8B-Instruct@quantization=fp8_per_block,linear-backend=triton",  # _w8a8_triton_block_scaled_mm
)


@dataclass(frozen=True)
class Reach:
    """Where a kernel is first launched: the (model, workload) and the FULL step's id."""
    model: str
    workload: str
    step: str

    @property
    def label(self) -> str:
        return f"{self.model} {self.workload}"


@dataclass(frozen=True)
class ReachMap:
    """qualified kernel name -> its first :class:`Reach`, over ``order``."""
    order: tuple[tuple[str, str], ...]                 # (model, workload) consulted, in order
    kernels: Mapping[str, Reach] = field(default_factory=dict)
    failed: tuple[tuple[str, str], ...] = ()           # (model, reason): traces that failed
    key: str = ""
    cached: bool = False                               # read from the disk cache (nothing traced)

    def get(self, qualified: str) -> Reach | None:
        return self.kernels.get(qualified)

    def pairs(self) -> dict[str, tuple[str, str]]:
        """qualified -> (model, workload), what :func:`vkc.batch.plan.plan_jobs` takes."""
        return {q: (r.model, r.workload) for q, r in sorted(self.kernels.items())}

    def describe(self) -> str:
        from vkc.modelcfg.variants import is_variant

        ids = list(dict.fromkeys(m for m, _ in self.order))
        n_var = sum(1 for m in ids if is_variant(m))
        also = f" and {n_var} variant sources" if n_var else ""
        text = (f"{len(self.kernels)} kernels reached by {len(ids) - n_var} bundled models{also} x "
                f"{len(WORKLOAD_ORDER)} workloads, {'read from the reach cache' if self.cached else 'built from their traces'}")
        return text + (f", {len(self.failed)} model(s) failed" if self.failed else "")


def reach_order(models: Sequence[str] | None = None) -> tuple[str, ...]:
    """The bundled models in the order they are consulted (see the module docstring)."""
    from vkc.modelcfg import DEFAULT_MODELS, bundled_ids

    return tuple(dict.fromkeys(models if models is not None else (*DEFAULT_MODELS, *bundled_ids())))


def reach_sources() -> tuple[str, ...]:
    """The variant sources consulted after the bundled models (:data:`REACH_SOURCES`)."""
    return REACH_SOURCES


def reach_map(index: KernelIndex, *, models: Sequence[str] | None = None, sources: Sequence[str] | None = None,
              jobs: int = 1, use_cache: bool = True, warn: TextIO | None = None) -> ReachMap:
    """The reach map of ``index``'s tree over ``models`` (default :func:`reach_order`), then ``sources``
    (default: :func:`reach_sources` when ``models`` is not given, else none).

    Never raises for a model whose config or trace fails: one ``vkc: warning:`` line on ``warn``
    (default stderr) and that model reaches nothing."""
    warn = warn if warn is not None else sys.stderr
    extra = tuple(sources) if sources is not None else (reach_sources() if models is None else ())
    order = tuple(dict.fromkeys((*reach_order(models), *extra)))
    loaded: dict[str, ModelConfig] = {}
    trace_keys: list[tuple[str, str]] = []
    failed: list[tuple[str, str]] = []
    for m in order:
        try:
            cfg, tkey = _config_and_key(index, m)
        except Exception as e:  # noqa: BLE001 -- a model that cannot be read reaches nothing, loudly
            failed.append((m, f"config not loaded ({_reason(e)})"))
            continue
        loaded[m] = cfg
        trace_keys.append((m, tkey))
    key = _key(index, trace_keys)
    pairs = tuple((m, w) for m in order for w in WORKLOAD_ORDER)
    if use_cache and not failed and (hit := _read(key, pairs)) is not None:
        return hit
    traces = _trace_all(index, loaded, jobs, failed)
    for m, why in failed:
        print(f"vkc: warning: reach map: {m}: {why}; kernels it launches take the next "
              "model that does, else the default model", file=warn)
    kernels = _first_reach(index, [(m, traces[m]) for m in order if m in traces])
    out = ReachMap(order=pairs, kernels=kernels, failed=tuple(sorted(failed)), key=key)
    if not failed:
        _write(out)
    return out


# --------------------------------------------------------------------------- internals


def _reason(e: BaseException) -> str:
    from vkc.errors import VkcError

    text = e.message if isinstance(e, VkcError) else f"{type(e).__name__}: {e}"
    return " ".join(str(text).split())[:300]


def _config_and_key(index: KernelIndex, model: str) -> tuple[ModelConfig, str]:
    """The model's config (as the workers load it) and its trace's cache key."""
    from vkc.invoke.triton.modeltraced.session import trace_options
    from vkc.modelcfg import load_model_cached
    from vkc.modelcfg.fetch import fetch_config
    from vkc.modeltrace.trace import cache_key

    cfg = load_model_cached(model)
    raw = dict(fetch_config(cfg.model_id).config)   # what trace_model keys its cache on
    return cfg, cache_key(index.tree, raw, trace_options(cfg))


def _key(index: KernelIndex, trace_keys: Sequence[tuple[str, str]]) -> str:
    from vkc.index.cache import cache_key
    from vkc.modeltrace.trace import module_source_hash

    blob = {"format": FORMAT, "vkc": vkc.__version__, "tree": cache_key(index.tree),
            "traces": [list(t) for t in trace_keys], "workloads": list(WORKLOAD_ORDER),
            "rules": {m: module_source_hash(m) for m in RULE_MODULES}}
    return hashlib.sha256(json.dumps(blob, sort_keys=True).encode()).hexdigest()[:32]


def _trace_all(index: KernelIndex, loaded: Mapping[str, ModelConfig], jobs: int,
               failed: list[tuple[str, str]]) -> dict[str, Any]:
    """Each model's trace (cached ones are read; cold ones traced ``jobs`` at a time)."""
    from concurrent.futures import ThreadPoolExecutor

    from vkc.invoke.triton.modeltraced import session

    def one(m: str) -> tuple[str, Any, str | None]:
        try:
            return m, session.model_trace_for(index.tree, loaded[m]), None
        except Exception as e:  # noqa: BLE001 -- one warning line, the model reaches nothing
            return m, None, _reason(e)

    out: dict[str, Any] = {}
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        for m, trace, why in pool.map(one, list(loaded)):
            if why is None:
                out[m] = trace
            else:
                failed.append((m, f"model trace failed ({why})"))
    return out


def _first_reach(index: KernelIndex, traces: Sequence[tuple[str, Any]]) -> dict[str, Reach]:
    from vkc.batch.used import op_map, step_kernels
    from vkc.invoke.triton.modeltraced.session import FULL_STEPS

    known = {k.qualified: k for k in index.kernels if k.role == "entry"}
    ops: Callable[[str], Any] = op_map(index)
    out: dict[str, Reach] = {}
    for m, trace in traces:
        for w in WORKLOAD_ORDER:
            spec = FULL_STEPS[w]
            step = next((s for s in trace.steps if s.spec == spec), None)
            if step is None:
                continue
            for q in sorted(step_kernels(step, known, ops, tree=index.tree)):
                out.setdefault(q, Reach(m, w, spec.id))
    return dict(sorted(out.items()))


def _path(key: str) -> Path:
    from vkc.source import cache_dir

    return Path(cache_dir()) / "reach" / f"{key}.json"


def _read(key: str, pairs: tuple[tuple[str, str], ...]) -> ReachMap | None:
    try:
        d = json.loads(_path(key).read_text())
        if d.get("format") != FORMAT or d.get("key") != key:
            return None
        kernels = {q: Reach(str(v[0]), str(v[1]), str(v[2])) for q, v in d["kernels"].items()}
    except (OSError, ValueError, KeyError, TypeError, IndexError):
        return None    # missing or damaged: rebuilt and replaced
    return ReachMap(order=pairs, kernels=dict(sorted(kernels.items())), key=key, cached=True)


def _write(rm: ReachMap) -> None:
    from vkc.atomic import store_cache

    path = _path(rm.key)
    path.parent.mkdir(parents=True, exist_ok=True)
    store_cache(path, json.dumps({"format": FORMAT, "key": rm.key, "order": [list(p) for p in rm.order],
                                  "kernels": {q: [r.model, r.workload, r.step] for q, r in rm.kernels.items()}},
                                 sort_keys=True, indent=1))
