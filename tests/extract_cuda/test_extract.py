"""CUDA extractor on real vLLM 0.33.0 kernels."""
from __future__ import annotations

import json
import re
import tempfile
from pathlib import Path

import pytest

from vkc.errors import ExtractionError
from vkc.extract.cuda import extract_cuda
from vkc.index.build import scan_cuda_cached
from vkc.verify import cuda_compile as cc

pytestmark = pytest.mark.sdist

KERNELS = [
    "csrc/layernorm_kernels.cu:rms_norm_kernel",
    "csrc/layernorm_kernels.cu:fused_add_rms_norm_kernel@107",
    "csrc/activation_kernels.cu:act_and_mul_kernel",
    "csrc/cache_kernels.cu:reshape_and_cache_flash_kernel",
    "csrc/moe/moe_align_sum_kernels.cu:moe_align_block_size_kernel",
    "csrc/custom_all_reduce.cuh:cross_device_reduce_1stage",
    "csrc/pos_encoding_kernels.cu:rotary_embedding_kernel",
    "csrc/attention/merge_attn_states.cu:merge_attn_states_kernel",
]
HOST = re.compile(r"<<<|\bTORCH_CHECK|STD_TORCH_CHECK|torch::stable|torch::Tensor|at::Tensor|"
                  r"\bint\s+main\s*\(|cudaLaunchKernelEx|cudaFuncSetAttribute|printf\s*\(\s*\"|"
                  r"#\s*include\s*\"|dispatch_utils|torch_utils")


@pytest.fixture(scope="module")
def index(vllm_tree):
    return {k.qualified: k for k in scan_cuda_cached(vllm_tree)}


@pytest.fixture(scope="module")
def extracted(vllm_tree, index):
    return {q: extract_cuda(vllm_tree, index[q]) for q in KERNELS}


@pytest.mark.parametrize("q", KERNELS)
def test_unit_is_device_only(extracted, q):
    e = extracted[q]
    src = e.source_code
    assert src.startswith("// Self-contained CUDA translation unit extracted by vkc")
    assert f"({e.kernel.file}:{e.kernel.line})" in src.splitlines()[1]
    assert "__global__" in src and e.kernel.name in src
    assert not HOST.search(pp_strip(src)), HOST.search(pp_strip(src))
    assert "// from csrc/" in src
    assert "USE_ROCM" not in pp_strip(src)
    json.dumps(e.facts)     # JSON-serialisable
    assert e.handoff.arg_order == tuple(p["name"] for p in e.facts["params"])
    assert e.kernel_type == "cuda"


def pp_strip(src: str) -> str:
    return re.sub(r"//[^\n]*", "", src)


def test_rms_norm_facts(extracted):
    e = extracted["csrc/layernorm_kernels.cu:rms_norm_kernel"]
    f = e.facts
    assert f["params"][0] == {"type": "scalar_t*", "name": "out"}
    assert f["launch"]["wrapper"] == "rms_norm" and f["launch"]["line"] == 274
    assert f["launch"]["template_args"] == "scalar_t, vec_size, tensor_rank, true"
    assert (f["launch"]["grid"], f["launch"]["block"], f["launch"]["smem"], f["launch"]["stream"]) == ("grid", "block", "0", "stream")
    assert f["dispatch"]["macro"] == "VLLM_STABLE_DISPATCH_FLOATING_TYPES"
    assert f["dispatch"]["dtype_map"] == {"float32": "float", "float16": "c10::Half", "bfloat16": "c10::BFloat16"}
    assert f["instantiations"]["bfloat16"].startswith("c10::BFloat16, ")
    assert f["template_arg_choices"]["vec_size"]["cases"] == ["16", "8", "4", "2", "1"]
    assert "#include <torch/headeronly/util/BFloat16.h>" in e.source_code
    assert f["include_flags"] == ["-I$TORCH_INCLUDE"]
    assert e.handoff.smem_formula is None and e.handoff.stride_semantics == "elements"


def test_kv_cache_dispatch_reads_macro(extracted):
    f = extracted["csrc/cache_kernels.cu:reshape_and_cache_flash_kernel"].facts
    assert f["dispatch"]["macro"] == "DISPATCH_BY_KV_CACHE_DTYPE"
    assert f["dispatch"]["dtype_map"] == {"float32": "float", "float16": "uint16_t", "bfloat16": "__nv_bfloat16"}
    assert f["instantiations"]["bfloat16"] == "__nv_bfloat16, __nv_bfloat16, vllm::Fp8KVCacheDataType::kAuto"


