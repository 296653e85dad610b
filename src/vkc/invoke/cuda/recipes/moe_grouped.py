"""DeepSeek-style grouped top-k routing (csrc/moe/grouped_topk_kernels.cu): grouped_topk_fused_kernel, and
grouped_topk_fused_small_expert_count_kernel, which invokeNoAuxTc takes for DeepSeek-V3/R1 and Kimi-K2's
sizes (its ``is_multi_group`` branch)."""
from __future__ import annotations

from typing import Any

from vkc.errors import NotApplicableError
from vkc.invoke.core.dims import GROUPED_TOPK_MODELS
from vkc.invoke.cuda.literals import cpp_str
from vkc.invoke.cuda.plan import Buffer, Check, Plan, Scale, Stmt, uniform, zero
from vkc.invoke.cuda.recipes.base import NATIVE_TYPES, Ctx, Family, Need, cuda_recipe

GT = "csrc/moe/grouped_topk_kernels.cu"
DSV3_DEFAULTS = {"n_group": 8, "topk_group": 4}     # DeepSeek-V3 config.json
DEEPSEEK_TYPES = ("deepseek_v2", "deepseek_v3", "deepseek_v32", "kimi_k2")
SMALL_KERNEL_EXPERTS, SMALL_KERNEL_UNIT, SMALL_KERNEL_TOPK, SMALL_KERNEL_GROUPS = 256, 128, 8, 4


def _raw_config(model_id: str) -> dict[str, Any] | None:
    """The model's raw config.json (HF cache or bundled snapshot, never the network)."""
    try:
        from vkc.modelcfg.fetch import fetch_config
        cfg = fetch_config(model_id, offline=True).config
    except Exception:  # noqa: BLE001 - any failure: fall back to documented defaults
        return None
    if not isinstance(cfg, dict):
        return None
    text: Any = cfg.get("text_config", cfg)
    return text if isinstance(text, dict) else None


def _routing(c: Ctx) -> tuple[int, int, str, str, list[str]]:
    """(n_group, topk_group, scoring_func, where the values come from, notes)."""
    d = c.dims
    raw = _raw_config(d.model_id) or {}
    mtype = str(raw.get("model_type") or "")
    ng, tg = raw.get("n_group"), raw.get("topk_group")
    notes: list[str] = []
    if ng is None or tg is None:
        if mtype not in DEEPSEEK_TYPES:
            raise NotApplicableError(
                f"grouped_topk_fused_kernel routes DeepSeek-style grouped top-k; model {d.model_id} has no "
                "n_group/topk_group (its router is topkGating / fused_topk)",
                hint=f"use a grouped-top-k model, e.g. {GROUPED_TOPK_MODELS}")
        ng, tg = DSV3_DEFAULTS["n_group"], DSV3_DEFAULTS["topk_group"]
        src = "DeepSeek-V3 defaults n_group=8, topk_group=4 (config.json lacks them)"
        notes.append(f"{d.model_id}: n_group/topk_group not in its config; DeepSeek-V3 defaults 8/4 used")
    else:
        src = "config.json n_group / topk_group"
    if raw and raw.get("topk_method") not in (None, "noaux_tc"):
        raise NotApplicableError(
            f"grouped_topk_fused_kernel is not launched for {d.model_id}: topk_method={raw.get('topk_method')} "
            "has no e_score_correction_bias, so vLLM routes with the torch grouped_topk",
            hint=f"use a noaux_tc model, e.g. {GROUPED_TOPK_MODELS}")
    sf = str(raw.get("scoring_func") or "sigmoid")
    return int(ng), int(tg), sf, src, notes


def _vllm_path(E: int, ng: int, tg: int, k: int) -> str:
    """What invokeNoAuxTc launches for these sizes (the header says it)."""
    epg = E // ng
    if ng == 1 and tg == 1:
        return "single_group_topk (n_group == topk_group == 1) for these sizes"
    if (E <= SMALL_KERNEL_EXPERTS and epg <= 32 and epg * tg <= SMALL_KERNEL_UNIT and k <= SMALL_KERNEL_TOPK
            and tg <= SMALL_KERNEL_GROUPS):
        return "grouped_topk_fused_small_expert_count_kernel<..., 256, true> (is_multi_group) for these sizes"
    return "grouped_topk_fused_kernel"


