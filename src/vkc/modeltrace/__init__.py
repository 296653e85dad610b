"""vkc.modeltrace: trace a model's decode/prefill step through vLLM's own code (the kernel map).

Entry point: :func:`trace_model` (``tree, model_cfg, options -> ModelTrace``).  One worker
subprocess (:mod:`.worker`) per (tree, config, options) runs every requested step; the start-up
steps it mirrors from vLLM's worker are the versioned :mod:`.checklist`.  :mod:`.render` turns a
trace into the ``vkc model kernels`` table or JSON.
"""
from __future__ import annotations

from .features import FeatureOptions, with_features
from .records import (
    ModelTrace,
    StepSpec,
    StepTrace,
    TensorArg,
    TracedEvent,
    TraceOptions,
)
from .trace import trace_model

__all__ = ["FeatureOptions", "ModelTrace", "StepSpec", "StepTrace", "TensorArg", "TraceOptions", "TracedEvent",
           "trace_model", "with_features"]
