"""Serving features a model trace can add after the model forward (parent side; no vLLM import).

A feature is opt-in: :class:`FeatureOptions` is a :class:`~vkc.modeltrace.records.TraceOptions`
with ``features`` (``("sampler",)``).  Without features a trace is exactly the plain one: same
worker module, same request, same cache key.  With them the worker is
:mod:`vkc.modeltrace.serving_worker`, the request carries ``options["features"]`` and the key
also covers the feature modules' sources.  The trace records what was traced in
``ModelTrace.notes["features"]`` (:func:`features_of` reads it back).

Features:

* ``sampler`` -- vLLM's own V2-runner ``Sampler`` over the step's logits, every request with
  :data:`vkc.modeltrace.serving.SERVING_MIX` (temperature 0.7, top-p 0.9, top-k 50, repetition
  penalty 1.1, frequency penalty 0.2, no logprobs, no seed), with vLLM's in-tree Triton top-k/top-p
  + Gumbel path (``VLLM_USE_FLASHINFER_SAMPLER=0``; vLLM's H100 default for this mix is FlashInfer's
  fused sampler, compiled and outside the tree).  Events: ``module`` "sampler" (per step) and
  "sampler.admit" (request admission; prefill steps only), ``layer`` None.
* ``bitmask`` -- structured output: vLLM's ``StructuredOutputsWorker.apply_grammar_bitmask`` on the
  step's logits before sampling, every request under a grammar (the host bitmask's bits are the
  grammar's; traced with all tokens allowed: the launch does not depend on them).  Events: ``module``
  "sampler.bitmask".  It builds the sampler's runner state too (request slots, the batch).
* ``spec`` -- speculative decoding, n-gram, 3 draft tokens per sequence
  (:data:`vkc.modeltrace.spec.SPEC_CONFIG`): the engine config has the speculative config, a decode
  step verifies ``1 + 3`` tokens per sequence (the forward runs ``4 * batch`` tokens and samples all
  of them) through vLLM's ``RejectionSampler``; the draft input preparation (``expand_idx_mapping``,
  ``combine_sampled_and_draft_tokens``) is module "sampler.spec".  The forward of a decode step
  changes with it (4 tokens per sequence); prefill steps do not.  The drafter is not traced.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from vkc.errors import UsageError

from .records import ModelTrace, TraceOptions

__all__ = ["FEATURES", "FEATURE_MODULES", "SAMPLER_NOTE", "SPEC_NOTE", "FeatureOptions", "features_of", "parse_features",
           "with_features"]

FEATURES = ("bitmask", "sampler", "spec")
# worker-side modules of the features (their sources are part of a featured trace's cache key)
FEATURE_MODULES = ("vkc.modeltrace.serving_worker", "vkc.modeltrace.serving", "vkc.modeltrace.spec")
SPEC_NOTE = ("speculative decoding: n-gram, 3 draft tokens per sequence; a decode step verifies 4 tokens "
             "per sequence (forward and RejectionSampler); the n-gram drafter is not traced")
SAMPLER_NOTE = ("sampling: vLLM's default on an H100 for a top-k/top-p mix is FlashInfer's fused sampler, "
                "compiled and external to the tree; traced with VLLM_USE_FLASHINFER_SAMPLER=0 "
                "(Triton top-k/top-p + Gumbel sampling)")


@dataclass(frozen=True)
class FeatureOptions(TraceOptions):
    """Trace options with serving features (sorted, unique, each one of :data:`FEATURES`)."""

    features: tuple[str, ...] = ()


def parse_features(values: Iterable[str]) -> tuple[str, ...]:
    """``["sampler", "a,b"]`` -> sorted unique names; an unknown name is a usage error."""
    names = {n.strip() for v in values for n in str(v).split(",") if n.strip()}
    bad = sorted(names - set(FEATURES))
    if bad:
        raise UsageError(f"unknown serving feature(s): {', '.join(bad)}",
                         hint=f"known: {', '.join(FEATURES)}")
    return tuple(sorted(names))


def with_features(options: TraceOptions, features: Iterable[str]) -> TraceOptions:
    """``options`` with ``features`` (the plain options when there are none)."""
    feats = parse_features(features)
    base = {k: getattr(options, k) for k in ("steps", "tp", "attention_backend", "kv_cache_dtype", "block_size",
                                                "quantization")}
    return FeatureOptions(**base, features=feats) if feats else TraceOptions(**base)


def features_of(obj: TraceOptions | ModelTrace) -> tuple[str, ...]:
    """The features of trace options, or the features a trace was traced with."""
    if isinstance(obj, ModelTrace):
        note: Any = obj.notes.get("features") or {}
        return tuple(note.get("traced", ())) if isinstance(note, dict) else ()
    return tuple(getattr(obj, "features", ()) or ())
