"""Model ids that name a variant: a model served with options, or an architecture's config class defaults.

Grammar (any ``--model`` of ``vkc collect`` / ``vkc model kernels``)::

    MODEL@KEY=VALUE[,KEY=VALUE...]   MODEL (a hub id, a bundled snapshot, defaults:ARCH or composed:...) served with options
    defaults:ARCHITECTURE            the architecture's config class defaults (bundled, ``modelcfg/defaults/``)
    defaults:ARCHITECTURE+TAG        the same class's defaults with the kwargs that switch on a part the defaults
                                     leave off (bundled beside it; e.g. ``Qwen4ExpForCausalLM+qsa``: its QSA layers)
    composed:SCHEME:MODEL            MODEL's config with a quantization checkpoint format's quantization_config
                                     (bundled, ``modelcfg/composed/SCHEME.json``); COMPOSED, not a real checkpoint

KEY is one of :data:`SERVING_KEYS`, named after vLLM's own serve flags (``sampling=MIX``: the
requests' sampling parameters, a mix of :mod:`vkc.modeltrace.mixes`); the config is MODEL's,
unchanged: the options change how vLLM serves it, not what it is (the model trace reads them,
:func:`vkc.modeltrace.variants.serving_variant`).  A ``defaults:`` config is not a real checkpoint:
the config class's ``to_dict()`` with ``architectures`` and the dtype (bfloat16) set, values JSON
cannot hold (``Infinity``) left to the class's default; the model trace cuts its layers as for any
model.  Each bundled file records the class, the transformers version and what was dropped;
``bench/reach_sources.py defaults`` regenerates them.

A ``composed:`` config is not a real checkpoint either: MODEL's config.json (a plain hub id or bundled
snapshot) with ``quantization_config`` set to the bundled scheme's, which is copied from a real
checkpoint's config.json that the scheme file cites (``from``); the weights it describes do not exist
(the model trace loads dummy weights anyway).  The id itself says ``composed:``, and the config's
sources and notes (every artifact header's config-source line) say "COMPOSED, not a checkpoint".
Schemes: :func:`composed_ids`.

A variant id is what the artifact header's command, ``collect_results.json`` and the reach map name,
so an artifact made from a variant trace regenerates from its header.
"""
from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from vkc.errors import ModelError

__all__ = ["COMPOSED_PREFIX", "DEFAULTS_PREFIX", "SERVING_KEYS", "Variant", "composed_ids", "defaults_ids",
           "fetch_variant", "is_variant", "parse_variant"]

