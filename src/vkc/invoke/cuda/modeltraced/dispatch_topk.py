"""Dispatch rules for the top-k ops (sparse-attention indexer top-k, softplus-sqrt / sigmoid MoE routing).

Each rule restates its host function's own branches (vLLM 0.33.0, file named in the docstring);
device queries take vkc's H100 answers (:mod:`.dispatch_args`).  An empty set: the host function
fails its checks or returns before any launch; None: the call does not record what the branch reads.
"""
from __future__ import annotations

from collections.abc import Callable

from vkc.modeltrace.records import TensorArg, TracedEvent

from .binding import tensor
from .dispatch_args import NUM_SMS, SM_VERSION, SMEM_OPTIN, aligned, numel, opt_bool, opt_int, tensor_given

__all__ = ["RULES"]

_TOPK_K = (512, 1024, 2048)


def _indexer_call(ev: TracedEvent) -> tuple[TensorArg, int] | None:
    """(logits, k) of a persistent_topk / cooperative_topk call, None when not recorded."""
    logits, k = tensor(ev, "logits"), opt_int(ev, "k")
    if logits is None or k is None or len(logits.shape) != 2:
        return None
    return logits, k


def _cooperative_topk(ev: TracedEvent) -> set[str] | None:
    """csrc/cooperative_topk.cu: float32 logits, k 512/1024/2048, at most 64 rows and logits.stride(0) a
    multiple of 4; cluster size 16 for <= 4 rows on SM 10.0+ only (not the H100), 8 for <= 8 rows,
    4 for <= 33, else 2."""
    got = _indexer_call(ev)
    if got is None:
        return None
    logits, k = got
    rows = logits.shape[0]
    if k not in _TOPK_K or logits.dtype != "float32" or rows > 64 or logits.stride[0] % 4:
        return set()
    if rows <= 4 and SM_VERSION >= 100:
        return {"cooperative_topk_cs16"}
    return {"cooperative_topk_cs8" if rows <= 8 else "cooperative_topk_cs4" if rows <= 33 else "cooperative_topk_cs2"}


# csrc/persistent_topk.cuh / sampled_topk.cuh constants
_THREADS = 1024                               # persistent::kThreadsPerBlock
_SMEM_MEDIUM = 3200 + 2 * 4096 * 4            # kSmemMedium = 35968
_FIXED_SMEM_LARGE = ((256 + 256 + 5) * 4 + 15) & ~15   # kFixedSmemLarge = 2080
_RADIX_THRESHOLD = 32768
_MAX_BLOCKS_PER_SM = 2048 // _THREADS         # resident 1024-thread blocks per SM (2048 threads)


def _ctas_per_group(logits: TensorArg, rows: int) -> int:
    """launch_persistent_topk's ctas_per_group (its chunking of one row over cooperating CTAs)."""
    stride = logits.stride[0]
    cap = _SMEM_MEDIUM if rows <= 4 else 48 * 1024 if rows <= 8 else SMEM_OPTIN
    max_chunk = (min(SMEM_OPTIN, cap) - _FIXED_SMEM_LARGE) // 4
    vec = 4 if stride % 4 == 0 and aligned(logits, 16) else 2 if stride % 2 == 0 and aligned(logits, 8) else 1
    max_chunk = max((max_chunk // vec) * vec, vec * _THREADS)
    return (stride + max_chunk - 1) // max_chunk


def _persistent_topk(ev: TracedEvent) -> set[str] | None:
    """csrc/topk.cu launch_persistent_topk on the H100 (227 KiB opt-in smem): more than 64 rows and
    max_seq_len >= kMinSampledLength (98304 for k 512, else 65536) take sampled_topk_kernel; more
    than 32 rows FilteredTopK; the rest the cooperative persistent_topk_kernel, unless
    max_seq_len > RADIX_THRESHOLD and one row's CTAs exceed the resident cap (SMs x occupancy),
    which falls back to FilteredTopK (top_k_per_row_decode only below 128 KiB smem).  The
    occupancy query is answered by the compiled kernel, so a row of 133..264 CTAs is unknown."""
    got = _indexer_call(ev)
    max_seq_len = opt_int(ev, "max_seq_len")
    if got is None or max_seq_len is None:
        return None
    logits, k = got
    rows = logits.shape[0]
    if k not in _TOPK_K or logits.dtype != "float32":
        return set()
    if rows > 64 and max_seq_len >= (98304 if k == 512 else 65536) and SMEM_OPTIN >= 144 * 1024:
        return {"sampled_topk_kernel"}
    if rows > 32 and SMEM_OPTIN >= 128 * 1024:
        return {"FilteredTopKUnifiedKernel"}
    cpg = _ctas_per_group(logits, rows)
    if max_seq_len <= _RADIX_THRESHOLD or cpg <= NUM_SMS:
        return {"persistent_topk_kernel"}
    if cpg <= NUM_SMS * _MAX_BLOCKS_PER_SM:
        return None      # fits or not by cudaOccupancyMaxActiveBlocksPerMultiprocessor's answer
    return {"FilteredTopKUnifiedKernel" if SMEM_OPTIN >= 128 * 1024 else "topKPerRowDecode"}


_SOFTPLUS_EXPERTS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 192, 320, 384, 448, 576)


def _topk_softplus_sqrt(ev: TracedEvent) -> set[str] | None:
    """csrc/moe/topk_softplus_sqrt_kernels.cu: hash routing (``tid2eid`` passed) with float32 gating,
    top-k 6, renormalize and 256 or 384 experts takes dsv4HashTopkSoftplusSqrt (no launch for zero
    rows); every other call topkGatingSoftplusSqrt for the expert counts of its switch."""
    gate, weights = tensor(ev, "gating_output"), tensor(ev, "topk_weights")
    renorm = opt_bool(ev, "renormalize")
    hashed = tensor_given(ev, "tid2eid", default_none=False)
    if gate is None or weights is None or not gate.shape or not weights.shape or renorm is None or hashed is None:
        return None
    experts, topk = gate.shape[-1], weights.shape[-1]
    if experts == 0:
        return None      # numel / num_experts divides by zero
    if gate.dtype not in ("float32", "float16", "bfloat16"):
        return set()
    if hashed and gate.dtype == "float32" and topk == 6 and renorm and experts in (256, 384):
        return {"dsv4HashTopkSoftplusSqrt"} if numel(gate) // experts else set()
    return {"topkGatingSoftplusSqrt"} if experts in _SOFTPLUS_EXPERTS else set()


_SIGMOID_EXPERTS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 192, 320, 352, 384, 448, 576)


