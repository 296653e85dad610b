"""Recipe: the Triton fused-MoE grouped GEMM (``fused_moe_kernel``).

Traced through ``invoke_fused_moe_triton_kernel`` (the narrowest real launcher): the full
``fused_experts`` path first calls CUDA-only ops (``moe_align_block_size``, the activation,
``moe_sum``), so the recipe does their work itself, in pure Python:

* routing: every token picks ``top_k`` distinct experts, drawn with a seeded RNG
  (``random.Random(ROUTING_SEED)``), router weights ``1/top_k`` (normalised, as
  ``norm_topk_prob`` / softmax-over-top-k give);
* alignment: ``sorted_token_ids`` / ``expert_ids`` / ``num_tokens_post_padded`` exactly as
  vLLM's ``moe_align_block_size`` lays them out (per expert, its flat token ids ascending,
  padded to ``BLOCK_SIZE_M`` with the sentinel ``M*top_k``; unused blocks get expert -1),
  or the ``naive_block_assignment`` form when vLLM would take it (tiny batches);
* config: vLLM's own ``try_get_optimal_moe_config`` for (E, N, top_k, dtype, M) on the
  H100 profile (tuned JSON when vLLM ships one, else ``get_default_config``).

The traced GEMM is the first one (``w13``: hidden -> gate/up, ``MUL_ROUTED_WEIGHT=False``).
Weights of large models do not fit the budget on one GPU; the recipe then shards the
intermediate dimension as tensor parallelism does (``tp`` = 2, 4, ...; said in ``notes``).
gpt-oss carries expert biases (``HAS_BIAS``).  Activations are the model dtype (bf16): the
unquantized Triton path (gpt-oss ships MXFP4 experts, which vLLM runs through other kernels).
"""
from __future__ import annotations

import math
import random
from typing import Any

from vkc.errors import InvocationError, NotApplicableError
from vkc.invoke.core.dims import Need
from vkc.invoke.core.family import Family
from vkc.invoke.triton.recipes.base import DTYPE_BYTES, model_dtype, triton_recipe

KERNELS: tuple[str, ...] = ("vllm.model_executor.layers.fused_moe.fused_moe:fused_moe_kernel",)
WORKLOADS: tuple[str, ...] = ("prefill", "decode")
DEFAULT_WORKLOAD = "prefill"

ROUTING_SEED = 0
DECODE_TOKENS = 256          # sequences in a busy decode step (H100 default max_num_seqs is 1024)
PREFILL_MAX_TOKENS = 8192    # vLLM 0.33 default max_num_batched_tokens on H100 (API server)
WEIGHT_SHARE = 0.7           # at most this share of the budget goes to the expert weights


def _moe_dims(model: dict) -> tuple[int, int, int, int]:
    E = model.get("num_experts")
    k = model.get("num_experts_per_tok")
    if not E or not k:
        raise NotApplicableError(
            f"MoE kernel: model {model.get('model_id', '?')} has no experts (num_experts is not set)",
            hint="use a mixture-of-experts model, e.g. openai/gpt-oss-120b or Qwen/Qwen3-Coder-480B-A35B-Instruct")
    hidden = int(model["hidden_size"])
    inter = int(model.get("moe_intermediate_size") or model.get("intermediate_size") or 0)
    if inter <= 0:
        raise InvocationError(f"MoE kernel: model {model.get('model_id', '?')} has no (moe_)intermediate_size",
                              hint="the config.json must give moe_intermediate_size or intermediate_size")
    return int(E), int(k), hidden, inter


