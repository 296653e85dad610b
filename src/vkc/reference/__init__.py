"""vkc.reference: vLLM's own PyTorch reference for a kernel, extracted statically, with the
mapping from the kernel's buffers to the reference's tensors (``find_reference``).

Sources, in priority order: the native implementations of vLLM's IR ops (``vllm/ir/ops/``,
tolerances from ``vllm/ir/tolerances.py``), the ``forward_native`` of CustomOp layers, and the
reference functions vLLM's kernel tests compare against (``tests/kernels/**``, with the test's own
atol/rtol).  The mapping is data (:mod:`.table`); a kernel whose mapping is not known to hold gets
None with the reason, never a guess.
"""
from __future__ import annotations

from vkc.reference.find import LaunchFacts, find_reference, outputs_literal, spec_for
from vkc.reference.records import (
    EXACT_MODES,
    SOURCE_KINDS,
    Output,
    Reference,
    ReferenceLookup,
    RefSpec,
    SourceKind,
    Tolerance,
)

__all__ = ["EXACT_MODES", "SOURCE_KINDS", "LaunchFacts", "Output", "RefSpec", "Reference", "ReferenceLookup",
           "SourceKind", "Tolerance", "find_reference", "outputs_literal", "spec_for"]
