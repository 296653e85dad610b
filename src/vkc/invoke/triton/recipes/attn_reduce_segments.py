"""reduce_segments: the second launch of unified_attention's 3D (split-KV) decode path.

Same wrapper and shapes as :mod:`.attn_unified` (decode only: the 3D path needs
``max_seqlen_q <= 8`` and ``num_seqs <= seq_threshold_3D``).
"""
from __future__ import annotations

from vkc.invoke.core.dims import Need
from vkc.invoke.core.family import Family
from vkc.invoke.triton.recipes import attn_unified
from vkc.invoke.triton.recipes.base import ATTENTION_HELPERS, triton_recipe

KERNELS = ("vllm.v1.attention.ops.triton_unified_attention:reduce_segments",)
WORKLOADS = ("decode",)
DEFAULT_WORKLOAD = "decode"

shapes = attn_unified.shapes
call = attn_unified.call


def flops_bytes(shp: dict, launch: dict):
    # reads the fp32 segment partials, writes the output
    B, hq, D = shp["batch"], shp["H_q"], shp["D"]
    nseg = shp["num_segments"]
    hpad = 1 << (D - 1).bit_length()
    return None, float(B * hq * nseg * (hpad + 2) * 4 + B * hq * D * 2)


RECIPES = (
    triton_recipe(KERNELS, Family.ATTENTION, shapes, call,
                  workloads=WORKLOADS, default_workload=DEFAULT_WORKLOAD, needs=(Need.ATTENTION,),
                  flops_bytes=flops_bytes,
                  helpers=(*ATTENTION_HELPERS, "vkc.invoke.triton.recipes.attn_unified")),
)