def shapes(model: dict, workload: str, budget_bytes: int, small: bool) -> dict:
    """Problem sizes: E, top_k, K (hidden), N (2*I/tp), M tokens, tp, dtype, bias."""
    E, k, hidden, inter = _moe_dims(model)
    has_bias = (model.get("model_type") == "gpt_oss")
    notes: list[str] = []
    if small:
        es = 2
        return {"E": max(8, 2 * k), "top_k": k, "K": 128, "I": 64, "N": 128, "M": 8, "tp": 1,
                "dtype": "float16", "has_bias": has_bias, "routing_seed": ROUTING_SEED,
                "workload": workload, "notes": ["SMALL_SANITY sizes (not the model's)"],
                "live_bytes": (8 * 128 + max(8, 2 * k) * 128 * 128 + 8 * k * 128) * es}
    dtype = model_dtype(model)
    es = DTYPE_BYTES[dtype]
    tp = 1
    while E * 2 * (inter // tp) * hidden * es > WEIGHT_SHARE * budget_bytes and inter % (2 * tp) == 0:
        tp *= 2
    if tp > 1:
        notes.append(f"expert weights sharded tp={tp} over the intermediate dim "
                     f"(I={inter} -> {inter // tp}) so one GPU's live set fits the budget")
    N = 2 * (inter // tp)
    w_bytes = E * N * hidden * es + (E * N * es if has_bias else 0)
    per_token = hidden * es + k * N * es + 3 * k * 4
    fit = max(1, (budget_bytes - w_bytes) // per_token)
    if workload == "decode":
        M = min(DECODE_TOKENS, fit)
    else:
        M = min(PREFILL_MAX_TOKENS, fit)
        M = max(256, (M // 256) * 256) if M >= 256 else M
    return {"E": E, "top_k": k, "K": hidden, "I": inter, "N": N, "M": int(M), "tp": tp,
            "dtype": dtype, "has_bias": has_bias, "routing_seed": ROUTING_SEED,
            "workload": workload, "notes": notes, "live_bytes": int(w_bytes + M * per_token)}


# --------------------------------------------------------------------------- routing


def routing(M: int, E: int, k: int, seed: int = ROUTING_SEED) -> list[list[int]]:
    """topk_ids: for each token, k distinct experts (seeded, deterministic)."""
    rng = random.Random(seed)
    experts = list(range(E))
    return [rng.sample(experts, k) for _ in range(M)]


def align_block_size(topk_ids: list[list[int]], block_size: int, num_experts: int
                     ) -> tuple[list[int], list[int], int]:
    """vLLM's moe_align_block_size, in Python: (sorted_token_ids, expert_ids, num_tokens_post_padded)."""
    flat = [e for row in topk_ids for e in row]
    numel = len(flat)
    max_padded = numel + num_experts * (block_size - 1)
    if numel < num_experts:
        max_padded = min(numel * block_size, max_padded)
    max_blocks = -(-max_padded // block_size)
    per_expert: list[list[int]] = [[] for _ in range(num_experts)]
    for i, e in enumerate(flat):
        per_expert[e].append(i)
    sorted_ids: list[int] = []
    expert_ids: list[int] = []
    for e, ids in enumerate(per_expert):
        if not ids:
            continue
        padded = -(-len(ids) // block_size) * block_size
        sorted_ids.extend(ids + [numel] * (padded - len(ids)))
        expert_ids.extend([e] * (padded // block_size))
    total = len(sorted_ids)
    sorted_ids.extend([numel] * (max_padded - total))
    expert_ids.extend([-1] * (max_blocks - len(expert_ids)))
    return sorted_ids, expert_ids, total


def naive_assignment(M: int, k: int, E: int) -> bool:
    """vLLM's _prepare_expert_assignment skips the alignment for tiny batches."""
    return M * k * 4 <= E


# --------------------------------------------------------------------------- trace


def call(vllm_mod_getter: Any, shp: dict, T: Any) -> None:
    """Build A/B/C and the alignment, then run invoke_fused_moe_triton_kernel (w13 GEMM)."""
    import triton.language as tl

    fm = vllm_mod_getter("vllm.model_executor.layers.fused_moe.fused_moe")
    E, k, K, N, M = shp["E"], shp["top_k"], shp["K"], shp["N"], shp["M"]
    dtype = shp["dtype"]
    w1_shape = (E, N, K)
    w2_shape = (E, K, N // 2)
    config = fm.try_get_optimal_moe_config(w1_shape, w2_shape, k, None, M)
    topk_ids = routing(M, E, k, shp.get("routing_seed", ROUTING_SEED))

    A = T.tensor("hidden_states", (M, K), dtype, "randn")
    B = T.tensor("w13", (E, N, K), dtype, ("randn_scaled", round(1.0 / math.sqrt(K), 6)))
    C = T.tensor("intermediate_cache1", (M, k, N), dtype, "empty")
    topk_weights = T.tensor("topk_weights", (M, k), "float32", ("const", 1.0 / k))
    bias = T.tensor("w13_bias", (E, N), dtype, ("randn_scaled", 0.02)) if shp.get("has_bias") else None
    if naive_assignment(M, k, E):
        flat = [e for row in topk_ids for e in row]
        sorted_ids = None
        expert_ids = T.tensor("expert_ids", (M * k,), "int32", ("values", flat))
        ntp = T.tensor("num_tokens_post_padded", (1,), "int32", ("values", [M * k * config["BLOCK_SIZE_M"]]))
    else:
        s, e, total = align_block_size(topk_ids, config["BLOCK_SIZE_M"], E)
        sorted_ids = T.tensor("sorted_token_ids", (len(s),), "int32", ("values", s))
        expert_ids = T.tensor("expert_ids", (len(e),), "int32", ("values", e))
        ntp = T.tensor("num_tokens_post_padded", (1,), "int32", ("values", [total]))
    compute_type = {"bfloat16": tl.bfloat16, "float16": tl.float16, "float32": tl.float32}[dtype]
    fm.invoke_fused_moe_triton_kernel(
        A, B, C, None, None, topk_weights, sorted_ids, expert_ids, ntp,
        False,            # mul_routed_weight: the router weight is applied in the w2 GEMM
        k, config, compute_type,
        False, False, False, False, False,   # fp8_w8a8, int8_w8a8, int8_w8a16, int4_w4a16, per_channel
        None, bias)


def flops_bytes(shp: dict, launch: dict) -> tuple[float | None, float | None]:
    """2*M*top_k*N*K FLOPs; bytes: A once per routed row, every expert's weights, C."""
    M, k, N, K, E = shp["M"], shp["top_k"], shp["N"], shp["K"], shp["E"]
    es = DTYPE_BYTES.get(shp["dtype"], 2)
    flops = 2.0 * M * k * N * K
    bytes_ = (M * K + E * N * K + M * k * N) * es
    return flops, float(bytes_)


RECIPES = (
    triton_recipe(KERNELS, Family.MOE, shapes, call,
                  workloads=WORKLOADS, default_workload=DEFAULT_WORKLOAD, needs=(Need.MOE,), flops_bytes=flops_bytes),
)