DEFAULTS_PREFIX = "defaults:"
COMPOSED_PREFIX = "composed:"
SEP = "@"
# key -> the values vkc traces (vLLM's flag: --kv-cache-dtype, --attention-backend, --speculative-config,
# --quantization, --enable-lora with --max-lora-rank, --kda-prefill-backend; sampling: the requests' SamplingParams, a named mix of per-request request options).
# quantization: vLLM 0.33.0's online shorthands (vllm/config/quantization.py
# _ONLINE_SHORTHANDS): a bf16 checkpoint quantized while it loads, so the config stays MODEL's.
# ``fp8`` is not one: 0.33.0's Fp8Config refuses a checkpoint that is not fp8 ("no longer supports online
# quantization"); ``nvfp4_per_token`` is Blackwell-only (vkc traces an H100).  ``moe_wna16`` is not online: it
# takes a GPTQ/AWQ checkpoint's MoE experts to vLLM's MoeWNA16 method (MoeWNA16Config.override_quantization_method:
# only when the config's quantization_config is gptq 4/8-bit without act order, or awq 4-bit), whose experts vLLM
# runs in Triton (fused_moe_kernel_gptq_awq; Marlin is not allowed for a MoeWNA16Config); its Linears stay the
# checkpoint's method (AutoGPTQ / AutoAWQ) -- so it is for a composed:gptq: / composed:awq: MoE model.
SERVING_KEYS: dict[str, tuple[str, ...]] = {
    # turboquant_* / ultraquant_4bit (config/cache.py CacheDType): packed K|V caches, served by the TURBOQUANT /
    # ULTRAQUANT backend (give it: vkc's default TRITON_ATTN takes neither dtype).  Not here: nvfp4 / nvfp4_4over6
    # (FlashInfer only: TRT-LLM on SM 10.x, its FA2 path on SM 9.0 for nvfp4, flashinfer.py:114 and :654 -- kernels
    # outside the tree, and a recording stand-in in the worker), nvfp4_ds_mla (Blackwell MLA)
    "kv-cache-dtype": ("fp8", "int4_per_token_head", "int8_per_token_head", "fp8_per_token_head",
                       "turboquant_k8v4", "turboquant_4bit_nc", "turboquant_k3v4_nc", "turboquant_3bit_nc",
                       "ultraquant_4bit"),
    # FLASH_ATTN_MLA_SPARSE: vLLM's first sparse MLA backend on SM 9.0 (platforms/cuda.py, DeepSeek-V3.2's 576 head)
    "attention-backend": ("FLASH_ATTN", "TRITON_ATTN", "TRITON_MLA", "FLASH_ATTN_MLA_SPARSE", "TURBOQUANT",
                          "ULTRAQUANT"),
    "speculative": ("ngram", "ngram-block", "mtp", "draft-model"),
    # --speculative-config's "model" for speculative=draft-model: a bundled model of the target's family
    "draft-model": ("meta-llama/Llama-3.1-8B-Instruct",),
    "sampling": ("mixed", "thinking"),         # vkc's sampling mixes other than the default (vkc.modeltrace.mixes.MIXES)
    "watermark": ("gumbel",),       # --watermark-config (vkc.modeltrace.watermark.WATERMARK_CONFIGS)
    "reasoning-parser": ("qwen3",),  # --reasoning-parser (vkc.modeltrace.thinking.REASONING_PARSERS)
    "return-sampling-mask": ("true",),   # --return-sampling-mask (vkc.modeltrace.engine_flags)
    "compute-nans": ("true",),      # VLLM_COMPUTE_NANS_IN_LOGITS=1 (vkc.modeltrace.engine_flags)
    "quantization": ("fp8_per_tensor", "fp8_per_block", "fp8_per_channel", "int8_per_channel_weight_only",
                     "mxfp8", "mxfp4", "moe_wna16"),
    # --enable-lora --max-lora-rank VALUE (vLLM's MaxLoRARanks), --max-loras 1 (vkc.modeltrace.lora)
    "lora": ("1", "8", "16", "32", "64", "128", "256", "320", "512"),
    # --kda-prefill-backend (EngineArgs.kda_prefill_backend -> additional_config["kda_prefill_backend"], read by
    # the KDA layers: glm5next/common/kda.py, kimi_gdn_linear_attn.py): "triton" is the in-tree chunked Triton
    # prefill that "auto" replaces by FlashKDA (vllm._flashkda_C, an optional extension) on SM 9.0 / bf16 /
    # head_dim 128 / a bounded gate; "flashkda" and "flashinfer" run outside the tree, "fused" is ROCm-only
    "kda-prefill-backend": ("triton",),
    # recording stand-ins of libraries an H100 install of vLLM has and the worker lacks (vkc.modeltrace.recorded):
    # DeepGEMM (vendored by vLLM's CUDA wheel; the DeepSeek-V3.2/V4 sparse indexer requires it), FlashMLA
    # (built into the wheel; V4's attention), TileLang (requirements/cuda.txt; V4's hyper-connection ops)
    "deep-gemm": ("recorded",),
    "flash-mla": ("recorded",),
    "tilelang": ("recorded",),
    "cute-dsl": ("recorded",),      # nvidia-cutlass-dsl + quack (requirements/cuda.txt); V3.2/V4 import CuTe DSL ops
    # --block-size (vkc's default is 16): the DeepSeek-V4 family's sparse MLA takes only 256
    # (models/deepseek_v4/sparse_mla.py get_supported_kernel_block_sizes), FLASH_ATTN_MLA_SPARSE multiples of 64
    # (v1/attention/backends/mla/flashattn_mla_sparse.py): the sizes vLLM picks for them unasked
    "block-size": ("64", "256"),
    # --linear-backend (EngineArgs.linear_backend -> KernelConfig.linear_backend, read by
    # model_executor/kernels/linear/__init__.py _resolve_backend_kernels): "exllama" keeps only the Exllama
    # mixed-precision kernel for a GPTQ checkpoint's Linears (choose_mp_linear_kernel; "auto" takes Machete on
    # SM 9.0), whose exllama.py calls _C::gptq_shuffle at load and _C::gptq_gemm in the forward; "triton" keeps the
    # _LINEAR_BACKEND_KERNEL_MAP["triton"] kernels (TritonW4A16 / TritonInt8ScaledMM / TritonFp8BlockScaledMM)
    "linear-backend": ("exllama", "triton"),
    # --dtype (EngineArgs.dtype): float16, the activation dtype ExllamaLinearKernel.can_implement requires
    # ("Exllama only supports float16 activations") and AutoGPTQ-era checkpoints' own torch_dtype
    "dtype": ("float16",),
}


@dataclass(frozen=True)
class Variant:
    base: str                                   # the model the options apply to ("" for a bare defaults:ARCH)
    options: tuple[tuple[str, str], ...]        # (key, value) in the order given
    defaults: str | None = None                 # ARCHITECTURE of a defaults: base
    composed: str | None = None                 # SCHEME of a composed:SCHEME:MODEL base
    model: str = ""                             # MODEL of a composed: base (the config it starts from)

    def option(self, key: str) -> str | None:
        return dict(self.options).get(key)


def is_variant(model: str) -> bool:
    return SEP in model or model.startswith((DEFAULTS_PREFIX, COMPOSED_PREFIX))


