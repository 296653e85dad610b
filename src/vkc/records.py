"""Frozen records the pipeline stages hand each other.

source  -> SourceTree
index   -> KernelIndex (of KernelEntry, each with LaunchSite)
extract -> Extraction (source_code + Handoff, the spec's handoff record)
modelcfg-> ModelConfig
invoke  -> Invocation (invocation_example + the Handoff completed with values)
write   -> WriteResult
This is a leaf module: it imports nothing from vkc.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

Lang = Literal["triton", "cuda"]


@dataclass(frozen=True)
class SourceTree:
    root: Path              # directory holding vllm/ and csrc/
    version: str            # "0.33.0", or "local" for --vllm PATH without a version
    origin: str             # sdist URL or the local path given
    sha256: str | None = None  # of the sdist, when one was used

    @property
    def label(self) -> str:
        return f"vLLM {self.version}"

    @property
    def citation(self) -> str:
        """How headers cite the tree: the sdist's file name and sha256 (never a download URL), or the path."""
        if self.sha256:
            name = self.origin.rstrip("/").rsplit("/", 1)[-1].split("#", 1)[0] or f"vllm-{self.version}.tar.gz"
            return f"{self.version} (sdist {name}, sha256 {self.sha256})"
        return f"{self.version} ({self.origin})"


@dataclass(frozen=True)
class LaunchSite:
    file: str               # path relative to the tree root ("vllm/..." or "csrc/...")
    line: int               # 1-based line of the launch
    wrapper: str | None     # qualname of the enclosing host function (Python) / function name (C++)
    form: str               # "grid" | "launcher_class" | "dispatcher" | "warmup" | "indirect" | "chevron" | "launch_ex" | "macro"
    text: str = ""          # verbatim launch text (first lines), for fallbacks and notes


@dataclass(frozen=True)
class KernelEntry:
    lang: Lang
    name: str               # bare name (function name)
    qualname: str           # Python qualname ("Cls.kernel") or C++ name with namespace ("vllm::rms_norm_kernel")
    file: str               # path relative to the tree root
    line: int               # 1-based line of the def / __global__ declaration (first decorator for Python)
    end_line: int
    module: str | None = None          # dotted module for Triton ("vllm.v1.attention.ops.prefix_prefill")
    role: str = "entry"                # "entry" | "helper" | "orphan"
    decorators: tuple[str, ...] = ()   # source text of each decorator (Triton)
    template_params: tuple[str, ...] = ()  # C++ template parameter declarations, verbatim
    # Not built for CUDA (vkc skips it): a ROCm-only definition, or (Triton) a module vLLM imports
    # only on a non-CUDA platform (ROCm, XPU, CPU, ...), then ``platform_note`` says why.
    rocm_only: bool = False
    launch_sites: tuple[LaunchSite, ...] = ()
    # The always-unique form, set by the index: ``module:qualname`` for Triton,
    # ``csrc/file.cu:name`` for CUDA (``csrc/file.cu:name@LINE`` when a file
    # defines the name more than once, e.g. enable_if overloads).
    qualified: str = ""
    platform_note: str = ""            # why a Triton kernel's module is platform-only ("" otherwise)


@dataclass(frozen=True)
class KernelIndex:
    tree: SourceTree
    kernels: tuple[KernelEntry, ...]


@dataclass(frozen=True)
class Handoff:
    """The spec's handoff record (section 3.1, "Expected Return")."""
    leaf_symbols: tuple[str, ...]
    arg_order: tuple[str, ...]
    grid_expr: str
    meta_params: Mapping[str, Any]
    guards: Mapping[str, Any]
    smem_formula: str | None
    stride_semantics: Literal["elements", "bytes"]
    notes: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "leaf_symbols": list(self.leaf_symbols),
            "arg_order": list(self.arg_order),
            "grid_expr": self.grid_expr,
            "meta_params": dict(self.meta_params),
            "guards": dict(self.guards),
            "smem_formula": self.smem_formula,
            "stride_semantics": self.stride_semantics,
            "notes": "; ".join(self.notes),
        }


@dataclass(frozen=True)
class Extraction:
    kernel: KernelEntry
    kernel_type: Lang
    source_code: str
    handoff: Handoff
    # Facts the invoker needs that are not part of the spec's handoff record,
    # e.g. Triton: {"module_file": "x.py"}; CUDA: {"instantiation": "...", "dispatch": ...}
    facts: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ModelConfig:
    model_id: str
    num_attention_heads: int | None          # H_q
    num_key_value_heads: int | None          # H_kv
    head_dim: int | None                     # explicit key wins; else hidden // H_q
    hidden_size: int | None
    intermediate_size: int | None
    num_hidden_layers: int | None
    num_experts: int | None
    num_experts_per_tok: int | None
    moe_intermediate_size: int | None
    max_position_embeddings: int | None      # or initial_context_length
    sliding_window: int | None
    layer_types: tuple[str, ...] | None
    attention_sinks: bool
    rope_scaling: Mapping[str, Any] | None
    qk_norm: bool
    qkv_bias: bool
    kv_lora_rank: int | None
    q_lora_rank: int | None
    qk_rope_head_dim: int | None
    qk_nope_head_dim: int | None
    v_head_dim: int | None
    dtype: str                               # "bfloat16", "float16", ...
    vocab_size: int | None
    rms_norm_eps: float | None
    model_type: str | None
    architectures: tuple[str, ...]
    warnings: tuple[str, ...]
    sources: tuple[str, ...]                 # canonical URLs (and where it came from)
    origin: Literal["hub", "snapshot", "file"]

    @property
    def is_mla(self) -> bool:
        return self.kv_lora_rank is not None


@dataclass(frozen=True)
class Invocation:
    code: str                                # the invocation_example
    handoff: Handoff                         # completed with traced values
    workload: str                            # "prefill" | "decode"
    model_id: str
    header: str = ""                         # the provenance header (also at the top of code)
    facts: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class WriteResult:
    path: str                                # as printed (relative when out dir is relative)
    size: int
    sha256: str
    model_id: str = ""                       # the model the invocation example is sized for
    invocation_mode: str = ""                # model-traced | recipe | test-traced | vllm-sized | synthesized
    invocation_source: str = ""              # which trace / recipe / test made the launch
    model_accurate: bool = False             # the mode is model-traced, recipe or test-traced
    reference_source: str = ""               # where the example's reference came from ("" = none)

    @property
    def line(self) -> str:
        return f"WROTE {self.path} size={self.size} sha256={self.sha256}"