def test_function_pointer_template_args(extracted):
    f = extracted["csrc/activation_kernels.cu:act_and_mul_kernel"].facts
    inst = f["instantiations"]["bfloat16"]
    assert "vllm::silu_kernel<c10::BFloat16>" in inst and not f["unbound_template_args"]
    assert "silu_kernel(" in extracted["csrc/activation_kernels.cu:act_and_mul_kernel"].source_code


def test_overloads_kept_together(extracted):
    src = extracted["csrc/layernorm_kernels.cu:fused_add_rms_norm_kernel@107"].source_code
    assert src.count("fused_add_rms_norm_kernel(") == 2


def test_macro_argument_launch(extracted):
    f = extracted["csrc/custom_all_reduce.cuh:cross_device_reduce_1stage"].facts
    # T comes from the call sites of the allreduce<T> wrapper, ngpus from the switch cases
    assert f["launch"]["form"] == "macro" and f["unbound_template_args"] == []
    assert f["instantiations"]["bfloat16"] == "nv_bfloat16, 2"
    assert f["template_arg_choices"]["ngpus"]["cases"] == ["2", "4", "6", "8"]


def test_cutlass_kernel_keeps_its_cutlass_includes(vllm_tree, index):
    """CUTLASS/CuTe headers are external includes: kept, with the flag and where they come from."""
    k = index["csrc/quantization/w8a8/cutlass/moe/get_group_starts.cuh:get_group_gemm_starts"]
    src = extract_cuda(vllm_tree, k).source_code
    assert "#include <cutlass/bfloat16.h>" in src and "-I$CUTLASS_INCLUDE" in src
    assert "vLLM's CMake fetches CUTLASS v4.7.1 at build time" in src


def test_rocm_kernel_errors(vllm_tree, index):
    k = index["csrc/sampler.cu:topKPerRowDecodeDeviceLengthAware"]
    with pytest.raises(ExtractionError, match="ROCm-only"):
        extract_cuda(vllm_tree, k)


def test_deterministic(vllm_tree, index, extracted):
    q = "csrc/pos_encoding_kernels.cu:rotary_embedding_kernel"
    assert extract_cuda(vllm_tree, index[q]).source_code == extracted[q].source_code


def _compile(e) -> None:
    args = e.facts["example_instantiation"]
    insts = [f"{e.kernel.qualname}<{args}>"] if e.kernel.template_params else []
    with tempfile.TemporaryDirectory() as td:
        ok, err, obj = cc.compile_source(e.source_code, "unit", insts, Path(td))
        assert ok, err
        assert cc.has_symbol(obj, e.kernel.name)


DEFAULT_COMPILE = ["csrc/activation_kernels.cu:act_and_mul_kernel",
                   "csrc/cache_kernels.cu:reshape_and_cache_flash_kernel",
                   "csrc/custom_all_reduce.cuh:cross_device_reduce_1stage"]


@pytest.mark.nvcc
@pytest.mark.parametrize("q", DEFAULT_COMPILE)
def test_compiles_sm90(extracted, q):
    _compile(extracted[q])


@pytest.mark.nvcc
@pytest.mark.slow
@pytest.mark.parametrize("q", [q for q in KERNELS if q not in DEFAULT_COMPILE])
def test_compiles_sm90_slow(extracted, q):
    _compile(extracted[q])


# bench-set kernels whose template arguments are bound away from the launch site
BENCH_HARD = {
    "csrc/moe/topk_softmax_kernels.cu:topkGating":
        "vllm::moe::detail::TopkConstants<1, MIN(16, sizeof(__nv_bfloat16) * 1), WARP_SIZE, __nv_bfloat16>::VPT, "
        "1, 4, MIN(16, sizeof(__nv_bfloat16) * 1), WARP_SIZE, int, __nv_bfloat16, vllm::moe::SCORING_SOFTMAX",
    "csrc/moe/grouped_topk_kernels.cu:grouped_topk_fused_kernel":
        "__nv_bfloat16, float, int32_t, vllm::moe::SCORING_SIGMOID",
    "csrc/quantization/w8a8/fp8/per_token_group_quant.cu:per_token_group_quant_8bit_kernel":
        "c10::BFloat16, c10::Float8_e4m3fn, true, true, float, true",
    "csrc/mamba/selective_scan_fwd.cu:selective_scan_fwd_kernel":
        "Selective_Scan_fwd_kernel_traits<64, 16, 1, true, true, true, true, true, "
        "torch::headeronly::BFloat16, float, torch::headeronly::BFloat16>",
    "csrc/attention/merge_attn_states.cu:merge_attn_states_kernel": "__nv_bfloat16, __nv_bfloat16, 128, false",
    "csrc/layernorm_quant_kernels.cu:rms_norm_static_fp8_quant_kernel": "c10::BFloat16, c10::Float8_e4m3fn, 16",
    "csrc/fused_deepseek_v4_qnorm_rope_kv_insert_kernel.cu:fusedDeepseekV4FullCacheKernel":
        "c10::BFloat16, false, true, true",
}


