"""End-to-end: the recipes drive the real vLLM wrappers through the trace worker.

One worker run (``vkc.invoke.triton.traced.tracer.run_trace``, disk-cached) traces one job per
kernel by default; the full model x workload matrix is ``slow``.  Jobs are built the way
the invoker builds them (shapes without a ``kernel`` key).
"""
from __future__ import annotations

import math

import pytest

from vkc.invoke.core.registry import registry
from vkc.invoke.triton.recipes import get_recipe
from vkc.invoke.triton.traced.tracer import run_trace

from .conftest import BUDGET, DEEPSEEK, GPT_OSS, LLAMA, MAIN_MODELS, QWEN_CODER, dims

MOE = "vllm.model_executor.layers.fused_moe.fused_moe:fused_moe_kernel"
GROUPQ = "vllm.model_executor.layers.quantization.utils.fp8_utils:_per_token_group_quant_fp8"
BLOCKMM = "vllm.model_executor.layers.quantization.utils.fp8_utils:_w8a8_triton_block_scaled_mm"
INT8 = "vllm.model_executor.layers.quantization.utils.int8_utils:_per_token_quant_int8"
GATED = "vllm.model_executor.layers.mamba.ops.layernorm_gated:_layer_norm_fwd_1pass_kernel"
QKVNORM = "vllm.models.common.ops.fused_qk_rmsnorm:FusedQKVRMSNormKernel.kernel"
SWIGLU = "vllm.model_executor.layers.activation:_swiglustep_and_mul_kernel"
MROPE = "vllm.model_executor.layers.rotary_embedding.mrope:_triton_mrope_forward"
TOPK = "vllm.v1.sample.ops.topk_topp_triton:_topk_topp_kernel"
REJ = "vllm.v1.sample.rejection_sampler:rejection_random_sample_kernel"
SSU = "vllm.model_executor.layers.mamba.ops.mamba_ssm:_selective_scan_update_kernel"
SCAN = "vllm.model_executor.layers.mamba.ops.ssd_chunk_scan:_chunk_scan_fwd_kernel"
LORA = "vllm.lora.ops.triton_ops.lora_shrink_op:_lora_shrink_kernel"
ATTN_OPS = "vllm.v1.attention.ops."
UNIFIED = ATTN_OPS + "triton_unified_attention:kernel_unified_attention"
REDUCE = ATTN_OPS + "triton_unified_attention:reduce_segments"
PAGED = ATTN_OPS + "chunked_prefill_paged_decode:kernel_paged_attention_2d"
PREFIX = ATTN_OPS + "prefix_prefill:_fwd_kernel"
GROUPED = ATTN_OPS + "triton_decode_attention:_fwd_grouped_kernel_stage1"
MERGE = ATTN_OPS + "triton_merge_attn_states:merge_attn_states_kernel"
RESHAPE = ATTN_OPS + "triton_reshape_and_cache_flash:reshape_and_cache_kernel_flash"
STAGE2 = ATTN_OPS + "triton_decode_attention:_fwd_kernel_stage2"
STAGE1 = ATTN_OPS + "triton_decode_attention:_fwd_kernel_stage1"
MHA = "test/Llama-3.1-8B-as-MHA"    # no bundled model is MHA without MLA: Llama with H_kv = H_q

# (kernel, model, workload, small) traced by default: every kernel once
DEFAULT = [
    (MOE, GPT_OSS, "prefill", False), (GROUPQ, LLAMA, "prefill", False), (BLOCKMM, LLAMA, "prefill", False),
    (INT8, QWEN_CODER, "decode", False), (GATED, LLAMA, "prefill", False), (QKVNORM, DEEPSEEK, "decode", False),
    (SWIGLU, GPT_OSS, "prefill", False), (MROPE, QWEN_CODER, "prefill", False), (TOPK, LLAMA, "decode", False),
    (REJ, GPT_OSS, "decode", False), (SSU, LLAMA, "decode", False), (SCAN, QWEN_CODER, "prefill", False),
    (LORA, LLAMA, "prefill", False), (MOE, QWEN_CODER, "decode", True),
    # attention (tests/invoke_triton checks these in depth through the invoker)
    (UNIFIED, LLAMA, "prefill", False), (REDUCE, GPT_OSS, "decode", False), (PAGED, GPT_OSS, "decode", False),
    (PREFIX, QWEN_CODER, "prefill", False), (GROUPED, DEEPSEEK, "decode", False), (MERGE, LLAMA, "prefill", False),
    (RESHAPE, GPT_OSS, "decode", False), (STAGE2, LLAMA, "decode", False), (STAGE1, MHA, "decode", False),
]
ALL_KERNELS = (MOE, GROUPQ, BLOCKMM, INT8, GATED, QKVNORM, SWIGLU, MROPE, TOPK, REJ, SSU, SCAN, LORA)
ATTN_KERNELS = (UNIFIED, REDUCE, PAGED, PREFIX, GROUPED, MERGE, RESHAPE, STAGE2, STAGE1)


def _dims(model: str) -> dict:
    if model == MHA:
        d = dims(LLAMA)
        return dict(d, model_id=MHA, num_key_value_heads=d["num_attention_heads"])
    return dims(model)