# TORCH_CHECKs of invokeNoAuxTc, restated as runtime checks of the program: (condition, message)
_WRAPPER_CHECKS = (
    ("num_experts % n_group == 0", "num_experts should be divisible by n_group"),
    ("n_group <= 32", "n_group should be smaller than or equal to 32 for now"),
    ("topk <= 32", "topk should be smaller than or equal to 32 for now"),
    ("topk_group <= n_group", "topk_group must be <= n_group"),
    ("topk <= topk_group * (num_experts / n_group)", "topk must be <= topk_group * (num_experts / n_group)"),
)


def _launch(c: Ctx, after: int) -> tuple[Stmt, ...]:
    """invokeNoAuxTc's launch configuration (block, dynamic shared memory), copied."""
    return (
        c.w(GT, "config.blockDim = static_cast<uint32_t>(n_group) * WARP_SIZE;",
            "const dim3 blockDim(static_cast<uint32_t>(n_group) * WARP_SIZE);", after=after),
        c.w(GT, "int32_t const num_warps = static_cast<int32_t>(n_group);", after=after),
        c.w(GT, "size_t const val_bytes = static_cast<size_t>(num_warps) * WARP_SIZE * sizeof(T);", after=after),
        c.w(GT, "size_t const val_bytes_aligned = warp_topk::round_up_to_multiple_of<256>(val_bytes);",
            "size_t const val_bytes_aligned = vllm::moe::warp_topk::round_up_to_multiple_of<256>(val_bytes);",
            after=after),
        c.w(GT, "size_t const idx_bytes = static_cast<size_t>(num_warps) * WARP_SIZE * sizeof(int32_t);",
            after=after),
        c.w(GT, "size_t const internal_bytes = val_bytes_aligned + idx_bytes;", after=after),
        c.w(GT, "size_t const extra_bytes = 16 + static_cast<size_t>(n_group) * sizeof(T);", after=after),
        c.w(GT, "config.dynamicSmemBytes = internal_bytes + extra_bytes;",
            "const size_t dynamicSmemBytes = internal_bytes + extra_bytes;", after=after),
    )


def _setup(c: Ctx) -> tuple[tuple[Stmt, ...], str, str, list[str], str]:
    """The constants and dispatch both kernels share: (consts, T, scoring_func name, notes, vLLM's path
    for these sizes, as the header says it)."""
    d = c.dims
    E, k = d.num_experts, d.topk
    assert E and k
    ng, tg, sf_name, src, notes = _routing(c)
    if sf_name not in ("sigmoid", "softmax"):
        raise NotApplicableError(f"grouped_topk_fused_kernel: scoring_func={sf_name} of {d.model_id} is not "
                                 "supported by vLLM's fused grouped top-k",
                                 hint=f"use a sigmoid/softmax grouped-top-k model, e.g. {GROUPED_TOPK_MODELS}")
    if ng > 32 or k > 32:
        raise NotApplicableError(f"grouped_topk_fused_kernel is not launched for {d.model_id}: n_group={ng} or "
                                 f"top_k={k} > 32 takes the torch grouped_topk",
                                 hint=f"use e.g. {GROUPED_TOPK_MODELS}")
    T = NATIVE_TYPES[c.dtype]
    consts = (
        c.const_int("num_experts", E, "n_routed_experts", ctype="int64_t",
                    src=(GT, "const int64_t num_experts = scores.size(1);")),
        c.const_int("n_group", ng, src, ctype="int64_t"),
        c.const_int("topk_group", tg, src, ctype="int64_t"),
        c.const_int("topk", k, "num_experts_per_tok", ctype="int64_t"),
        Stmt("const bool renormalize = true;", "model: norm_topk_prob"),
        Stmt("const double routed_scaling_factor = 1.0;",
             "vkc: DeepseekV2MoE passes apply_routed_scale_to_output=True on CUDA",
             "the router gets 1.0; routed_scaling_factor is applied to the MoE output"),
        Stmt(f"using T = {T};", f"dispatch: scores {c.dtype} (router logits in the model dtype) -> {T}"),
        Stmt("using BiasT = float;", "dispatch: e_score_correction_bias is float32 -> float"),
        Stmt("using IdxT = int32_t;", "dispatch: LAUNCH_KERNEL(T, int32_t)"),
    )
    return consts, T, sf_name, notes, f"E={E}, n_group={ng}, topk_group={tg}, top_k={k}: {_vllm_path(E, ng, tg, k)}"


