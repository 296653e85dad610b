"""Model-traced CUDA examples: a recipe's host program sized from the model's traced op call.

:mod:`.opmap` maps each custom op to the kernels its CUDA implementation launches (from the tree's
``torch_bindings.cpp`` and vkc's index); :mod:`.bind` reads one traced call's tensors into the
recipe's sizes; :mod:`.attempt` is the step ``invoke_cuda`` takes before the recipe path; :mod:`.dispatch` says which of an
op's kernels one traced call launches.
"""
from __future__ import annotations

from .attempt import Attempt, attempt, attempt_with_trace
from .bind import BINDERS, Binding, bind_call, bound_ops, call_text, describe_args
from .dispatch import call_launches, launched_kernels
from .opmap import OpKernels, op_kernel_map, registrations

__all__ = [
    "BINDERS",
    "Attempt",
    "Binding",
    "OpKernels",
    "attempt",
    "attempt_with_trace",
    "bind_call",
    "bound_ops",
    "call_launches",
    "call_text",
    "describe_args",
    "launched_kernels",
    "op_kernel_map",
    "registrations",
]
