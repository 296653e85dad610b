"""Raw HF config.json dict -> normalised, validated :class:`ModelConfig`.

Family conventions used here are the ones documented in shared/models/README.md:
multimodal ``text_config`` nesting (Gemma-3, Llama-4), Gemma-3 class defaults and its
5:1 sliding/global layer pattern, Qwen3-Next's full-attention-every-4th-layer hybrid,
gpt-oss attention sinks, MLA head sizes (DeepSeek-V3/R1, Kimi-K2) and the per-family
names of the MoE keys.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from vkc.errors import ModelError
from vkc.records import ModelConfig

from .bounds import check_eps, check_int

ESSENTIAL = ("hidden_size", "num_attention_heads", "num_hidden_layers")
# transformers Gemma3TextConfig defaults for keys the published text_config omits
GEMMA3_TEXT_DEFAULTS = {"vocab_size": 262208, "max_position_embeddings": 131072, "rms_norm_eps": 1e-6,
                        "sliding_window_pattern": 6}
_TOP_LEVEL_ONLY = ("torch_dtype", "dtype", "architectures", "model_type")
# torch_dtype values (torch's names, with or without "torch.") -> the activation dtype
DTYPES = {"float16": "float16", "half": "float16", "bfloat16": "bfloat16", "float32": "float32",
          "float": "float32"}


def normalise(raw: Mapping[str, Any], *, model_id: str, origin: str,
              sources: tuple[str, ...] = (), warnings: tuple[str, ...] = ()) -> ModelConfig:
    """Build the ModelConfig; raises ModelError for missing keys or H_q % H_kv != 0."""
    n = _Normaliser(raw, model_id, list(warnings))
    return n.build(origin, sources)


class _Normaliser:
    def __init__(self, raw: Mapping[str, Any], model_id: str, warnings: list[str]):
        self.top = dict(raw)
        self.model_id = model_id
        self.warnings = warnings
        text = raw.get("text_config")
        self.cfg = {k: v for k, v in raw.items() if k not in ("text_config", "vision_config")}
        if isinstance(text, Mapping):
            self.cfg.update({k: v for k, v in text.items() if k not in _TOP_LEVEL_ONLY or k not in raw})
        types = {str(t) for t in (raw.get("model_type"), self.cfg.get("model_type")) if t}
        self.family = types
        if types & {"gemma3", "gemma3_text"}:
            for key, value in GEMMA3_TEXT_DEFAULTS.items():
                if self.cfg.get(key) is None:
                    self.cfg[key] = value

    # -- typed getters ------------------------------------------------------------
    def int_(self, *keys: str) -> int | None:
        for key in keys:
            value = self.cfg.get(key)
            if value is None:
                continue
            return check_int(self.model_id, key, value)
        return None

    def float_(self, *keys: str) -> float | None:
        for key in keys:
            value = self.cfg.get(key)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                return check_eps(self.model_id, key, float(value) if abs(value) < 1e300 else float("inf"))
        return None

    def family_is(self, *prefixes: str) -> bool:
        return any(t.startswith(prefixes) for t in self.family)

    # -- build ----------------------------------------------------------------------
    def build(self, origin: str, sources: tuple[str, ...]) -> ModelConfig:
        missing = [k for k in ESSENTIAL if self.cfg.get(k) is None]
        if missing:
            raise ModelError(f"config.json for {self.model_id} lacks essential keys: {', '.join(missing)}",
                             hint="pass the config.json of a transformer LLM (hidden_size, num_attention_heads, "
                                  "num_hidden_layers)")
        hidden = self.int_("hidden_size")
        hq = self.int_("num_attention_heads")
        layers = self.int_("num_hidden_layers")
        hkv = self.int_("num_key_value_heads")
        hkv = hq if hkv is None else hkv
        for key, value in (("hidden_size", hidden), ("num_attention_heads", hq),
                           ("num_hidden_layers", layers), ("num_key_value_heads", hkv)):
            if value is None or value <= 0:
                raise ModelError(f"config.json for {self.model_id}: {key} must be positive, got {value}",
                                 hint="fix the config.json value")
        assert hidden is not None and hq is not None and layers is not None and hkv is not None  # checked above
        if hq % hkv:
            raise ModelError(f"config.json for {self.model_id}: num_attention_heads {hq} is not a multiple of "
                             f"num_key_value_heads {hkv}", hint="grouped-query attention needs H_q % H_kv == 0")
        mla = {k: self.int_(k) for k in ("kv_lora_rank", "q_lora_rank", "qk_rope_head_dim",
                                         "qk_nope_head_dim", "v_head_dim")}
        head_dim = self._head_dim(hidden, hq, mla)
        experts = self.int_("num_experts", "num_local_experts", "n_routed_experts")
        experts = experts if experts else None
        top_k = self.int_("num_experts_per_tok", "experts_per_token", "moe_topk") if experts else None
        if experts and top_k is not None and top_k > experts:
            raise ModelError(f"config.json for {self.model_id}: num_experts_per_tok {top_k} is larger than the "
                             f"expert count {experts}", hint="a token is routed to at most num_experts experts")
        moe_inter = self.int_("moe_intermediate_size")
        if experts and moe_inter is None:
            # Mixtral / gpt-oss / Llama-4: intermediate_size is the per-expert width
            moe_inter = self.int_("intermediate_size")
        sliding = self._sliding_window()
        return ModelConfig(
            model_id=self.model_id,
            num_attention_heads=hq,
            num_key_value_heads=hkv,
            head_dim=head_dim,
            hidden_size=hidden,
            intermediate_size=self.int_("intermediate_size"),
            num_hidden_layers=layers,
            num_experts=experts,
            num_experts_per_tok=top_k,
            moe_intermediate_size=moe_inter,
            max_position_embeddings=self.int_("max_position_embeddings", "initial_context_length"),
            sliding_window=sliding,
            layer_types=self._layer_types(layers, sliding),
            attention_sinks=self.family_is("gpt_oss"),
            rope_scaling=self._rope_scaling(),
            qk_norm=self.family_is("qwen3", "gemma3") or bool(self.cfg.get("use_qk_norm")),
            qkv_bias=bool(self.cfg.get("attention_bias") or self.cfg.get("qkv_bias")),
            dtype=self._dtype(),
            vocab_size=self.int_("vocab_size"),
            rms_norm_eps=self.float_("rms_norm_eps", "layer_norm_eps", "layer_norm_epsilon"),
            model_type=_str(self.top.get("model_type") or self.cfg.get("model_type")),
            architectures=self._architectures(),
            warnings=tuple(self.warnings),
            sources=tuple(sources),
            origin=origin,  # type: ignore[arg-type]
            **mla,
        )

    def _head_dim(self, hidden: int, hq: int, mla: Mapping[str, int | None]) -> int:
        explicit = self.int_("head_dim")
        if mla["kv_lora_rank"] is not None and mla["qk_nope_head_dim"] and mla["qk_rope_head_dim"]:
            dim = mla["qk_nope_head_dim"] + mla["qk_rope_head_dim"]
            if explicit is not None and explicit != dim:
                self.warnings.append(f"MLA model: head_dim = qk_nope_head_dim + qk_rope_head_dim = {dim}; "
                                     f"the config's head_dim {explicit} is ignored")
            return dim
        if explicit is not None:
            if explicit * hq != hidden:
                self.warnings.append(f"head_dim * num_attention_heads = {explicit}*{hq} = {explicit * hq} != "
                                     f"hidden_size {hidden}; the explicit head_dim {explicit} is used")
            return explicit
        if hidden % hq:
            self.warnings.append(f"hidden_size {hidden} is not a multiple of num_attention_heads {hq} and there "
                                 f"is no head_dim key; head_dim = {hidden}//{hq} = {hidden // hq}")
        return hidden // hq

    def _sliding_window(self) -> int | None:
        if self.cfg.get("use_sliding_window") is False:
            return None  # Qwen2/3 carry a window value that is switched off
        window = self.int_("sliding_window")
        return window if window else None

    def _layer_types(self, layers: int, sliding: int | None) -> tuple[str, ...] | None:
        explicit = self.cfg.get("layer_types")
        if isinstance(explicit, (list, tuple)) and explicit:
            types = tuple(str(t) for t in explicit)
            if len(types) != layers:
                self.warnings.append(f"layer_types has {len(types)} entries but num_hidden_layers is {layers}")
            return types
        if self.family_is("qwen3_next"):
            every = self.int_("full_attention_interval") or 4
            return tuple("full_attention" if (i + 1) % every == 0 else "linear_attention" for i in range(layers))
        if self.family_is("gemma3") and sliding:
            every = self.int_("sliding_window_pattern") or 6
            return tuple("full_attention" if (i + 1) % every == 0 else "sliding_attention" for i in range(layers))
        return None

    def _architectures(self) -> tuple[str, ...]:
        value = self.top.get("architectures") or self.cfg.get("architectures") or ()
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, (list, tuple)) or not all(isinstance(a, str) for a in value):
            raise ModelError(f"config.json for {self.model_id}: architectures must be a list of class names, "
                             f"got {str(value)[:40]!r}", hint="fix the config.json value")
        return tuple(value)

    def _rope_scaling(self) -> dict[str, Any] | None:
        for key in ("rope_scaling", "rope_parameters"):
            value = self.cfg.get(key)
            if isinstance(value, Mapping) and value:
                return dict(value)
        return None

    def _dtype(self) -> str:
        dtype = self.top.get("torch_dtype") or self.top.get("dtype") \
            or self.cfg.get("torch_dtype") or self.cfg.get("dtype")
        quant = self.top.get("quantization_config")
        if isinstance(quant, Mapping) and quant.get("quant_method"):
            self.warnings.append(f"weights are quantized (quantization_config.quant_method="
                                 f"{quant['quant_method']}); dtype is the unquantized activation dtype")
        if not dtype:
            self.warnings.append("config.json has no torch_dtype/dtype key; assuming bfloat16")
            return "bfloat16"
        name = dtype.removeprefix("torch.") if isinstance(dtype, str) else None
        if name not in DTYPES:
            raise ModelError(f"config.json for {self.model_id}: torch_dtype {str(dtype)[:40]!r} is not an "
                             "activation dtype vkc knows", hint=f"use one of {', '.join(sorted(DTYPES))}")
        return DTYPES[name]


def _str(value: Any) -> str | None:
    return str(value) if value else None
