"""Which of an op's kernels one traced call launches: :func:`call_launches`.

The op map (:mod:`.opmap`) lists every kernel an op's host function can reach; a given call takes
one branch of its dispatch (``moe_sum``: the vector kernel for top-k in its switch, the dynamic one
otherwise, the scalar one for unaligned rows).  These rules read the wrapper's own tests off the
traced tensors, for the ops of the bundled models and the multi-kernel ops vLLM's tests call (rule
modules :mod:`.dispatch_quant`, :mod:`.dispatch_topk`, :mod:`.dispatch_fused`); an op without a
rule answers None (unknown).
Overloads that share a name (``fused_add_rms_norm_kernel``'s two ``enable_if`` forms) are told apart
by a text their declaration holds (:data:`_OVERLOADS`), read from the tree when the caller passes the
kernel's index entry; definitions that share a name under ``__CUDA_ARCH__`` guards (``Marlin``'s
pre-Turing stub and the real kernel) by which one the SM 9.0 device pass compiles (:data:`_DEVICE_LIVE`).
``vkc collect --all-used`` uses it to skip kernels the step's calls never launch.
"""
from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path

from vkc.modeltrace.records import TensorArg, TracedEvent
from vkc.records import KernelEntry, SourceTree

from .binding import register_path, scalar, tensor
from .dispatch_args import GENERIC_DECL, SM_VERSION, VECTORIZED_DECL
from .dispatch_fused import RULES as _FUSED_RULES
from .dispatch_marlin import MARLIN_DEVICE
from .dispatch_marlin import RULES as _MARLIN_RULES
from .dispatch_quant import OVERLOADS as _QUANT_OVERLOADS
from .dispatch_quant import RULES as _QUANT_RULES
from .dispatch_topk import RULES as _TOPK_RULES

__all__ = ["call_launches", "launched_kernels"]

_POW2 = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)
_MULT64 = (192, 320, 384, 448, 576)
_MOE_SUM_TOPK = (1, 2, 4, 6, 8, 9)


def _aligned(*ts: TensorArg) -> bool:
    return all((t.offset * t.itemsize) % 16 == 0 for t in ts)


def _moe_sum(ev: TracedEvent) -> set[str] | None:
    inp, out = tensor(ev, "input"), tensor(ev, "output")
    if inp is None or out is None or len(inp.shape) != 3:
        return None
    vec = 16 // inp.itemsize
    can_vec = (inp.stride[2] == 1 and inp.shape[2] % vec == 0 and inp.stride[0] % vec == 0
               and inp.stride[1] % vec == 0 and _aligned(inp, out))
    if not can_vec:
        return {"moe_sum_scalar_kernel"}
    return {"moe_sum_vec_kernel" if inp.shape[1] in _MOE_SUM_TOPK else "moe_sum_vec_dynamic_kernel"}


def _topk_softmax(ev: TracedEvent) -> set[str] | None:
    gate = tensor(ev, "gating_output")
    if gate is None:
        return None
    e = gate.shape[-1]
    return {"topkGating"} if e in _POW2 or e in _MULT64 else {"moeSoftmax", "moeTopK"}


def _group_quant(ev: TracedEvent) -> set[str] | None:
    return {"per_token_group_quant_8bit_register_kernel" if register_path(ev) else
            "per_token_group_quant_8bit_kernel"}


def _moe_align(ev: TracedEvent) -> set[str] | None:
    ids, e = tensor(ev, "topk_ids"), scalar(ev, "num_experts")
    if ids is None or not isinstance(e, int):
        return None
    numel = 1
    for n in ids.shape:
        numel *= n
    if numel < 1024 and e <= 64:
        return {"moe_align_block_size_small_batch_expert_kernel"}
    return {"moe_align_block_size_kernel", "count_and_sort_expert_tokens_kernel"}


def _moe_lora_align(ev: TracedEvent) -> set[str] | None:
    """csrc/moe/moe_align_sum_kernels.cu moe_lora_align_block_size: the small-batch kernel below 1024
    top-k ids with at most 64 experts, else the align kernel and the count-and-sort kernel; a
    block_size below 1 or 1024+ padded experts fail its checks."""
    ids, e, block = tensor(ev, "topk_ids"), scalar(ev, "num_experts"), scalar(ev, "block_size")
    if ids is None or not isinstance(e, int) or not isinstance(block, int):
        return None
    numel = 1
    for n in ids.shape:
        numel *= n
    if block <= 0 or (e + 31) // 32 * 32 >= 1024:
        return set()
    if numel < 1024 and e <= 64:
        return {"moe_lora_align_block_size_small_batch_expert_kernel"}
    return {"moe_lora_align_block_size_kernel", "lora_count_and_sort_expert_tokens_kernel"}


def _concat_mla(ev: TracedEvent) -> set[str] | None:
    dt = scalar(ev, "kv_cache_dtype")
    if not isinstance(dt, str):
        return None
    return {{"fp8_ds_mla": "concat_and_cache_ds_mla_kernel",
             "nvfp4_ds_mla": "concat_and_cache_nvfp4_ds_mla_kernel"}.get(dt, "concat_and_cache_mla_kernel")}


def _reshape_and_cache_flash(ev: TracedEvent) -> set[str] | None:
    """csrc/cache_kernels.cu reshape_and_cache_flash: the NVFP4 caches take their own kernel."""
    dt = scalar(ev, "kv_cache_dtype")
    if not isinstance(dt, str):
        return None
    return {"reshape_and_cache_nvfp4_kernel" if dt in ("nvfp4", "nvfp4_4over6") else "reshape_and_cache_flash_kernel"}


