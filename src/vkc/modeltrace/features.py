"""Serving features a model trace can add after the model forward (parent side; no vLLM import).

A feature is opt-in: :class:`FeatureOptions` is a :class:`~vkc.modeltrace.records.TraceOptions`
with ``features`` (``("sampler",)``).  Without features a trace is exactly the plain one: same
worker module, same request, same cache key.  With them the worker is
:mod:`vkc.modeltrace.serving_worker`, the request carries ``options["features"]`` and the key
also covers the feature modules' sources.  The trace records what was traced in
``ModelTrace.notes["features"]`` (:func:`features_of` reads it back).

Features:

* ``sampler`` -- vLLM's own V2-runner ``Sampler`` over the step's logits, every request with
  :data:`vkc.modeltrace.mixes.SERVING_MIX` (temperature 0.7, top-p 0.9, top-k 50, repetition
  penalty 1.1, frequency penalty 0.2, no logprobs, no seed), with vLLM's in-tree Triton top-k/top-p
  + Gumbel path (``VLLM_USE_FLASHINFER_SAMPLER=0``; vLLM's H100 default for this mix is FlashInfer's
  fused sampler, compiled and outside the tree).  Events: ``module`` "sampler" (per step) and
  "sampler.admit" (request admission; prefill steps only), ``layer`` None.  Last in each step, the V2
  runner's own per-step launches over the same batch (:mod:`vkc.modeltrace.runner_prepare`: block
  tables, slot mappings, prefill inputs, sampled/draft token combine; ``post_update``): modules
  "sampler.prepare" / "sampler.postprocess", their storages numbered from ``s2000000``.
* ``bitmask`` -- structured output: vLLM's ``StructuredOutputsWorker.apply_grammar_bitmask`` on the
  step's logits before sampling, every request under a grammar (the host bitmask's bits are the
  grammar's; traced with all tokens allowed: the launch does not depend on them).  Events: ``module``
  "sampler.bitmask".  It builds the sampler's runner state too (request slots, the batch).
* ``spec`` -- speculative decoding (``FeatureOptions.speculative``: ``ngram``, or ``ngram-block``
  verifying the drafts as a block), n-gram, 3 draft tokens per sequence
  (:data:`vkc.modeltrace.spec.SPEC_CONFIG`): the engine config has the speculative config, a decode
  step verifies ``1 + 3`` tokens per sequence (the forward runs ``4 * batch`` tokens and samples all
  of them) through vLLM's ``RejectionSampler``; the draft input preparation (``expand_idx_mapping``,
  ``combine_sampled_and_draft_tokens``) is module "sampler.spec".  The forward of a decode step
  changes with it (4 tokens per sequence); prefill steps do not.  After sampling every step runs
  ``postprocess_sampled`` and the GPU n-gram drafter's ``propose`` (module "sampler.propose").
* ``watermark`` -- text watermarking (:data:`vkc.modeltrace.watermark.WATERMARK_CONFIG`: Gumbel,
  Philox, context width 4, single-turn deduplication): the engine config has the watermark config
  and the sampler is vLLM's ``GPUWatermarkSampler`` (module "sampler").
* ``sampling-mask`` / ``nans`` -- ``--return-sampling-mask`` / ``VLLM_COMPUTE_NANS_IN_LOGITS=1``
  (:mod:`vkc.modeltrace.engine_flags`): the sampler also returns the kept supports / counts NaNs.

The requests' sampling parameters are a *mix* (:mod:`vkc.modeltrace.mixes`): the default
``serving`` (:data:`~vkc.modeltrace.mixes.SERVING_MIX` for every request) or, with
``FeatureOptions.sampling`` (:func:`with_sampling`; the variant option ``sampling=NAME``), another,
e.g. ``mixed``: per-request logit bias, min-p, bad words, logprobs, prompt logprobs, greedy and
seeded requests.  A non-default mix is in the request (``options["sampling"]``) and the cache key;
the default leaves both as they were.
* ``lora`` -- LoRA serving (``--enable-lora --max-lora-rank R --max-loras 1``, R =
  ``FeatureOptions.lora_rank``, :data:`DEFAULT_LORA_RANK` when unset): vLLM's LoRA manager wraps the
  model, every step runs under vLLM's own dummy-LoRA warm-up (``maybe_dummy_run_with_lora``: dummy
  adapters, every request under LoRA 1), :mod:`vkc.modeltrace.lora`; its worker is
  :mod:`vkc.modeltrace.lora_worker` and its modules (:data:`LORA_MODULES`) join the key.  It changes the forward
  (the LoRA kernels launch inside the wrapped layers); alone it adds no sampling.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from vkc.errors import UsageError

from .mixes import DEFAULT_MIX, MIXES
from .records import ModelTrace, TraceOptions

__all__ = ["DEFAULT_LORA_RANK", "DRAFT_SPECS", "FEATURES", "FEATURE_MODULES", "LORA_MODULES", "LORA_RANKS", "SAMPLER_NOTE", "SPEC_DRAFT_NOTE", "SPEC_NOTE",
           "FeatureOptions", "feature_groups", "features_of", "lora_note", "lora_rank_of", "parse_features", "sampling_of",
           "with_features", "with_lora", "with_sampling"]

FEATURES = ("bitmask", "lora", "nans", "sampler", "sampling-mask", "spec", "thinking", "watermark")
# worker-side modules of the features (their sources are part of a featured trace's cache key)
FEATURE_MODULES = ("vkc.modeltrace.serving_worker", "vkc.modeltrace.serving", "vkc.modeltrace.spec", "vkc.modeltrace.spec_draft",
                   "vkc.modeltrace.mixes", "vkc.modeltrace.mix_worker", "vkc.modeltrace.watermark", "vkc.modeltrace.thinking",
                   "vkc.modeltrace.engine_flags", "vkc.modeltrace.serving_host", "vkc.modeltrace.runner_prepare",
                   "vkc.modeltrace.storage_tables")
# speculative values whose drafter is a model (vkc.modeltrace.spec_draft.DRAFT_METHODS): checklist group spec-draft
DRAFT_SPECS = ("mtp", "draft-model")
SPEC_DRAFT_NOTE = {"mtp": ("speculative decoding: multi-token prediction with the target's own MTP layers "
                           "(MTPSpeculator), 3 draft tokens per sequence; a decode step verifies 4 tokens per sequence "
                           "(forward and RejectionSampler); after sampling, postprocess_sampled and the drafter's "
                           "propose: draft prefill on the target's metadata, then 2 eager draft decode steps"),
                   "draft-model": ("speculative decoding with a separate draft model (StandaloneARSpeculator), 3 draft "
                                   "tokens per sequence; a decode step verifies 4 tokens per sequence (forward and "
                                   "RejectionSampler); after sampling, postprocess_sampled and the drafter's propose: "
                                   "its expanded prefill, then 2 eager draft decode steps")}
# the ``lora`` feature's worker modules: in the key (and the worker) of a trace with ``lora`` only
LORA_MODULES = ("vkc.modeltrace.lora_worker", "vkc.modeltrace.lora")
SPEC_NOTE = ("speculative decoding: n-gram, 3 draft tokens per sequence; a decode step verifies 4 tokens "
             "per sequence (forward and RejectionSampler); after sampling, postprocess_sampled and the GPU "
             "n-gram drafter's propose")
# vLLM's LoRAConfig.max_lora_rank values (MaxLoRARanks) and its default
LORA_RANKS = (1, 8, 16, 32, 64, 128, 256, 320, 512)
DEFAULT_LORA_RANK = 16
SAMPLER_NOTE = ("sampling: vLLM's default on an H100 for a top-k/top-p mix is FlashInfer's fused sampler, "
                "compiled and external to the tree; traced with VLLM_USE_FLASHINFER_SAMPLER=0 "
                "(Triton top-k/top-p + Gumbel sampling)")


@dataclass(frozen=True)
class FeatureOptions(TraceOptions):
    """Trace options with serving features (sorted, unique, each one of :data:`FEATURES`) and the
    sampling mix the requests carry (:data:`vkc.modeltrace.mixes.MIXES`)."""

    features: tuple[str, ...] = ()
    sampling: str = DEFAULT_MIX
    speculative: str = "ngram"          # with ``spec``: the speculative config (vkc.modeltrace.spec.SPEC_CONFIGS)
    draft_model: str = ""               # with speculative=draft-model: the drafter's model id (a bundled model)
    lora_rank: int = 0          # --max-lora-rank of the ``lora`` feature (0: DEFAULT_LORA_RANK)


def parse_features(values: Iterable[str]) -> tuple[str, ...]:
    """``["sampler", "a,b"]`` -> sorted unique names; an unknown name is a usage error."""
    names = {n.strip() for v in values for n in str(v).split(",") if n.strip()}
    bad = sorted(names - set(FEATURES))
    if bad:
        raise UsageError(f"unknown serving feature(s): {', '.join(bad)}",
                         hint=f"known: {', '.join(FEATURES)}")
    return tuple(sorted(names))


def with_features(options: TraceOptions, features: Iterable[str]) -> TraceOptions:
    """``options`` with ``features`` (the plain options when there are none; a sampling mix is kept)."""
    feats = parse_features(features)
    base = {f.name: getattr(options, f.name) for f in dataclasses.fields(TraceOptions)}   # every plain option
    if not feats:
        return TraceOptions(**base)
    rank = int(getattr(options, "lora_rank", 0) or 0) if "lora" in feats else 0
    return FeatureOptions(**base, features=feats, sampling=sampling_of(options),
                          speculative=str(getattr(options, "speculative", "ngram")),
                          draft_model=str(getattr(options, "draft_model", "")), lora_rank=rank)


def with_sampling(options: TraceOptions, mix: str) -> TraceOptions:
    """``options`` with requests of sampling mix ``mix`` (the ``sampler`` feature added: the mix is
    what the sampler samples with); an unknown mix is a usage error."""
    if mix not in MIXES:
        raise UsageError(f"unknown sampling mix {mix!r}", hint=f"known: {', '.join(sorted(MIXES))}")
    out = with_features(options, (*features_of(options), "sampler"))
    assert isinstance(out, FeatureOptions)
    return dataclasses.replace(out, sampling=mix)


def sampling_of(options: TraceOptions) -> str:
    """The sampling mix of trace options (:data:`DEFAULT_MIX` without features)."""
    return str(getattr(options, "sampling", DEFAULT_MIX) or DEFAULT_MIX)


def feature_groups(options: TraceOptions) -> tuple[str, ...]:
    """The checklist feature groups a trace mirrors: its features, plus ``sampling`` for a mix other
    than the default (:data:`vkc.modeltrace.checklist.FEATURE_STEPS`)."""
    extra = ("sampling",) if sampling_of(options) != DEFAULT_MIX else ()
    if "spec" in features_of(options) and getattr(options, "speculative", "ngram") in DRAFT_SPECS:
        extra = (*extra, "spec-draft")
    return (*features_of(options), *extra)


def with_lora(options: TraceOptions, rank: int) -> TraceOptions:
    """``options`` with the ``lora`` feature at ``--max-lora-rank rank`` (one of :data:`LORA_RANKS`)."""
    import dataclasses

    if rank not in LORA_RANKS:
        raise UsageError(f"LoRA rank {rank} is not one vLLM accepts",
                         hint=f"--max-lora-rank: {', '.join(map(str, LORA_RANKS))}")
    out = with_features(options, (*features_of(options), "lora"))
    assert isinstance(out, FeatureOptions)
    return dataclasses.replace(out, lora_rank=rank)


def lora_rank_of(options: TraceOptions) -> int:
    """The ``--max-lora-rank`` a trace with ``lora`` runs at (0 without the feature)."""
    if "lora" not in features_of(options):
        return 0
    return int(getattr(options, "lora_rank", 0) or 0) or DEFAULT_LORA_RANK


def lora_note(rank: int) -> str:
    from .lora import MAX_LORAS

    return (f"LoRA: --enable-lora --max-lora-rank {rank} --max-loras {MAX_LORAS}; every step under vLLM's "
            "dummy-LoRA warm-up (maybe_dummy_run_with_lora, num_active_loras=max_loras): zero-weight dummy "
            "adapters of warm-up rank min(rank, 8), requests mapped to LoRA ids 1..max_loras cyclically "
            "(every token under LoRA 1); the Punica metadata computed by vLLM's update_metadata on a host "
            "twin (its aten sort/unique on the mapping not recorded)")


def features_of(obj: TraceOptions | ModelTrace) -> tuple[str, ...]:
    """The features of trace options, or the features a trace was traced with."""
    if isinstance(obj, ModelTrace):
        note: Any = obj.notes.get("features") or {}
        return tuple(note.get("traced", ())) if isinstance(note, dict) else ()
    return tuple(getattr(obj, "features", ()) or ())
