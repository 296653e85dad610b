"""Model-traced CUDA examples: a recipe's host program sized from the model's traced op call.

:mod:`.opmap` maps each custom op to the kernels its CUDA implementation launches (from the tree's
``torch_bindings.cpp`` and vkc's index); :mod:`.bind` reads one traced call's tensors into the
recipe's sizes; :mod:`.attempt` is the step ``invoke_cuda`` takes before the recipe path.
"""
from __future__ import annotations

from .attempt import Attempt, attempt, attempt_with_trace
from .bind import BINDERS, Binding, bind_call, bound_ops, call_text, describe_args
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
    "call_text",
    "describe_args",
    "op_kernel_map",
    "registrations",
]
