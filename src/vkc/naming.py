"""Kernel names to safe file stems (a leaf: index, invoke, write and verify use it).

A kernel name is accepted in three forms, and maps to a file stem as follows:

=================================================  ==============================================
name given                                         file stem (``<stem>.json``, ``<stem>.py|.cu``)
=================================================  ==============================================
``rms_norm_kernel`` (bare identifier)               ``rms_norm_kernel``
``FusedQKVRMSNormKernel.kernel`` (class member)     ``FusedQKVRMSNormKernel.kernel``
``vllm.v1.attention.ops.prefix_prefill:_fwd_kernel`` ``vllm.v1.attention.ops.prefix_prefill--_fwd_kernel``
``csrc/layernorm_kernels.cu:rms_norm_kernel``       ``csrc.layernorm_kernels.cu--rms_norm_kernel``
``csrc/x.cu:k@120`` (overload at line 120)          ``csrc.x.cu--k@120``
=================================================  ==============================================

``:`` becomes ``--`` and ``/`` becomes ``.``; nothing else changes.  Anything else is
rejected: empty names, ``..``, absolute paths, backslashes, NUL and other control
characters, and characters outside ``[A-Za-z0-9_./:@-]``.  A stem never contains a
path separator, so no kernel name can write outside the output folder.
"""
from __future__ import annotations

import re

from vkc.errors import KernelNameError

__all__ = ["MAX_LEN", "check_kernel_name", "safe_stem"]

_BARE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")
_PY_QUALIFIED = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*:[A-Za-z_][A-Za-z0-9_.]*")
_CSRC_QUALIFIED = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-]*(/[A-Za-z0-9_][A-Za-z0-9_.\-]*)*:[A-Za-z_][A-Za-z0-9_]*(@[0-9]+)?")
MAX_LEN = 200


def check_kernel_name(name: str) -> str:
    """Return ``name`` if it is an acceptable kernel name, else raise KernelNameError."""
    hint = "give a kernel name such as rms_norm_kernel, module:qualname or csrc/file.cu:name"
    if not name:
        raise KernelNameError("empty kernel name", hint=hint)
    bad = [c for c in name if ord(c) < 32 or ord(c) == 127 or c == "\\"]
    if bad:
        raise KernelNameError(f"kernel name {name!r} contains control characters or backslashes", hint=hint)
    if len(name) > MAX_LEN:
        raise KernelNameError(f"kernel name is longer than {MAX_LEN} characters", hint=hint)
    if name.startswith(("/", ".")) or ".." in name:
        raise KernelNameError(f"kernel name {name!r} looks like a path", hint=hint)
    if not (_BARE.fullmatch(name) or _PY_QUALIFIED.fullmatch(name) or _CSRC_QUALIFIED.fullmatch(name)):
        raise KernelNameError(f"kernel name {name!r} is not an identifier or a qualified kernel name", hint=hint)
    return name


def safe_stem(name: str) -> str:
    """File stem for a (checked) kernel name; see the module docstring for the mapping."""
    check_kernel_name(name)
    stem = name.replace(":", "--").replace("/", ".")
    assert "/" not in stem and "\\" not in stem and stem not in (".", "..")
    return stem