def _buffers(sf_name: str, E: int) -> tuple[Buffer, ...]:
    score_fill = uniform(-4.0, 4.0) if sf_name == "sigmoid" else uniform(0.0, 2.0 / E)
    return (
        Buffer("scores", "T", "(size_t)num_tokens * num_experts", score_fill, "in",
               "[T, E] raw router logits" if sf_name == "sigmoid" else "[T, E] softmax scores"),
        Buffer("bias", "BiasT", "num_experts", uniform(-0.05, 0.05), "in", "[E] e_score_correction_bias"),
        Buffer("topk_values", "float", "(size_t)num_tokens * topk", zero(), "out", "[T, k] fp32"),
        Buffer("topk_indices", "IdxT", "(size_t)num_tokens * topk", zero(), "out", "[T, k] int32"),
    )


def _sf(sf_name: str) -> str:
    return "vllm::moe::SCORING_SIGMOID" if sf_name == "sigmoid" else "vllm::moe::SCORING_NONE"


_SCALE_NOTE = "router scores [T, E] + topk values/indices [T, k]"
_PDL_NOTE = ("vLLM launches with cudaLaunchKernelEx + programmatic stream serialization (PDL when num_tokens "
             "<= 16); the plain <<<>>> launch has the same grid/block/smem/arguments")


def _wrapper(c: Ctx) -> str:
    return (f"{c.at(GT, 'void invokeNoAuxTc(')} (invokeNoAuxTc, from grouped_topk at "
            f"{c.at(GT, 'std::tuple<torch::stable::Tensor, torch::stable::Tensor> grouped_topk(')})")


def grouped_topk(c: Ctx) -> Plan:
    d = c.dims
    consts, T, sf_name, notes, path = _setup(c)
    assert d.num_experts
    sf = _sf(sf_name)
    after = int(c.at(GT, "void invokeNoAuxTc(").rsplit(":", 1)[1])
    derived = (Stmt("const int64_t num_tokens = num_tokens_ll;", "vkc: one router row per token"),)
    checks = tuple(Check(cond, cpp_str(msg)) for cond, msg in _WRAPPER_CHECKS)
    if not path.endswith(": grouped_topk_fused_kernel"):
        notes.append(f"vLLM 0.33.0's invokeNoAuxTc takes {path.split(': ', 1)[1]}; this program times grouped_topk_fused_kernel "
                     "(its general path for n_group > 1 beyond those limits) at the same shapes and arguments")
    return Plan(
        kernel_symbol="vllm::moe::grouped_topk_fused_kernel", template_args=(T, "float", "int32_t", sf),
        consts=consts,
        scale=Scale("num_tokens_ll", "(size_t)num_experts * sizeof(T) + (size_t)topk * 8", small=8,
                    maximum=c.tokens_max(), fixed_bytes="(size_t)num_experts * 4", note=_SCALE_NOTE),
        derived=derived,
        buffers=_buffers(sf_name, d.num_experts),
        launch_stmts=_launch(c, after), checks=checks,
        grid="dim3(static_cast<uint32_t>(num_tokens))", block="blockDim", smem="dynamicSmemBytes",
        args=("scores", "topk_values", "topk_indices", "bias", "num_tokens", "num_experts", "n_group", "topk_group",
              "topk", "renormalize", "routed_scaling_factor"),
        dispatch=(f"grouped_topk: scores {c.dtype} -> T={T}, bias float32 -> BiasT=float, IdxT=int32_t, "
                  f"scoring_func={sf_name} -> {sf}; vLLM's invokeNoAuxTc path for {path}"),
        wrapper=_wrapper(c),
        grid_expr="num_tokens", block_expr="n_group * WARP_SIZE",
        smem_expr="round_up<256>(n_group * 32 * sizeof(T)) + n_group * 32 * 4 + 16 + n_group * sizeof(T)",
        notes=(*notes, _PDL_NOTE),
    )


