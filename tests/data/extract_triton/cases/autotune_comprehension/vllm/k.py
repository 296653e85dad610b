from vllm.triton_utils import tl, triton
from vllm.utils import NUM_WARPS, is_hopper


def _configs(stages):
    out = []
    for bk in [32, 64]:
        if bk == 64 and not is_hopper:
            continue
        out.append(triton.Config({"BK": bk}, num_stages=stages))
    return out


@triton.heuristics({"EVEN": lambda args: args["N"] % args["BK"] == 0, "HOPPER": lambda args: is_hopper})
@triton.autotune(
    configs=[
        triton.Config({"BK": bk, "BV": bv}, num_warps=nw, num_stages=2)
        for bk in [32, 64]
        for bv in [16, 32]
        for nw in NUM_WARPS
        if bk * bv <= 1024
    ] + _configs(3),
    key=["N"],
)
@triton.jit
def entry(x_ptr, N, BK: tl.constexpr, BV: tl.constexpr, EVEN: tl.constexpr, HOPPER: tl.constexpr):
    offs = tl.arange(0, BK)
    tl.store(x_ptr + offs, tl.load(x_ptr + offs) + BV)