def _applies(kernel: str, model: str) -> bool:
    if kernel == MOE:
        return bool(dims(model).get("num_experts"))
    if kernel == QKVNORM:
        return bool(dims(model).get("q_lora_rank"))
    return True


def _job(kernel: str, model: str, wl: str, small: bool) -> dict:
    recipe = get_recipe(kernel)
    return {"id": f"{kernel}|{model}|{wl}|{int(small)}", "recipe": recipe.module, "kernel": kernel,
            "shapes": recipe.plan.shapes(_dims(model), wl, BUDGET, small), "platform": recipe.plan.platform}


def _trace(tree, cases) -> dict[tuple, dict]:
    helpers = sorted({h for c in cases for h in get_recipe(c[0]).helpers})
    resp = run_trace(tree, [_job(*c) for c in cases], helpers=helpers)
    assert resp.get("ok"), (resp.get("error"), resp.get("stderr_tail", "")[-2000:])
    return dict(zip(cases, resp["jobs"]))


class _Jobs(dict):
    """case -> worker job; indexing a failed job fails the test that asked for it."""

    def __getitem__(self, case):
        job = super().__getitem__(case)
        assert job["ok"], (case, job["error"], job.get("traceback"))
        return job


@pytest.fixture(scope="session")
def traced(vllm_tree):
    return _Jobs(_trace(vllm_tree, DEFAULT))


def _launch(job: dict) -> dict:
    return job["launches"][job["selected"][0]]


def _live(job: dict) -> int:
    return sum(math.prod(b["shape"]) * b["itemsize"] for b in job["buffers"].values())


def test_every_registered_recipe_kernel_is_tested():
    """A kernel registered without a case here fails: every recipe is traced by default."""
    assert set(registry("triton").kernels()) == {c[0] for c in DEFAULT} == set(ALL_KERNELS + ATTN_KERNELS)


def test_every_kernel_traces(traced):
    assert {c[0] for c in traced} == set(ALL_KERNELS + ATTN_KERNELS)
    failed = {c: j["error"] for c, j in dict.items(traced) if not j["ok"]}
    assert not failed, failed
    for (kernel, model, wl, small), job in traced.items():
        L = _launch(job)
        assert f"{L['fn']['module']}:{L['fn']['qualname']}" == kernel
        assert all(g >= 1 for g in L["grid"]) and len(L["grid"]) in (1, 2, 3)
        assert _live(job) <= BUDGET * 1.02, (kernel, _live(job))
        for b in job["buffers"].values():       # the recipe's own tensors carry init specs
            assert b["init"], b


def test_non_grouped_decode_kernel_only_for_mha(traced):
    from vkc.errors import NotApplicableError

    L = _launch(traced[(STAGE1, MHA, "decode", False)])
    assert L["constexprs"]["kv_group_num"] == 1
    for model in MAIN_MODELS + (DEEPSEEK,):
        with pytest.raises(NotApplicableError, match="non-grouped kernel"):
            get_recipe(STAGE1).plan.shapes(dims(model), "decode", BUDGET, False)


def test_fused_moe_gpt_oss(traced):
    job = traced[(MOE, GPT_OSS, "prefill", False)]
    L, c = _launch(job), _launch(job)["constexprs"]
    # vLLM's tuned H100 config E=128,N=2880 at M=8192 (closest key 4096)
    assert (c["BLOCK_SIZE_M"], c["BLOCK_SIZE_N"], c["BLOCK_SIZE_K"], c["GROUP_SIZE_M"]) == (128, 256, 64, 1)
    assert L["options"] == {"num_warps": 8, "num_stages": 4}
    assert c["top_k"] == 4 and c["HAS_BIAS"] is True and c["MUL_ROUTED_WEIGHT"] is False
    assert c["naive_block_assignment"] is False and c["compute_type"] == {"__tl_dtype__": "bf16"}
    em = L["args"]["EM"]["value"]
    assert L["args"]["num_valid_tokens"]["value"] == 8192 * 4 and (L["args"]["N"]["value"], L["args"]["K"]["value"]) == (5760, 2880)
    assert L["grid"] == [math.ceil(em / 128) * math.ceil(5760 / 256)]
    assert job["buffers"]["sorted_token_ids"]["init"][0] == "values"


def test_fused_moe_qwen_small(traced):
    c = _launch(traced[(MOE, QWEN_CODER, "decode", True)])["constexprs"]
    assert c["top_k"] == 8 and c["HAS_BIAS"] is False and c["compute_type"] == {"__tl_dtype__": "fp16"}


