"""Thinking-token budgets in the traced step (feature ``thinking``; the worker half imports vLLM).

``vllm serve --reasoning-parser qwen3`` (:data:`REASONING_PARSERS`), as the variant option ``reasoning-parser=qwen3``
names it (:mod:`vkc.modelcfg.variants`), with requests carrying ``thinking_token_budget`` (the sampling mix
``thinking``, :mod:`vkc.modeltrace.mixes`).  What it mirrors (each a checklist step, ``FEATURE_STEPS["thinking"]``):

* ``EngineArgs(reasoning_parser=...)``: ``_set_default_reasoning_config_args`` gives the engine config a
  ``ReasoningConfig(reasoning_parser=...)``;
* ``VllmConfig.__post_init__`` -> ``ReasoningConfig.initialize_token_ids``: the parser's start / end strings
  through the model's tokenizer.  The trace has no tokenizer: the ids are what Qwen3's tokenizer gives its
  ``<think>`` / ``</think>`` (one token each: 151667 / 151668, the ids vLLM's own test of the V2 runner's
  thinking-budget state uses, tests/v1/sample/test_thinking_budget_state.py:18); the parser's natural end is
  its end string (``initialize_token_ids``: ``natural_reasoning_end_str = end_token``);
* the V2 runner's ``Sampler`` builds its ``ThinkingBudgetState`` from ``vllm_config.reasoning_config``
  (``vllm/v1/worker/gpu/sample/sampler.py``); a request with a budget makes ``apply`` launch
  ``apply_thinking_budget`` (``_update_committed_marker_cache_kernel``, ``_thinking_budget_kernel``).
"""
from __future__ import annotations

from typing import Any

__all__ = ["REASONING_PARSERS", "install"]

# --reasoning-parser -> (start ids, end ids): what the model's tokenizer encodes the parser's strings to
REASONING_PARSERS: dict[str, tuple[list[int], list[int]]] = {"qwen3": ([151667], [151668])}


def install(parser: str) -> None:
    """Before the worker starts: the engine config with ``--reasoning-parser parser``, its token ids answered."""
    from vkc.modeltrace import startup

    real_config = startup.engine_config
    start, end = REASONING_PARSERS[parser]

    def engine_config(model_dir: str, opts: dict[str, Any]) -> Any:
        from vllm.config.reasoning import ReasoningConfig
        from vllm.engine import arg_utils

        real_args, real_init = arg_utils.EngineArgs, ReasoningConfig.initialize_token_ids

        def with_parser(**kw: Any) -> Any:
            return real_args(**kw, reasoning_parser=parser)

        def initialize_token_ids(self: Any, model_config: Any) -> None:
            self._reasoning_start_token_ids, self._reasoning_end_token_ids = list(start), list(end)
            self._natural_reasoning_end_token_ids = list(end)
            real_init(self, model_config)       # all three set: vLLM's own early return marks it enabled

        arg_utils.EngineArgs = with_parser  # type: ignore[misc,assignment]
        ReasoningConfig.initialize_token_ids = initialize_token_ids  # type: ignore[method-assign]
        try:
            return real_config(model_dir, opts)
        finally:
            arg_utils.EngineArgs = real_args  # type: ignore[misc]
            ReasoningConfig.initialize_token_ids = real_init  # type: ignore[method-assign]

    startup.engine_config = engine_config  # type: ignore[assignment]