def _composed(base: str, model: str) -> tuple[str, str] | None:
    """(SCHEME, MODEL) of a ``composed:SCHEME:MODEL`` base (None for another base)."""
    if not base.startswith(COMPOSED_PREFIX):
        return None
    scheme, colon, inner = base[len(COMPOSED_PREFIX):].partition(":")
    if not colon or not inner:
        raise ModelError(f"no model after the scheme in {model!r}", hint="composed:SCHEME:MODEL")
    if scheme not in composed_ids():
        raise ModelError(f"no bundled quantization scheme {scheme!r} in {model!r}",
                         hint="bundled: " + ", ".join(composed_ids()))
    if is_variant(inner):
        raise ModelError(f"the model of {model!r} is itself a variant", hint="composed:SCHEME:HUB_ID[@KEY=VALUE]")
    return scheme, inner


def parse_variant(model: str) -> Variant | None:
    """The variant ``model`` names (None for a plain id); a malformed one is a :class:`ModelError`."""
    if not is_variant(model):
        return None
    base, sep, rest = model.partition(SEP)
    options: list[tuple[str, str]] = []
    if sep:
        for item in rest.split(","):
            key, eq, value = item.partition("=")
            allowed = SERVING_KEYS.get(key)
            if not eq or allowed is None or value not in allowed:
                raise ModelError(f"unknown serving option {item!r} in model {model!r}",
                                 hint="MODEL@KEY=VALUE with " + "; ".join(
                                     f"{k}={'|'.join(v)}" for k, v in SERVING_KEYS.items()))
            if any(k == key for k, _ in options):
                raise ModelError(f"serving option {key!r} given twice in model {model!r}", hint="give it once")
            options.append((key, value))
        if not base:
            raise ModelError(f"no model before {SEP!r} in {model!r}", hint="MODEL@KEY=VALUE")
    arch = base[len(DEFAULTS_PREFIX):] if base.startswith(DEFAULTS_PREFIX) else None
    if arch is not None and arch not in defaults_ids():
        raise ModelError(f"no bundled config class defaults for {arch!r}",
                         hint="bundled: " + ", ".join(sorted(defaults_ids())))
    comp = _composed(base, model)
    return Variant(base, tuple(options), arch, comp[0] if comp else None, comp[1] if comp else "")


def _dir(name: str = "defaults") -> Any:
    return resources.files("vkc.modelcfg").joinpath(name)


@cache
def composed_ids() -> tuple[str, ...]:
    """The bundled quantization schemes of ``composed:`` ids, sorted."""
    return tuple(sorted(e.name[:-5] for e in _dir("composed").iterdir() if e.name.endswith(".json")))


@cache
def _composed_file(scheme: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(_dir("composed").joinpath(f"{scheme}.json").read_text(encoding="utf-8"))
    return data


@cache
def defaults_ids() -> tuple[str, ...]:
    """The architectures with bundled config class defaults, sorted."""
    return tuple(sorted(e.name[:-5] for e in _dir().iterdir() if e.name.endswith(".json")))


@cache
def _defaults_file(arch: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(_dir().joinpath(f"{arch}.json").read_text(encoding="utf-8"))
    return data


def fetch_variant(model: str, fetch_base: Callable[[str], Any], make: Callable[..., Any]) -> Any:
    """The raw config of a variant id, built by ``make`` (:class:`vkc.modelcfg.fetch.RawConfig`, passed in:
    fetch imports this module): its base's config (``fetch_base`` for a hub id or snapshot, the bundled
    file for ``defaults:``), under the variant's id."""
    RawConfig = make

    v = parse_variant(model)
    assert v is not None
    if v.defaults is not None:
        d = _defaults_file(v.defaults)
        what = (f"{d['config_class']}() defaults (transformers {d['transformers_version']}), cut to layers "
                f"{d['cut'].get('kept_layers', 'all')} of {d['cut'].get('of', 'them')}; not a checkpoint")
        arch = ",".join(d["config"].get("architectures", [v.defaults]))    # ARCH+TAG ids: the file's ARCH
        note = f"{v.base}: {what} (architectures={arch}, bfloat16)"
        return RawConfig(model, json.loads(json.dumps(d["config"])), "snapshot",
                         (f"vkc:modelcfg/defaults/{v.defaults}.json: {what}",), (note,))
    dt = v.option("dtype")          # --dtype: vLLM's activation dtype, not the config's torch_dtype
    why = f"{model}: served with vLLM's --dtype {dt}: the activations are {dt}; the dtype line above is the config's"
    served = (f"{why} torch_dtype",) if dt else ()
    if v.composed is not None:
        d = _composed_file(v.composed)
        raw = fetch_base(v.model)
        what = (f"{v.model}'s config with the quantization_config of {d['from']} ({d['what']}); COMPOSED, "
                "not a checkpoint")
        config = {**raw.config, "quantization_config": json.loads(json.dumps(d["quantization_config"]))}
        return RawConfig(model, config, raw.origin, (*raw.sources, f"vkc:modelcfg/composed/{v.composed}.json: {what}"),
                         (*raw.warnings, f"{v.base}: {what}", *served))
    raw = fetch_base(v.base)
    return RawConfig(model, dict(raw.config), raw.origin, tuple(raw.sources), (*raw.warnings, *served))
