"""Sampling mixes: the per-request sampling parameters a traced step's requests carry.

A mix is a tuple of *request kinds* (``SamplingParams`` keyword arguments); request ``i`` of a step
gets kind ``i % len(kinds)``, so one batch holds requests of different kinds, as a served batch does.
The default mix (:data:`DEFAULT_MIX`, ``"serving"``) is the one kind :data:`SERVING_MIX`, which every
featured trace used before mixes existed (its traces and cache keys are unchanged).  Another mix is
named by the variant option ``sampling=NAME`` (``MODEL@sampling=mixed``; :mod:`vkc.modelcfg.variants`),
which sets :attr:`vkc.modeltrace.features.FeatureOptions.sampling`.

Mixes (each parameter written down here once; :func:`mix_notes` is what a trace's notes record):

* ``serving`` -- temperature 0.7, top-p 0.9, top-k 50, repetition penalty 1.1, frequency penalty 0.2.
* ``mixed`` -- three kinds, each switching on request options of vLLM's V2 runner's ``Sampler``:

  0. nucleus sampling with min-p, a logit bias on two tokens, an explicit seed, top-5 logprobs
     (``_bias_kernel``, ``_min_p_kernel``, the logprob kernels; a seeded request makes the batch
     ineligible for FlashInfer's fused sampler, so vLLM itself takes the Triton Gumbel path);
  1. greedy (temperature 0) under ``allowed_token_ids``, two bad words (their token ids: what
     ``SamplingParams.update_from_tokenizer`` leaves; the trace has no tokenizer), ``min_tokens``
     with a stop token, and the logprobs of three fixed token ids (``_bad_words_kernel``,
     ``_fill_logprob_token_ids_kernel``);
  2. plain random sampling (temperature 1) asking for prompt logprobs (a prefill step's
     ``PromptLogprobsWorker.compute_prompt_logprobs``: ``_prompt_logprobs_token_ids_kernel``).

* ``thinking`` -- one kind: Qwen3's thinking-mode sampling (temperature 0.6, top-p 0.95, top-k 20) with a
  thinking-token budget of 64 (``ThinkingBudgetState``: ``apply_thinking_budget``; needs
  ``reasoning-parser=qwen3``, :mod:`vkc.modeltrace.thinking`).

Every token id a mix names is below :data:`MAX_TOKEN_ID` (checked against the model's vocabulary
when the requests are made: a mix a model cannot take fails the trace loudly).
"""
from __future__ import annotations

from typing import Any

__all__ = ["DEFAULT_MIX", "MAX_TOKEN_ID", "MIXES", "SERVING_MIX", "mix_kinds", "mix_notes", "mix_token_ids",
           "request_kind", "sampling_params"]

# temperature/top-p/top-k sampling with repetition and frequency penalties; no logprobs, no seed
SERVING_MIX: dict[str, Any] = {"temperature": 0.7, "top_p": 0.9, "top_k": 50, "repetition_penalty": 1.1,
                               "frequency_penalty": 0.2, "presence_penalty": 0.0}
DEFAULT_MIX = "serving"
MAX_TOKEN_ID = 1000          # every token id a mix names is below it (any real vocabulary is larger)

MIXES: dict[str, tuple[dict[str, Any], ...]] = {
    "serving": (SERVING_MIX,),
    "mixed": (
        {"temperature": 0.8, "top_p": 0.95, "min_p": 0.05, "seed": 1234, "logit_bias": {100: 2.0, 200: -1.5},
         "logprobs": 5},
        {"temperature": 0.0, "allowed_token_ids": list(range(MAX_TOKEN_ID)),
         "bad_words_token_ids": [[300, 301], [302]], "min_tokens": 16, "stop_token_ids": [2],
         "logprob_token_ids": [10, 20, 30]},
        {"temperature": 1.0, "prompt_logprobs": 1},
    ),
    # a thinking-token budget (vLLM needs --reasoning-parser for it: variant option reasoning-parser=qwen3), with
    # the sampling parameters Qwen3's generation_config.json gives (temperature 0.6, top-p 0.95, top-k 20)
    "thinking": ({"temperature": 0.6, "top_p": 0.95, "top_k": 20, "thinking_token_budget": 64},),
}
# kind keys that are not SamplingParams arguments: what the engine's input processing sets
_PROCESSED = {"bad_words_token_ids": "_bad_words_token_ids"}


def mix_kinds(name: str) -> tuple[dict[str, Any], ...]:
    """The request kinds of mix ``name`` (a :class:`KeyError` names the known ones)."""
    if name not in MIXES:
        raise KeyError(f"unknown sampling mix {name!r}; known: {', '.join(sorted(MIXES))}")
    return MIXES[name]


def request_kind(name: str, i: int) -> dict[str, Any]:
    """Request ``i``'s kind in mix ``name``."""
    kinds = mix_kinds(name)
    return kinds[i % len(kinds)]


def mix_token_ids(kind: dict[str, Any]) -> list[int]:
    """Every token id a request kind names (logit bias, allowed, bad-word, stop and logprob ids)."""
    ids = [int(t) for t in kind.get("logit_bias", {})]
    for key in ("allowed_token_ids", "stop_token_ids", "logprob_token_ids"):
        ids += [int(t) for t in kind.get(key, ())]
    ids += [int(t) for word in kind.get("bad_words_token_ids", ()) for t in word]
    return ids


def mix_notes(name: str) -> dict[str, Any] | list[dict[str, Any]]:
    """What a trace's notes record as its sampling parameters: the default mix's one dict (as
    before mixes), else the kinds in request order, JSON-ready (logit-bias keys as strings)."""
    kinds = mix_kinds(name)
    if name == DEFAULT_MIX:
        return dict(kinds[0])
    return [{k: ({str(t): b for t, b in v.items()} if isinstance(v, dict) else v) for k, v in sorted(kind.items())}
            for kind in kinds]


def sampling_params(name: str, i: int, vocab_size: int, max_tokens: int) -> Any:
    """Request ``i``'s ``SamplingParams`` (worker side: imports vLLM), as the engine's input
    processing leaves them: the kind's arguments, then the fields it derives (bad-word token ids)."""
    from vllm.sampling_params import SamplingParams

    kind = request_kind(name, i)
    bad = [t for t in mix_token_ids(kind) if not 0 <= t < vocab_size]
    if bad:
        raise ValueError(f"sampling mix {name!r} names token ids {bad} outside the vocabulary ({vocab_size})")
    args = {k: v for k, v in kind.items() if k not in _PROCESSED}
    params = SamplingParams(max_tokens=max_tokens, **args)
    for key, attr in _PROCESSED.items():
        if key in kind:
            setattr(params, attr, [list(w) for w in kind[key]])
    return params