def _topk_sigmoid(ev: TracedEvent) -> set[str] | None:
    """csrc/moe/topk_softmax_kernels.cu topk_sigmoid (topkGatingKernelLauncher, SCORING_SIGMOID): the
    fused topkGating kernel for the expert counts of its switch (powers of two to 512, the multiples
    of 64 192..576 and, for sigmoid only, 352), else moeSigmoid into the workspace and moeTopK."""
    gate = tensor(ev, "gating_output")
    if gate is None or not gate.shape or gate.shape[-1] == 0:
        return None      # no experts: numel / num_experts divides by zero
    if gate.dtype not in ("float32", "float16", "bfloat16"):
        return set()
    return {"topkGating"} if gate.shape[-1] in _SIGMOID_EXPERTS else {"moeSigmoid", "moeTopK"}


# csrc/moe/grouped_topk_kernels.cu: single_group_topk's (experts, top-k) tiers by scoring function,
# and the expert counts of the fused kernels
_SIGMOID_TIERS = ((128, 8), (256, 8), (384, 8), (512, 8), (512, 22), (768, 16), (896, 16), (1024, 16))
_SOFTMAX_TIERS = ((128, 4), (128, 8), (160, 8), (256, 8), (256, 16), (512, 8), (512, 16), (512, 22), (512, 32),
                  (576, 8), (768, 16), (896, 16), (1024, 16))
_MAX_SUPPORTED_EXPERTS, _DEEPSEEK_EXPERTS, _EXPERTS_UNIT = 512, 256, 128
_DEFAULT_MAX_TOP, _MAX_SUPPORTED_TOP, _MAX_TOP_GROUPS = 8, 22, 4


def _grouped_topk(ev: TracedEvent) -> set[str] | None:
    """csrc/moe/grouped_topk_kernels.cu grouped_topk -> invokeNoAuxTc: one group choosing one group
    takes single_group_topk's first tier that holds (experts, top-k) (sigmoid / none tiers), the block
    kernel when the tier is a tuned 16-of-896/1024 one, past 1024 experts, or at >= 256 experts with
    <= 1024 tokens, else the warp kernel; without a tier, the small-expert-count fused kernel for the
    single and multi-group shapes it takes, else grouped_topk_fused_kernel."""
    scores = tensor(ev, "scores")
    n_group, topk_group, topk = opt_int(ev, "n_group"), opt_int(ev, "topk_group"), opt_int(ev, "topk")
    sf = opt_int(ev, "scoring_func", 0)
    if scores is None or len(scores.shape) != 2 or None in (n_group, topk_group, topk, sf):
        return None
    assert n_group is not None and topk_group is not None and topk is not None
    tokens, experts = scores.shape
    if (n_group <= 0 or topk <= 0 or topk_group <= 0 or topk_group > n_group or experts % n_group or n_group > 32
            or topk > 32 or topk > topk_group * (experts // n_group) or sf not in (0, 1)):
        return set()
    if n_group == 1 and topk_group == 1:
        tier = next(((e, k) for e, k in (_SIGMOID_TIERS if sf == 1 else _SOFTMAX_TIERS)
                     if experts <= e and topk <= k), None)
        if tier is not None:
            tuned = tier[1] == 16 and tier[0] in (896, 1024)
            block = tuned or tier[0] > 1024 or experts >= 1024 or (experts >= 256 and tokens <= 1024)
            return {"single_group_topk_block_kernel" if block else "single_group_topk_warp_kernel"}
    single = (n_group == 1 and topk_group == 1 and experts <= _MAX_SUPPORTED_EXPERTS
              and (topk <= _DEFAULT_MAX_TOP or topk == _MAX_SUPPORTED_TOP))
    per_group = experts // n_group
    multi = (n_group > 1 and experts <= _DEEPSEEK_EXPERTS and per_group <= 32 and per_group * topk_group <= _EXPERTS_UNIT
             and topk <= _DEFAULT_MAX_TOP and topk_group <= _MAX_TOP_GROUPS)
    return {"grouped_topk_fused_small_expert_count_kernel" if single or multi else "grouped_topk_fused_kernel"}


RULES: dict[str, Callable[[TracedEvent], set[str] | None]] = {
    "_moe_C::grouped_topk": _grouped_topk,
    "_C::cooperative_topk": _cooperative_topk,
    "_C::persistent_topk": _persistent_topk,
    "_moe_C::topk_softplus_sqrt": _topk_softplus_sqrt,
    "_moe_C::topk_sigmoid": _topk_sigmoid,
}