def grouped_topk_small(c: Ctx) -> Plan:
    """invokeNoAuxTc's ``is_multi_group`` branch: ``<T, BiasT, IdxT, SF, NumDeepseekExperts, true>``, one
    block of NumDeepseekExperts (256) threads per token, no dynamic shared memory."""
    d = c.dims
    consts, T, sf_name, notes, path = _setup(c)
    assert d.num_experts
    if "small_expert_count" not in path:
        raise NotApplicableError(f"grouped_topk_fused_small_expert_count_kernel is not launched for {d.model_id}: "
                                 f"invokeNoAuxTc takes, for {path}", hint=f"use e.g. {GROUPED_TOPK_MODELS}")
    sf = _sf(sf_name)
    after = int(c.at(GT, "void invokeNoAuxTc(").rsplit(":", 1)[1])
    derived = (
        Stmt("const int64_t num_tokens = num_tokens_ll;", "vkc: one router row per token"),
        c.w(GT, "int64_t const experts_per_group = num_experts / n_group;", after=after),
    )
    launch = (
        c.w(GT, "int num_threads = NumDeepseekExperts;", "const int num_threads = 256;", after=after,
            note="NumDeepseekExperts = 256 (csrc/moe/grouped_topk_kernels.cu); multi-group: no single-group case"),
    )
    checks = tuple(Check(cond, cpp_str(msg)) for cond, msg in _WRAPPER_CHECKS) + (
        Check("n_group > 1 && num_experts <= 256 && experts_per_group <= 32 && experts_per_group * topk_group <= 128 "
              "&& topk <= 8 && topk_group <= 4", cpp_str("invokeNoAuxTc's is_multi_group holds")),
    )
    return Plan(
        kernel_symbol="vllm::moe::grouped_topk_fused_small_expert_count_kernel",
        template_args=(T, "float", "int32_t", sf, "256", "true"),
        consts=consts,
        scale=Scale("num_tokens_ll", "(size_t)num_experts * sizeof(T) + (size_t)topk * 8", small=8,
                    maximum=c.tokens_max(), fixed_bytes="(size_t)num_experts * 4", note=_SCALE_NOTE),
        derived=derived,
        buffers=_buffers(sf_name, d.num_experts),
        launch_stmts=launch, checks=checks,
        grid="dim3(static_cast<uint32_t>(num_tokens))", block="dim3(num_threads)", smem="0",
        args=("scores", "topk_values", "topk_indices", "bias", "num_tokens", "n_group", "topk_group", "topk",
              "num_experts", "experts_per_group", "renormalize", "routed_scaling_factor"),
        dispatch=(f"grouped_topk: scores {c.dtype} -> T={T}, bias float32 -> BiasT=float, IdxT=int32_t, "
                  f"scoring_func={sf_name} -> {sf}; vLLM's invokeNoAuxTc path for {path}"),
        wrapper=_wrapper(c),
        grid_expr="num_tokens", block_expr="NumDeepseekExperts (256)", smem_expr="0",
        notes=(*notes, _PDL_NOTE),
    )


RECIPES = (
    cuda_recipe((f"{GT}:grouped_topk_fused_kernel",), grouped_topk, family=Family.MOE, needs=(Need.GROUPED_TOPK,)),
    cuda_recipe((f"{GT}:grouped_topk_fused_small_expert_count_kernel",), grouped_topk_small, family=Family.MOE,
                needs=(Need.GROUPED_TOPK,)),
)
