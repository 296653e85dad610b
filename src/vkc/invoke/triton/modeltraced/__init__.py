"""Model-traced Triton examples: a kernel's launch exactly as vLLM's own model step made it.

:func:`model_trace_for` traces the model (both workloads, FULL and SMALL steps, one cached worker
run); :func:`modeltraced_plan` turns a kernel's launches in a traced step into a
:class:`ModelTracedPlan` (FULL, FULL.2, ... and SMALL, SMALL.2, ...) or None with the reason.
"""
from __future__ import annotations

from .build import ConfigRole, ModelTracedPlan, kv_blocks, modeltraced_plan
from .inits import Refused, StepFacts, init_for
from .session import FULL_STEPS, SMALL_STEPS, model_trace_enabled, model_trace_for, steps_for, trace_options

__all__ = [
    "FULL_STEPS",
    "SMALL_STEPS",
    "ConfigRole",
    "ModelTracedPlan",
    "Refused",
    "StepFacts",
    "init_for",
    "kv_blocks",
    "model_trace_enabled",
    "model_trace_for",
    "modeltraced_plan",
    "steps_for",
    "trace_options",
]