def _fused_add_rms_norm(ev: TracedEvent) -> set[str] | None:
    """csrc/layernorm_kernels.cu fused_add_rms_norm: ``LAUNCH_FUSED_ADD_RMS_NORM(8, ...)`` when the
    pointers are 16-byte aligned and hidden size and both row strides are multiples of 8 (not batch
    invariant, vkc's default), else width 0; width 8 picks the vectorized overload for the types
    with a ``_typeConvert`` (float, half, bfloat16), every other case the generic one."""
    inp, res, w = tensor(ev, "input"), tensor(ev, "residual"), tensor(ev, "weight")
    if inp is None or res is None or len(inp.shape) < 2 or len(res.shape) < 2:
        return None
    hidden = inp.shape[-1]
    aligned = _aligned(inp, res, *((w,) if w is not None else ()))
    width8 = aligned and hidden % 8 == 0 and inp.stride[-2] % 8 == 0 and res.stride[-2] % 8 == 0
    vec = width8 and inp.dtype in ("float32", "float16", "bfloat16")
    return {"fused_add_rms_norm_kernel@vectorized" if vec else "fused_add_rms_norm_kernel@generic"}


# overload label -> a text only that overload's declaration (its first lines) holds
_OVERLOADS: dict[str, str] = {
    "fused_add_rms_norm_kernel@vectorized": VECTORIZED_DECL,
    "fused_add_rms_norm_kernel@generic": GENERIC_DECL,
    **_QUANT_OVERLOADS,
}


_RULES: dict[str, Callable[[TracedEvent], set[str] | None]] = {
    "_moe_C::moe_sum": _moe_sum,
    "_moe_C::topk_softmax": _topk_softmax,
    "_C::per_token_group_fp8_quant": _group_quant,
    "_C::per_token_group_quant_int8": _group_quant,     # the same per_token_group_quant_8bit host code
    "_moe_C::moe_align_block_size": _moe_align,
    "_moe_C::moe_lora_align_block_size": _moe_lora_align,
    "_C_cache_ops::concat_and_cache_mla": _concat_mla,
    "_C_cache_ops::reshape_and_cache_flash": _reshape_and_cache_flash,
    "_C::fused_add_rms_norm": _fused_add_rms_norm,
    **_QUANT_RULES,      # GPTQ gemm / shuffle, int8 and dynamic FP8 quant, situ_and_mul_quant, add-RMS-norm + FP8
    **_TOPK_RULES,       # grouped_topk, persistent_topk, cooperative_topk, topk_softplus_sqrt, topk_sigmoid
    **_FUSED_RULES,      # masked_moe_activation, fused_qk_norm_rope, DeepSeek-V4 KV insert, MiniMax QK norm
    **_MARLIN_RULES,     # marlin_gemm, moe_wna16_marlin_gemm
}

# labels resolved by the arch guards around the definition: the one live when __CUDA_ARCH__ is the H100's
_DEVICE_LIVE = frozenset({MARLIN_DEVICE})


def launched_kernels(ev: TracedEvent) -> frozenset[str] | None:
    """The kernels (bare names, ``name@line`` for overloads) this call launches; None: no rule."""
    rule = _RULES.get(ev.name)
    got = rule(ev) if rule else None
    return frozenset(got) if got is not None else None


def call_launches(kernel: str, ev: TracedEvent, *, entry: KernelEntry | None = None,
                  tree: SourceTree | None = None) -> bool | None:
    """Whether the traced call ``ev`` launches ``kernel`` (qualified or bare); None: unknown.

    A rule that names an overload (``name@label``) needs the kernel's index ``entry`` and ``tree``
    to read its declaration; without them the answer is None."""
    got = launched_kernels(ev)
    if got is None:
        return None
    bare = kernel.rsplit(":", 1)[-1]
    name = bare.split("@", 1)[0]
    if bare in got or name in got:
        return True
    labels = [g for g in got if g.split("@", 1)[0] == name and (g in _OVERLOADS or g in _DEVICE_LIVE)]
    if not labels:
        return False
    if entry is None or tree is None:
        return None
    decl = _declaration(tree, entry)
    return any(_live_on_device(tree, entry) if g in _DEVICE_LIVE else _OVERLOADS[g] in decl for g in labels)


def _live_on_device(tree: SourceTree, entry: KernelEntry) -> bool:
    """Whether the definition survives the device pass for vkc's H100 (``__CUDA_ARCH__`` = SM_VERSION x 10)
    under the CUDA build configuration (:mod:`vkc.cxx.pp`)."""
    live = _device_live_lines(str(tree.root / entry.file))
    return 0 < entry.line <= len(live) and live[entry.line - 1]


@functools.lru_cache(maxsize=64)
def _device_live_lines(path: str) -> tuple[bool, ...]:
    from vkc.cxx.pp import CUDA, BuildConfig, evaluate_conditionals

    try:
        text = Path(path).read_text(errors="replace")
    except OSError:
        return ()
    cfg = BuildConfig(defines={**CUDA.defines, "__CUDA_ARCH__": SM_VERSION * 10}, undefined=CUDA.undefined,
                      undefined_patterns=CUDA.undefined_patterns)
    return tuple(evaluate_conditionals(text, cfg)[1])


def _declaration(tree: SourceTree, entry: KernelEntry) -> str:
    """The kernel's first lines (template head to the name), whitespace collapsed."""
    try:
        lines = (tree.root / entry.file).read_text(errors="replace").splitlines()
    except OSError:
        return ""
    return " ".join(" ".join(lines[max(entry.line - 3, 0):entry.line + 2]).split())
