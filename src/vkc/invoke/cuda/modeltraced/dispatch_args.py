"""What the dispatch rules (:mod:`.dispatch` and its rule modules) read off a traced call.

A traced op call holds its arguments by schema name (:class:`~vkc.modeltrace.records.TracedEvent`):
a tensor as a :class:`TensorArg`, a scalar (and a ``Tensor?`` passed as None) as a :class:`ScalarArg`.
PyTorch's dispatcher drops trailing arguments equal to their schema default, so an absent argument
stands for its default; the readers below take that default from the caller (the schema text of
``csrc/**/torch_bindings.cpp``) and answer None (unknown) for an argument without one.

The target device is vkc's H100 (:data:`SM_VERSION`, :data:`NUM_SMS`, :data:`SMEM_OPTIN`): a host
function that asks the device takes these answers.
"""
from __future__ import annotations

import struct

from vkc.modeltrace.records import ScalarArg, TensorArg, TracedEvent

__all__ = [
    "GENERIC_DECL",
    "NO_DEFAULT",
    "NUM_SMS",
    "SMEM_OPTIN",
    "SM_VERSION",
    "VECTORIZED_DECL",
    "aligned",
    "f32",
    "given",
    "numel",
    "opt_bool",
    "opt_float",
    "opt_int",
    "opt_str",
    "tensor_given",
]

SM_VERSION = 90                 # get_device_prop()->major * 10 + minor
NUM_SMS = 132                   # multiProcessorCount
SMEM_OPTIN = 227 * 1024         # sharedMemPerBlockOptin

# the two enable_if forms of a width-templated norm kernel (layernorm_kernels.cu, layernorm_quant_kernels.cu):
# a text only that overload's declaration holds
VECTORIZED_DECL = "enable_if_t<(width > 0) && _typeConvert<scalar_t>::exists>"
GENERIC_DECL = "enable_if_t<(width == 0) || !_typeConvert<scalar_t>::exists>"
NO_DEFAULT = object()           # the schema gives the argument no default
_ABSENT = object()


def given(ev: TracedEvent, name: str) -> object:
    """The raw recorded argument (TensorArg / ScalarArg / tuple), or a marker when the call omits it."""
    for n, a in ev.args:
        if n == name:
            return a
    return _ABSENT


def tensor_given(ev: TracedEvent, name: str, *, default_none: bool) -> bool | None:
    """Whether the call passes the optional tensor ``name`` (not None); None: not recorded and no default."""
    a = given(ev, name)
    if isinstance(a, TensorArg):
        return True
    if isinstance(a, ScalarArg):
        return False if a.value is None else None
    return False if a is _ABSENT and default_none else None


def _value(ev: TracedEvent, name: str, default: object) -> object:
    a = given(ev, name)
    if isinstance(a, ScalarArg):
        return a.value
    return default if a is _ABSENT else NO_DEFAULT


def opt_int(ev: TracedEvent, name: str, default: object = NO_DEFAULT) -> int | None:
    v = _value(ev, name, default)
    return v if isinstance(v, int) and not isinstance(v, bool) else None


def opt_bool(ev: TracedEvent, name: str, default: object = NO_DEFAULT) -> bool | None:
    v = _value(ev, name, default)
    return v if isinstance(v, bool) else None


def opt_float(ev: TracedEvent, name: str, default: object = NO_DEFAULT) -> float | None:
    v = _value(ev, name, default)
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def opt_str(ev: TracedEvent, name: str, default: object = NO_DEFAULT) -> str | None:
    v = _value(ev, name, default)
    return v if isinstance(v, str) else None


def f32(x: float) -> float:
    """``(float)x``: the double rounded to single precision, as the C++ casts it."""
    return float(struct.unpack("f", struct.pack("f", x))[0])


def numel(t: TensorArg) -> int:
    n = 1
    for s in t.shape:
        n *= s
    return n


def aligned(t: TensorArg, nbytes: int) -> bool:
    """Whether the view's data pointer is ``nbytes``-aligned (allocations are 256-byte aligned)."""
    return (t.offset * t.itemsize) % nbytes == 0