@pytest.fixture(scope="module")
def hard(vllm_tree, index):
    return {q: extract_cuda(vllm_tree, index[q]) for q in BENCH_HARD}


@pytest.mark.parametrize("q", sorted(BENCH_HARD))
def test_bf16_instantiation_from_call_sites(hard, q):
    f = hard[q].facts
    assert f["instantiations"]["bfloat16"] == BENCH_HARD[q]
    assert f["example_instantiation"] == BENCH_HARD[q] and not f["unbound_template_args"]


def test_topk_gating_cases_by_expert_count(hard):
    f = hard["csrc/moe/topk_softmax_kernels.cu:topkGating"].facts
    assert f["template_arg_choices"]["NUM_EXPERTS"]["cases"][:9] == ["1", "2", "4", "8", "16", "32", "64", "128", "192"]
    v128 = [v for v in f["instantiation_variants"] if v["dtype"] == "bfloat16"
            and v["bindings"]["NUM_EXPERTS"] == "128" and v["bindings"]["IndType"] == "int"]
    assert v128 and v128[0]["bindings"]["SF"] == "vllm::moe::SCORING_SOFTMAX"


def test_merge_attn_states_both_output_paths(hard):
    f = hard["csrc/attention/merge_attn_states.cu:merge_attn_states_kernel"].facts
    args = {v["args"] for v in f["instantiation_variants"]}
    assert "__nv_bfloat16, __nv_bfloat16, 128, false" in args
    assert "__nv_bfloat16, c10::Float8_e4m3fn, 128, true" in args


def test_kernel_split_by_preprocessor_is_isolated(hard):
    src = hard["csrc/fused_deepseek_v4_qnorm_rope_kv_insert_kernel.cu:fusedDeepseekV4FullCacheKernel"].source_code
    assert src.count("__global__ void fusedDeepseekV4FullCacheKernel(") == 1
    assert "#if (!defined(__CUDA_ARCH__) || __CUDA_ARCH__ < 800)" in src


@pytest.mark.nvcc
@pytest.mark.slow
@pytest.mark.parametrize("q", sorted(BENCH_HARD))
def test_bench_hard_compiles_sm90(hard, q):
    _compile(hard[q])


@pytest.mark.parametrize(("q", "cmd"), [
    ("csrc/quantization/marlin/marlin.cu:MarlinDefault", "generate_kernels.py 9.0 (vLLM's CMakeLists.txt:702"),
    ("csrc/moe/marlin_moe_wna16/ops.cu:MarlinDefault",
     "generate_kernels.py 9.0 csrc/moe/marlin_moe_wna16 (vLLM's CMakeLists.txt:1425"),
])
def test_generated_header_kernel_extracts(vllm_tree, index, q, cmd):
    """marlin.cu / ops.cu include the kernel_selector.h vLLM's CMake generates: vkc runs the generator
    (arguments of the SM 9.0 build), the unit says so, and the kernel's parameter macro is kept."""
    e = extract_cuda(vllm_tree, index[q])
    src = e.source_code
    assert "kernel_selector.h is generated at build time (not needed by this kernel)" in src
    assert cmd in src
    assert "#define MARLIN_KERNEL_PARAMS" in src      # the parameter list is a macro: a reference, not a name
    assert not any(p.name in ("kernel_selector.h",) for p in Path(vllm_tree.root, q.split(":")[0]).parent.iterdir())


@pytest.mark.nvcc
def test_generated_header_kernel_compiles_sm90(vllm_tree, index):
    _compile(extract_cuda(vllm_tree, index["csrc/moe/marlin_moe_wna16/ops.cu:MarlinDefault"]))


