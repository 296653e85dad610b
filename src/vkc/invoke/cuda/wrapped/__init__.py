"""Wrapper-compiled CUDA examples: vLLM's own host function of an op, compiled against vkc's Tensor stand-in.

:mod:`.host` extracts the host function and the repo-local code it needs; :mod:`.check` says what the
stand-in (``templates/standin.cuh.j2``) provides; :mod:`.schema` reads the op's schema; :mod:`.args`
turns one op call into storages, views and arguments, :mod:`.fills` their contents; :mod:`.program`
renders the program (``templates/wrapped.cu.j2``): :func:`invoke_wrapped` takes an :class:`OpCall`
from any source (a model step, a test's capture).
"""
from __future__ import annotations

from .host import HostCode, WrapRefused, host_code
from .program import OpCall, invoke_wrapped, launch_text

__all__ = ["HostCode", "OpCall", "WrapRefused", "host_code", "invoke_wrapped", "launch_text"]
