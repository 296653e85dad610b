"""Which mode a test capture earns: ``test-traced`` only when the test ran at the model's sizes.

A test's launch is model-accurate (``test-traced``) when every size the test chooses came from the
model or the workload: at least one size parameter was mapped (:data:`vkc.testtrace.harness.SIZE_NAMES`,
the batch names :data:`BATCH_NAMES` from the workload's step) and no other parameter the test ran
with is a size of its own (an integer, or a tuple/list of integers: ``num_tokens=7``, ``d=512``,
``shape=(7, 512)``), except the parameters that are no size (:data:`NOT_SIZES`: seeds, devices).  A
capture with a size of the test's own is ``vllm-sized``: a real launch of vLLM's code, not the
model's shapes; its source names both halves.

Pure text rules over the capture's ``params`` / ``mapped`` (name -> value text, as
:func:`vkc.testtrace.harness.value_text` writes them); nothing is imported or run.
"""
from __future__ import annotations

import ast
from collections.abc import Mapping

__all__ = ["BATCH_NAMES", "NOT_SIZES", "WORKLOAD_STEPS", "capture_mode", "capture_source", "own_sizes",
           "workload_dims"]

# parameter name -> key of the request's "dims" that the workload's step sets (every 0.33.0 test that
# parametrizes them means the step's token count / sequence count)
BATCH_NAMES: Mapping[str, str] = {"num_tokens": "tokens", "batch_size": "seqs", "num_seqs": "seqs"}
# the model trace's steps (vkc.modeltrace.cli_hooks.DEFAULTS): decode 64 sequences of one new token,
# prefill 4 prompts of 2048 tokens
WORKLOAD_STEPS: Mapping[str, Mapping[str, int]] = {"decode": {"tokens": 64, "seqs": 64},
                                                   "prefill": {"tokens": 4 * 2048, "seqs": 4}}
# integer parameters that choose no size
NOT_SIZES = frozenset({"seed", "seeds", "random_seed", "device", "devices", "cuda_device", "device_id"})


def workload_dims(workload: str | None) -> dict[str, int]:
    """The batch sizes a test's :data:`BATCH_NAMES` take for ``workload`` (``{}`` for None)."""
    return dict(WORKLOAD_STEPS.get(workload or "", {}))


def _is_size(text: str) -> bool:
    try:
        v = ast.literal_eval(text.strip())
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return False
    if isinstance(v, bool):
        return False
    if isinstance(v, int):
        return True
    return isinstance(v, (tuple, list)) and bool(v) and all(isinstance(x, int) and not isinstance(x, bool) for x in v)


def own_sizes(params: Mapping[str, str], mapped: Mapping[str, str]) -> list[str]:
    """``name=value`` of the parameters the test ran with a size of its own (sorted by name)."""
    return [f"{k}={v}" for k, v in sorted(params.items())
            if k not in mapped and k not in NOT_SIZES and _is_size(str(v))]


def capture_mode(params: Mapping[str, str], mapped: Mapping[str, str], size_names: Mapping[str, str]) -> str:
    """``test-traced`` when a size came from the model and none is the test's own, else ``vllm-sized``."""
    sizes = [k for k in mapped if k in size_names]
    return "test-traced" if sizes and not own_sizes(params, mapped) else "vllm-sized"


def capture_source(test_id: str, params: Mapping[str, str], mapped: Mapping[str, str],
                   size_names: Mapping[str, str]) -> str:
    """The provenance text of a capture: the test id, then which sizes came from the model and which
    are the test's own."""
    sizes = {k: v for k, v in mapped.items() if k in size_names}
    own = own_sizes(params, mapped)
    if not sizes:
        return f"{test_id} (the test's own sizes; none maps from the model)"
    text = f"{test_id} (from the model and workload: {', '.join(f'{k}={v}' for k, v in sorted(sizes.items()))}"
    return text + (f"; the test's own sizes: {', '.join(own)}" if own else "") + ")"
