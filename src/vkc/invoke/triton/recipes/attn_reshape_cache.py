"""triton_reshape_and_cache_flash (vllm/v1/attention/ops/triton_reshape_and_cache_flash.py):
write new K/V tokens into the paged cache (NHD layout ``[num_blocks, block_size, H_kv, D]``,
key/value split from one ``kv_cache [num_blocks, block_size, H_kv, 2*D]`` buffer as the Triton
backend does).

The cache pool fills the budget; prefill writes ``min(16384, slots)`` tokens, decode 256
(one per request), each to a distinct random slot.
"""
from __future__ import annotations

from vkc.invoke.core.dims import Need
from vkc.invoke.core.family import Family
from vkc.invoke.triton.recipes import _attn
from vkc.invoke.triton.recipes.base import ATTENTION_HELPERS, triton_recipe

KERNELS = ("vllm.v1.attention.ops.triton_reshape_and_cache_flash:reshape_and_cache_kernel_flash",)
WORKLOADS = ("prefill", "decode")
DEFAULT_WORKLOAD = "prefill"
PREFILL_TOKENS = 16384
DECODE_TOKENS = 256


def shapes(model: dict, workload: str, budget_bytes: int, small: bool) -> dict:
    d = _attn.dims(model, small)
    it = _attn.itemsize(d["dtype"])
    bs = _attn.BLOCK_SIZE
    kv_tok = 2 * d["H_kv"] * d["D"] * it
    if small:
        num_blocks, tokens = 4, 9
    else:
        tokens = PREFILL_TOKENS if workload == "prefill" else DECODE_TOKENS
        num_blocks = max(-(-tokens // bs), (budget_bytes - 2 * tokens * kv_tok) // (bs * kv_tok))
    return dict(d, workload=workload, tokens=tokens, block_size=bs, num_blocks=int(num_blocks))


def call(get, shp: dict, T) -> None:
    mod = get("vllm.v1.attention.ops.triton_reshape_and_cache_flash")
    n, hkv, D, bs, dt, nb = shp["tokens"], shp["H_kv"], shp["D"], shp["block_size"], shp["dtype"], shp["num_blocks"]
    key = T.tensor("key", [n, hkv, D], dt, "randn")
    value = T.tensor("value", [n, hkv, D], dt, "randn")
    kv_cache = T.tensor("kv_cache", [nb, bs, hkv, 2 * D], dt, "zeros")
    key_cache, value_cache = kv_cache.split(D, dim=-1)
    slot_mapping = T.tensor("slot_mapping", [n], "int64", ("slot_mapping", nb * bs))
    k_scale = T.tensor("k_scale", [], "float32", ("const", 1.0))
    v_scale = T.tensor("v_scale", [], "float32", ("const", 1.0))
    mod.triton_reshape_and_cache_flash(key, value, key_cache, value_cache, slot_mapping, "auto", k_scale, v_scale)


def flops_bytes(shp: dict, launch: dict):
    it = _attn.itemsize(shp["dtype"])
    return None, float(2 * 2 * shp["tokens"] * shp["H_kv"] * shp["D"] * it)


RECIPES = (
    triton_recipe(KERNELS, Family.ATTENTION, shapes, call,
                  workloads=WORKLOADS, default_workload=DEFAULT_WORKLOAD, needs=(Need.ATTENTION,),
                  flops_bytes=flops_bytes, helpers=ATTENTION_HELPERS),
)
