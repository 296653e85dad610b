"""Bytes a traced launch touches, for the GB/s figure of model-traced examples: :func:`touched_bytes`.

A traced launch's tensor arguments are views of the step's storages; summing whole views counts
the entire KV cache for a kernel that reads a few sequences' pages of it (235,500 GB/s for
gpt-oss decode attention on a 4.8 TB/s H200).  The rules, per tensor argument:

* a KV-cache view (producer ``kv_cache:...``, or a view whose first two dims are the step's
  ``[num_blocks, block_size]``) of a launch that takes a slot mapping: the slots written
  (``slot_mapping.numel()`` tokens x the view's bytes per token; a flat 1-D view of a cache, as
  vllm/v1/attention/ops/ultraquant/triton_store.py ``_kv_cache_flat`` passes it, has its bytes over the
  step's ``num_blocks x block_size`` slots per token);
* a KV-cache view of a launch that takes a block table (``block_table*``, ``Req_to_tokens``): the
  tokens the sequences' context covers (decode: batch x ctx, capped at a ``SLIDING_WINDOW``
  constexpr; prefill: batch x prompt_len) x the view's bytes per token;
* any other view (and a cache view of a launch with neither): its elements once -- a dimension
  of stride 0 (a broadcast scale) counts one element.

The result says which rules applied, for the example's header.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

from vkc.modeltrace.records import StepSpec, TensorArg, TracedEvent

__all__ = ["is_kv_cache_view", "touched_bytes", "view_bytes"]


def view_bytes(t: TensorArg) -> int:
    """Bytes of the distinct elements of a view (a stride-0 dimension counts once)."""
    return math.prod(n for n, s in zip(t.shape, t.stride) if s != 0) * t.itemsize


def is_kv_cache_view(t: TensorArg, num_blocks: int, block_size: int) -> bool:
    if t.producer.startswith("kv_cache:"):
        return True
    return bool(num_blocks) and len(t.shape) >= 3 and t.shape[0] == num_blocks and t.shape[1] == block_size


def _context_tokens(ev: TracedEvent, spec: StepSpec) -> tuple[int, str]:
    if spec.workload == "decode":
        ctx = spec.ctx
        window = ev.constexprs.get("SLIDING_WINDOW")
        if isinstance(window, int) and 0 < window < ctx:
            return spec.batch * window, f"{spec.batch} sequences x SLIDING_WINDOW {window} tokens"
        return spec.batch * ctx, f"{spec.batch} sequences x ctx {ctx} tokens"
    return spec.batch * spec.prompt_len, f"{spec.batch} prompts x {spec.prompt_len} tokens"


def touched_bytes(ev: TracedEvent, args: Sequence[tuple[str, TensorArg]], spec: StepSpec, *, num_blocks: int,
                  block_size: int) -> tuple[float, str]:
    """(bytes the launch touches, the rule in words) over the tensor arguments ``args`` (param, view)."""
    names = {p.lower(): t for p, t in args}
    slots = next((t for p, t in names.items() if "slot_mapping" in p), None)
    table = next((t for p, t in names.items() if "block_table" in p or "req_to_token" in p), None)
    total = 0.0
    cache_rule = ""
    caches: list[str] = []
    for p, t in args:
        if t is table and slots is None and len(t.shape) == 2 and block_size:
            # a block table row is as wide as the longest request vLLM admits; the kernel reads the
            # entries the context covers
            tokens, _why = _context_tokens(ev, spec)
            per_row = -(-max(tokens // max(t.shape[0], 1), 1) // block_size)
            total += t.shape[0] * min(t.shape[1], per_row) * t.itemsize
            continue
        if not is_kv_cache_view(t, num_blocks, block_size) or (slots is None and table is None):
            total += view_bytes(t)
            continue
        if len(t.shape) >= 2:
            per_block = math.prod(n for n, s in zip(t.shape[1:], t.stride[1:]) if s != 0) * t.itemsize
            per_token = per_block / max(t.shape[1], 1)
        elif num_blocks and block_size:     # a flat 1-D view of the cache (UltraQuant's _kv_cache_flat)
            per_token = view_bytes(t) / (num_blocks * block_size)
        else:
            total += view_bytes(t)
            continue
        if slots is not None:
            tokens = math.prod(slots.shape)
            cache_rule = f"cache write: the {tokens} slots written"
        else:
            tokens, why = _context_tokens(ev, spec)
            cache_rule = f"paged attention: the blocks the context covers ({why})"
        total += tokens * per_token
        caches.append(f"{p} {per_token:g} B/token")
    if not caches:
        kind = "; a KV-cache view without a slot mapping or block table counts whole" if any(
            is_kv_cache_view(t, num_blocks, block_size) for _p, t in args) else ""
        return total, f"view bytes: every tensor argument's elements once (stride-0 dims once){kind}"
    rows = "; the block table: the entries the context covers" if table is not None and slots is None else ""
    return total, (f"{cache_rule} x bytes per token of each KV-cache view ({', '.join(caches)}){rows}; other "
                   "arguments: view bytes (stride-0 dims once)")