ROUND5 = [
    "csrc/quantization/fused_kernels/fused_layernorm_dynamic_per_token_quant.cu:rms_norm_per_block_quant_kernel",
    "csrc/quantization/fused_kernels/fused_silu_mul_block_quant.cu:silu_and_mul_per_block_quant_kernel",
    "csrc/fused_qknorm_rope_kernel.cu:fusedQKNormRopeKernel",
    "csrc/fused_qknorm_rope_kernel.cu:fusedQKNormRopeKernelNTokenHeads",
    "csrc/quantization/fp4/mxfp4_experts_quant.cu:mxfp4_cvt_fp16_to_fp4@64",
    "csrc/quantization/activation_kernels.cu:silu_mul_fp8_quant_deep_gemm_kernel",
]


@pytest.fixture(scope="module")
def round5(vllm_tree, index):
    return {q: extract_cuda(vllm_tree, index[q]) for q in ROUND5}


def test_nested_dispatch_shadowing_binds_inner_quant_type(round5):
    # `using scalar_in_t = scalar_t;` names the outer FLOATING_TYPES scalar_t; the kernel's
    # output type is the inner QUANT_TYPES scalar_t
    for q, tail in ((ROUND5[0], "true, true, 128"), (ROUND5[1], "true, 128")):
        insts = round5[q].facts["instantiations"]
        assert insts["bfloat16"] == f"c10::BFloat16, c10::Float8_e4m3fn, {tail}"
        assert insts["float16"] == f"c10::Half, c10::Float8_e4m3fn, {tail}"


def test_nested_same_dtype_dispatch_follows_model_dtype(extracted):
    # query_t / cache_t: both FLOATING_TYPES; the example keeps the model's dtype for both
    f = extracted["csrc/pos_encoding_kernels.cu:rotary_embedding_kernel"].facts
    assert f["instantiations"]["bfloat16"] == "c10::BFloat16, c10::BFloat16, true"
    assert f["instantiations"]["float16"] == "c10::Half, c10::Half, true"


def test_kernels_swallowed_by_parse_error_are_isolated(round5):
    for q in ROUND5[2:4]:
        e = round5[q]
        assert e.kernel.qualname == "tensorrt_llm::kernels::" + e.kernel.name
        assert "fused_qk_norm_rope(" not in e.source_code and "STD_TORCH_CHECK" not in e.source_code
        assert e.source_code.count(f"__global__ void {e.kernel.name}(") == 1
        assert "using namespace vllm::cuda_async;" not in e.source_code or "cp_async" in e.source_code


def test_if_condition_macros_are_kept(round5):
    src = round5[ROUND5[4]].source_code
    assert "#if VLLM_MXFP4_EXPERTS_QUANT_SUPPORTED" in src
    assert re.search(r"#define VLLM_MXFP4_EXPERTS_QUANT_SUPPORTED 1", src)


def test_include_guards_not_pulled_in_by_conditions(vllm_tree, index):
    src = extract_cuda(vllm_tree, index["csrc/quantization/gptq/q_gemm.cu:gemm_half_q_half_gptq_4bit_kernel"]).source_code
    assert not re.search(r"^#define _qdq_\d_cuh\s*$", src, flags=re.M)
    assert "MatrixView_half" in src


def test_kernel_parameters_shadow_host_fragments(round5):
    src = round5[ROUND5[5]].source_code
    assert "y_s.stride(" not in src


@pytest.mark.nvcc
@pytest.mark.slow
@pytest.mark.parametrize("q", [q for q in ROUND5 if "mxfp4" not in q])   # mxfp4: sm_100+ PTX
def test_round5_compiles_sm90(round5, q):
    _compile(round5[q])


@pytest.mark.nvcc
def test_cutlass_kernel_compiles_against_the_wheel(vllm_tree, index):
    """A kernel using cutlass::Array compiles with the nvidia-cutlass wheel's headers (.ci/run installs it)."""
    from vkc.toolchain.cutlass import find_cutlass

    if find_cutlass() is None:
        pytest.skip("no CUTLASS headers (pip install --no-deps nvidia-cutlass)")
    _compile(extract_cuda(vllm_tree, index["csrc/moe/moe_permute_unpermute_op.cu:shuffleInputRowsKernel"]))
