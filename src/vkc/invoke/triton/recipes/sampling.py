"""Recipe: sampler kernels (``_topk_topp_kernel``, ``rejection_random_sample_kernel``).

The sampler runs on every step: ``_topk_topp_kernel`` over the step's logits rows, one per
request (a prefill step samples each prompt's last token, a decode step each sequence's new one);
the rejection sampler only verifies drafts, which exist in decode steps.

* ``_topk_topp_kernel``: ``apply_top_k_top_p_triton(logits, k, p)``, fp32 logits
  ``[batch, vocab]``, every row with top-k = ``TOP_K`` and top-p = ``TOP_P``.  The two
  lookup tables vLLM uploads once per device are given their real contents (pre-seeded
  into vLLM's table cache as recipe tensors); the per-program scratch is wrapper-owned.
  ``batch`` > 64 keeps CUDA on the same (monolithic) path the meta trace takes.
* ``rejection_random_sample_kernel``: ``_rejection_random_sample(...)``, the launch of
  ``rejection_sample`` for random (non-greedy) requests, with ``NUM_SPEC_TOKENS`` draft
  tokens per request and no draft probabilities (EAGLE/n-gram proposers):
  ``cu_num_draft_tokens`` = inclusive prefix sums, ``target_probs`` uniform (normalised
  rows), token ids inside the vocabulary, uniform draws in [0, 1).
"""
from __future__ import annotations

from typing import Any

from vkc.invoke.core.family import Family
from vkc.invoke.triton.recipes.base import dispatch, triton_recipe

K_TOPK = "vllm.v1.sample.ops.topk_topp_triton:_topk_topp_kernel"
K_REJ = "vllm.v1.sample.rejection_sampler:rejection_random_sample_kernel"
KERNELS: tuple[str, ...] = (K_TOPK, K_REJ)
TOPK_WORKLOADS: tuple[str, ...] = ("prefill", "decode")
REJ_WORKLOADS: tuple[str, ...] = ("decode",)
DEFAULT_WORKLOAD = "decode"

DECODE_BATCH = 256
PREFILL_BATCH = 4           # prompts per prefill step (as `vkc model kernels`' prefill default)
TOP_K = 50
TOP_P = 0.9
NUM_SPEC_TOKENS = 3


def shapes(model: dict, workload: str, budget_bytes: int, small: bool) -> dict:
    vocab = int(model.get("vocab_size") or 0)
    if small:
        return {"batch": 4, "vocab": 1000, "top_k": 10, "top_p": TOP_P, "num_spec": 2,
                "workload": workload, "notes": ["SMALL_SANITY sizes (not the model's)"]}
    # logits (fp32) + scratch rows; the rejection kernel holds (batch*num_spec) prob rows
    rows_fit = max(1, budget_bytes // (vocab * 4 * (1 + NUM_SPEC_TOKENS)))
    batch = min(PREFILL_BATCH if workload == "prefill" else DECODE_BATCH, rows_fit)
    what = (f"prefill step of {batch} prompts (one logits row each)" if workload == "prefill"
            else f"decode batch {batch}")
    return {"batch": int(batch), "vocab": vocab, "top_k": TOP_K, "top_p": TOP_P,
            "num_spec": NUM_SPEC_TOKENS, "workload": workload,
            "notes": [(f"{what}; top-k {TOP_K}, top-p {TOP_P}; "
                      f"{NUM_SPEC_TOKENS} speculative tokens per request for rejection sampling")]}


def _topk_topp(get: Any, shp: dict, T: Any) -> None:
    mod = get("vllm.v1.sample.ops.topk_topp_triton")
    b, v = shp["batch"], shp["vocab"]
    logits = T.tensor("logits", (b, v), "float32", ("randn_scaled", 4.0))
    k = T.tensor("top_k", (b,), "int32", ("const", shp["top_k"]))
    p = T.tensor("top_p", (b,), "float32", ("const", shp["top_p"]))
    cdf = list(mod._NORMAL_CDF_TO_SIGMA_TABLE)
    pct = list(mod._PERCENTILE_TO_STD_TABLE)
    tables = (T.tensor("normal_cdf_to_sigma_table", (len(cdf),), "float32", ("values", cdf)),
              T.tensor("percentile_to_std_table", (len(pct),), "float32", ("values", pct)))
    mod._TRITON_BUFFER_CACHE.clear()
    mod._TRITON_TABLE_CACHE.clear()
    mod._TRITON_TABLE_CACHE[logits.device] = tables
    try:
        mod.apply_top_k_top_p_triton(logits, k, p)
    finally:
        mod._TRITON_BUFFER_CACHE.clear()
        mod._TRITON_TABLE_CACHE.clear()


def _rejection(get: Any, shp: dict, T: Any) -> None:
    rs = get("vllm.v1.sample.rejection_sampler")
    b, v, s = shp["batch"], shp["vocab"], shp["num_spec"]
    n = b * s
    out = T.tensor("output_token_ids", (b, s + 1), "int32", ("const", int(rs.PLACEHOLDER_TOKEN_ID)))
    cu = T.tensor("cu_num_draft_tokens", (b,), "int32", ("arange", s, s))
    draft = T.tensor("draft_token_ids", (n,), "int32", ("randint", 0, v))
    target_probs = T.tensor("target_probs", (n, v), "float32", ("const", 1.0 / v))
    bonus = T.tensor("bonus_token_ids", (b, 1), "int64", ("randint", 0, v))
    recovered = T.tensor("recovered_token_ids", (n,), "int32", ("randint", 0, v))
    uniform = T.tensor("uniform_probs", (n,), "float64", "rand")
    is_greedy = T.tensor("is_greedy", (b,), "bool", "zeros")
    rs._rejection_random_sample(out, cu, draft, None, target_probs, bonus, recovered, uniform,
                                is_greedy, s, None)


def call(vllm_mod_getter: Any, shp: dict, T: Any) -> None:
    dispatch("sampling", {K_TOPK: _topk_topp, K_REJ: _rejection}, vllm_mod_getter, shp, T)




def flops_bytes(shp: dict, launch: dict) -> tuple[float | None, float | None]:
    """Bytes the kernels move.  The rejection sampler reads one probability per draft token
    from each ``[tokens, vocab]`` probability table, not the whole table; other tensors count
    whole (the default)."""
    from vkc.invoke.triton.recipes.base import default_flops_bytes

    flops, total = default_flops_bytes(shp, launch)
    if launch.get("fn", {}).get("qualname") != K_REJ.split(":")[1] or total is None:
        return flops, total
    for a in launch.get("args", {}).values():
        if a.get("kind") == "tensor" and len(a["shape"]) == 2 and int(a["shape"][1]) == int(shp["vocab"]):
            rows, vocab, item = int(a["shape"][0]), int(a["shape"][1]), int(a["itemsize"])
            total -= rows * (vocab - 1) * item   # keep one element per row
    return flops, total


RECIPES = (
    triton_recipe((K_TOPK,), Family.SAMPLER, shapes, call,
                  workloads=TOPK_WORKLOADS, default_workload=DEFAULT_WORKLOAD, flops_bytes=flops_bytes),
    triton_recipe((K_REJ,), Family.SAMPLER, shapes, call,
                  workloads=REJ_WORKLOADS, default_workload=DEFAULT_WORKLOAD, flops_bytes=flops_bytes),
)