def test_quant_kernels(traced):
    g = _launch(traced[(GROUPQ, LLAMA, "prefill", False)])
    m = get_recipe(GROUPQ).plan.shapes(dims(LLAMA), "prefill", BUDGET, False)["M_quant"]
    assert g["grid"] == [m * 4096 // 128] and g["constexprs"]["BLOCK"] == 128
    assert (g["constexprs"]["fp8_min"], g["constexprs"]["fp8_max"]) == (-448.0, 448.0)
    b = _launch(traced[(BLOCKMM, LLAMA, "prefill", False)])
    assert b["constexprs"]["BLOCK_SIZE_N"] == 128 and b["constexprs"]["BLOCK_SIZE_K"] == 128
    assert b["grid"] == [math.ceil(16384 / b["constexprs"]["BLOCK_SIZE_M"]) * (6144 // 128)]
    i = _launch(traced[(INT8, QWEN_CODER, "decode", False)])
    assert i["grid"] == [256] and i["constexprs"]["BLOCK"] == 8192 and i["options"]["num_warps"] == 8


def test_norms(traced):
    g = _launch(traced[(GATED, LLAMA, "prefill", False)])
    c = g["constexprs"]
    assert c["BLOCK_N"] == 8192 and c["HAS_Z"] and c["IS_RMS_NORM"] and not c["NORM_BEFORE_GATE"] and not c["HAS_BIAS"]
    assert g["grid"][1] == 1 and g["grid"][0] % 256 == 0
    q = _launch(traced[(QKVNORM, DEEPSEEK, "decode", False)])
    assert q["grid"] == [256, 2]
    assert (q["constexprs"]["Q_SIZE"], q["constexprs"]["KV_SIZE"], q["constexprs"]["BLOCK_SIZE"]) == (1536, 512, 2048)
    assert q["args"]["q_in_stride"]["value"] == 2112 and q["args"]["kv_ptr"]["offset"] == 1536


def test_activation_rotary(traced):
    a = _launch(traced[(SWIGLU, GPT_OSS, "prefill", False)])
    assert a["constexprs"] == {"BLOCK_SIZE": 1024, "d": 2880, "limit": 7.0} and a["grid"][1] == 3
    r = _launch(traced[(MROPE, QWEN_CODER, "prefill", False)])
    c = r["constexprs"]
    assert (c["n_qh"], c["n_kh"], c["hd"], c["pad_n_qh"]) == (96, 8, 128, 128)
    assert (c["mrope_section_t"], c["mrope_section_h"], c["mrope_section_w"]) == (16, 24, 24)


def test_sampling(traced):
    t = _launch(traced[(TOPK, LLAMA, "decode", False)])
    assert t["grid"] == [132] and t["constexprs"]["VOCAB_SIZE"] == 128256
    assert t["constexprs"]["TOPK_ENABLED"] and t["constexprs"]["TOPP_ENABLED"]
    assert t["args"]["NORMAL_CDF_TO_SIGMA_TABLE"]["base"] == "normal_cdf_to_sigma_table"
    job = traced[(TOPK, LLAMA, "decode", False)]
    assert job["buffers"]["normal_cdf_to_sigma_table"]["init"][0] == "values"
    r = _launch(traced[(REJ, GPT_OSS, "decode", False)])
    assert r["grid"] == [256] and r["constexprs"] == {"NO_DRAFT_PROBS": True, "SYNTHETIC_MODE": False}
    assert r["args"]["vocab_size"]["value"] == 201088 and r["args"]["max_spec_len"]["value"] == 3


def test_ssm(traced):
    u = _launch(traced[(SSU, LLAMA, "decode", False)])
    assert u["grid"][1:] == [256, 128] and u["constexprs"]["TIE_HDIM"] and u["constexprs"]["DT_SOFTPLUS"]
    assert u["grid"][0] == math.ceil(64 / u["constexprs"]["BLOCK_SIZE_M"])
    s = _launch(traced[(SCAN, QWEN_CODER, "prefill", False)])
    shp = get_recipe(SCAN).plan.shapes(dims(QWEN_CODER), "prefill", BUDGET, False)
    assert s["grid"][1:] == [shp["tokens"] // 256, 192] and s["constexprs"]["BLOCK_SIZE_M"] in (16, 32, 64, 128)
    assert s["constexprs"]["chunk_size"] == 256 and s["constexprs"]["HAS_INITSTATES"] is False


def test_lora(traced):
    L = _launch(traced[(LORA, LLAMA, "prefill", False)])
    c = L["constexprs"]
    assert L["grid"] == [c["SPLIT_K"] * math.ceil(16384 / c["BLOCK_M"]) * math.ceil(16 / c["BLOCK_N"]), 1, 5]
    assert c["SLICE_NUM"] == 1 and L["args"]["N"]["value"] == 16 and L["args"]["K"]["value"] == 4096


@pytest.mark.slow
def test_full_matrix(vllm_tree):
    """Every kernel x main model (where it applies) x workload x FULL/SMALL traces."""
    cases = []
    for kernel in ALL_KERNELS:
        recipe = get_recipe(kernel)
        for model in MAIN_MODELS + ((DEEPSEEK,) if kernel == QKVNORM else ()):
            if not _applies(kernel, model):
                continue
            for wl in recipe.workloads:
                for small in (False, True):
                    cases.append((kernel, model, wl, small))
    traced = _trace(vllm_tree, cases)
    failed = {c: j["error"] for c, j in traced.items() if not j["ok"]}
    assert not failed, failed
    for c, job in traced.items():
        assert _live(job) <= BUDGET * 1.02, c
