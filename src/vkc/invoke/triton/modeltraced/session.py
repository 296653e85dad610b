"""Which steps a model-traced example uses, and the one trace call that serves them.

FULL is the workload's serving step (the ``vkc model kernels`` defaults: decode 64 sequences x
4096 context, prefill 4 x 2048); SMALL a small step traced in the same process (decode 2 x 64,
prefill 1 x 16) for the CPU interpreter.  :func:`model_trace_for` traces all four steps of both
workloads in one worker run (cached on disk by :func:`vkc.modeltrace.trace_model`), so every kernel
and both workloads of one model reuse it; batch code can call it too.  A SMALL step that fails leaves
the trace standing without it (``TraceOptions.optional_steps``; the trace's warning and
``notes["failed_steps"]`` say why).  ``VKC_MODEL_TRACE=0``
disables model tracing (:func:`model_trace_enabled`).
"""
from __future__ import annotations

import os

from vkc.modeltrace.records import ModelTrace, StepSpec, TraceOptions
from vkc.records import ModelConfig, SourceTree

__all__ = ["FEATURES", "FULL_STEPS", "SMALL_STEPS", "model_trace_enabled", "model_trace_for", "steps_for", "trace_options"]

FULL_STEPS = {"decode": StepSpec("decode", 64, ctx=4096), "prefill": StepSpec("prefill", 4, prompt_len=2048)}
SMALL_STEPS = {"decode": StepSpec("decode", 2, ctx=64), "prefill": StepSpec("prefill", 1, prompt_len=16)}
# speculative decoding stays out: it changes the decode forward (4 tokens per sequence)
FEATURES = ("bitmask", "sampler")


def model_trace_enabled() -> bool:
    """False when ``VKC_MODEL_TRACE`` is ``0`` (tests and the byte-identity baseline)."""
    return os.environ.get("VKC_MODEL_TRACE", "1").strip().lower() not in ("0", "false", "no", "off")


def steps_for(workload: str) -> tuple[StepSpec, StepSpec]:
    """(FULL, SMALL) steps of a workload."""
    return FULL_STEPS[workload], SMALL_STEPS[workload]


def trace_options(model: ModelConfig) -> TraceOptions:
    """The serving options of a model-traced example: the ``vkc model kernels`` defaults, plus the
    serving features every step runs (:data:`FEATURES`: vLLM's sampler and the structured-output
    bitmask, traced after the forward; the forward's events are the plain trace's), and the serving
    options a variant id ``MODEL@KEY=VALUE,...`` names (:func:`vkc.modeltrace.variants.serving_variant`)."""
    from vkc.modeltrace.features import with_features

    steps = sorted({*FULL_STEPS.values(), *SMALL_STEPS.values()},
                   key=lambda s: (s.workload, s.batch, s.ctx, s.prompt_len))
    from vkc.modeltrace.variants import serving_variant

    # a SMALL step is vkc's own (the CPU interpreter's size): where vLLM takes a path there that the
    # worker cannot run (e.g. a CuTe DSL kernel for few tokens), the FULL steps still stand
    # (the trace says which step failed; a model-traced example that needs it falls back loudly)
    small = tuple(sorted(s.id for s in SMALL_STEPS.values()))
    plain = TraceOptions(tuple(steps), attention_backend="TRITON_MLA" if model.is_mla else "TRITON_ATTN",
                         optional_steps=small)
    return serving_variant(with_features(plain, FEATURES), model.model_id)   # MODEL@OPTIONS: its serving options


def model_trace_for(tree: SourceTree, model: ModelConfig) -> ModelTrace:
    """The model's trace for both workloads, FULL and SMALL steps (one worker run, cached)."""
    from vkc.modeltrace import trace_model

    return trace_model(tree, model, trace_options(model))
