"""Recipe: multi-LoRA shrink (``_lora_shrink_kernel``).

``lora_shrink_op._lora_shrink(...)`` as ``PunicaWrapperGPU.add_shrink`` calls it: input
``[tokens, hidden_size]``, one LoRA-A slice ``[max_loras, 1, rank, hidden_size]`` (rank
``RANK``), fp32 output ``[1, tokens, rank]``, scale 1.0.  ``MAX_LORAS`` adapters are
active and the tokens are split evenly between them in order, so the metadata that
``LoRAKernelMeta.prepare_tensors`` builds is: ``token_indices_sorted_by_lora_ids`` =
0..tokens-1, ``active_lora_ids`` = [0..MAX_LORAS-1, -1], equal ``num_tokens_per_lora``,
``lora_token_start_loc`` their prefix sums; grid z = ``max_loras + 1`` (vLLM's default,
``specialize_active_lora=False``).  One slice: a multi-slice layer (qkv: 3, gate_up: 2)
hands the kernel a device table of raw weight pointers, which a standalone script
cannot reproduce from a trace.  Config: vLLM's ``get_lora_op_configs("shrink", ...)``.
Sizing: prefill fills the budget up to ``GEMM_MAX_TOKENS`` tokens; decode uses
``DECODE_TOKENS``.
"""
from __future__ import annotations

from typing import Any

from vkc.invoke.core.family import Family
from vkc.invoke.triton.recipes.base import DTYPE_BYTES, model_dtype, triton_recipe

KERNELS: tuple[str, ...] = ("vllm.lora.ops.triton_ops.lora_shrink_op:_lora_shrink_kernel",)
WORKLOADS: tuple[str, ...] = ("prefill", "decode")
DEFAULT_WORKLOAD = "prefill"

RANK = 16
MAX_LORAS = 4
DECODE_TOKENS = 256
GEMM_MAX_TOKENS = 16384
ROW_MULTIPLE = 256


def shapes(model: dict, workload: str, budget_bytes: int, small: bool) -> dict:
    hidden = int(model["hidden_size"])
    if small:
        return {"tokens": 16, "hidden": 128, "rank": RANK, "max_loras": 2, "dtype": "float16",
                "workload": workload, "notes": ["SMALL_SANITY sizes (not the model's)"]}
    dtype = model_dtype(model)
    es = DTYPE_BYTES[dtype]
    if workload == "decode":
        tokens = DECODE_TOKENS
    else:
        fit = (budget_bytes - MAX_LORAS * RANK * hidden * es) // (hidden * es + RANK * 4 + 16)
        tokens = max(ROW_MULTIPLE, (min(fit, GEMM_MAX_TOKENS) // ROW_MULTIPLE) * ROW_MULTIPLE)
    return {"tokens": int(tokens), "hidden": hidden, "rank": RANK, "max_loras": MAX_LORAS,
            "dtype": dtype, "workload": workload,
            "notes": [f"{MAX_LORAS} active LoRA adapters of rank {RANK}, tokens split evenly; one LoRA-A slice"]}


def lora_metadata(tokens: int, max_loras: int) -> dict[str, list[int]]:
    """What LoRAKernelMeta.prepare_tensors computes for an even, in-order split."""
    per = [tokens // max_loras + (1 if i < tokens % max_loras else 0) for i in range(max_loras)]
    mapping = [i for i, c in enumerate(per) for _ in range(c)]
    start = [0]
    for c in per:
        start.append(start[-1] + c)
    return {"token_lora_mapping": mapping, "lora_ids": list(range(max_loras)) + [-1],
            "num_tokens_per_lora": per + [0], "lora_token_start_loc": start + [0]}


def call(vllm_mod_getter: Any, shp: dict, T: Any) -> None:
    import torch

    m, h, r, n_l, dtype = shp["tokens"], shp["hidden"], shp["rank"], shp["max_loras"], shp["dtype"]
    op = vllm_mod_getter("vllm.lora.ops.triton_ops.lora_shrink_op")
    utils = vllm_mod_getter("vllm.lora.ops.triton_ops.utils")
    utils._LORA_A_PTR_DICT.clear()        # keyed by data_ptr(), which is 0 for every meta tensor
    meta = lora_metadata(m, n_l)
    x = T.tensor("inputs", (m, h), dtype, "randn")
    lora_a = T.tensor("lora_a", (n_l, 1, r, h), dtype, ("randn_scaled", 0.02))
    out = T.tensor("lora_out", (1, m, r), "float32", "zeros")
    mapping = T.tensor("token_lora_mapping", (m,), "int32", ("values", meta["token_lora_mapping"]))
    sorted_idx = T.tensor("token_indices_sorted_by_lora_ids", (m,), "int32", ("arange", 0, 1))
    per = T.tensor("num_tokens_per_lora", (n_l + 1,), "int32", ("values", meta["num_tokens_per_lora"]))
    start = T.tensor("lora_token_start_loc", (n_l + 2,), "int32", ("values", meta["lora_token_start_loc"]))
    ids = T.tensor("active_lora_ids", (n_l + 1,), "int32", ("values", meta["lora_ids"]))
    no_lora = torch.tensor([False], dtype=torch.bool)            # CPU flags, as vLLM keeps them
    num_active = torch.tensor([n_l + 1], dtype=torch.int32)
    try:
        op._lora_shrink(x, [lora_a], out, mapping, sorted_idx, per, start, ids, no_lora, num_active, 1.0)
    finally:
        utils._LORA_A_PTR_DICT.clear()


def flops_bytes(shp: dict, launch: dict) -> tuple[float | None, float | None]:
    m, h, r, n_l = shp["tokens"], shp["hidden"], shp["rank"], shp["max_loras"]
    es = DTYPE_BYTES.get(shp["dtype"], 2)
    return 2.0 * m * h * r, float(m * h * es + n_l * r * h * es + m * r * 4)


RECIPES = (
    triton_recipe(KERNELS, Family.LORA, shapes, call,
                  workloads=WORKLOADS, default_workload=DEFAULT_WORKLOAD, flops_bytes=flops_bytes),
)
