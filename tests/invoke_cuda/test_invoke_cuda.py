"""CUDA invoker: generated host programs (render, goldens, errors; nvcc and GPU checks)."""
from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from cases import KERNELS, command, hand_extraction
from helpers import model

from vkc.errors import InvocationError, NotApplicableError, UsageError
from vkc.invoke.core import registry
from vkc.invoke.cuda import MARKER, build_command, invoke_cuda, main_file_name
from vkc.invoke.cuda.srcref import locate

GOLDEN = Path(__file__).parents[1] / "data" / "invoke_cuda" / "golden"
LLAMA = "meta-llama/Llama-3.1-8B-Instruct"
GPT_OSS = "openai/gpt-oss-120b"
CODER = "Qwen/Qwen3-Coder-480B-A35B-Instruct"
QWEN_MOE = "Qwen/Qwen3-30B-A3B"
DSV3 = "deepseek-ai/DeepSeek-V3"
KIMI = "moonshotai/Kimi-K2-Instruct"

# (qualified kernel, model, workload): one model per recipe that applies
MATRIX = [
    ("csrc/layernorm_kernels.cu:rms_norm_kernel", LLAMA, None),
    ("csrc/layernorm_kernels.cu:rms_norm_kernel", GPT_OSS, None),
    ("csrc/layernorm_kernels.cu:rms_norm_kernel", CODER, "decode"),
    ("csrc/layernorm_kernels.cu:fused_add_rms_norm_kernel", "Qwen/Qwen3-8B", None),
    ("csrc/layernorm_quant_kernels.cu:rms_norm_static_fp8_quant_kernel", LLAMA, None),
    ("csrc/activation_kernels.cu:act_and_mul_kernel", QWEN_MOE, None),
    ("csrc/activation_kernels.cu:act_and_mul_kernel", LLAMA, "decode"),
    ("csrc/pos_encoding_kernels.cu:rotary_embedding_kernel", LLAMA, "decode"),
    ("csrc/pos_encoding_kernels.cu:rotary_embedding_kernel", DSV3, None),
    ("csrc/cache_kernels.cu:reshape_and_cache_flash_kernel", GPT_OSS, "decode"),
    ("csrc/cache_kernels.cu:concat_and_cache_mla_kernel", DSV3, None),
    ("csrc/attention/merge_attn_states.cu:merge_attn_states_kernel", "Qwen/Qwen3-8B", None),
    ("csrc/moe/topk_softmax_kernels.cu:topkGating", QWEN_MOE, None),
    ("csrc/moe/moe_align_sum_kernels.cu:moe_align_block_size_kernel", CODER, None),
    ("csrc/moe/moe_align_sum_kernels.cu:count_and_sort_expert_tokens_kernel", GPT_OSS, None),
    ("csrc/moe/moe_align_sum_kernels.cu:moe_lora_align_block_size_kernel", QWEN_MOE, "decode"),
    ("csrc/quantization/w8a8/int8/scaled_quant.cu:dynamic_scaled_int8_quant_kernel", "Qwen/Qwen3-8B", None),
    ("csrc/quantization/w8a8/fp8/common.cu:scaled_fp8_quant_kernel_strided_dynamic", LLAMA, None),
    ("csrc/quantization/w8a8/fp8/per_token_group_quant.cu:per_token_group_quant_8bit_kernel", DSV3, None),
    ("csrc/quantization/w8a8/fp8/per_token_group_quant.cu:per_token_group_quant_8bit_register_kernel", DSV3, None),
    ("csrc/moe/moe_align_sum_kernels.cu:moe_sum_vec_kernel", QWEN_MOE, None),
    ("csrc/custom_all_reduce.cuh:cross_device_reduce_1stage", LLAMA, None),
    ("csrc/custom_all_reduce.cuh:cross_device_reduce_2stage", "meta-llama/Llama-3.1-70B-Instruct", "prefill"),
    ("csrc/moe/grouped_topk_kernels.cu:grouped_topk_fused_kernel", DSV3, None),
    ("csrc/moe/grouped_topk_kernels.cu:grouped_topk_fused_kernel", KIMI, "decode"),
    ("csrc/moe/grouped_topk_kernels.cu:grouped_topk_fused_small_expert_count_kernel", DSV3, "decode"),
    ("csrc/activation_kernels.cu:swigluoai_and_mul_kernel", GPT_OSS, None),
    ("csrc/quantization/fused_kernels/fused_silu_mul_block_quant.cu:silu_and_mul_per_block_quant_kernel", DSV3, None),
    ("csrc/sampler.cu:apply_repetition_penalties_kernel", GPT_OSS, None),
    ("csrc/sampler.cu:topKPerRowDecode", LLAMA, None),
    ("csrc/sampler.cu:topKPerRowDecode", CODER, "decode"),
    ("csrc/mamba/selective_scan_fwd.cu:selective_scan_fwd_kernel", LLAMA, None),
]
GOLDENS = [
    ("csrc/layernorm_kernels.cu:rms_norm_kernel", LLAMA, None),
    ("csrc/layernorm_kernels.cu:rms_norm_kernel", GPT_OSS, None),
    ("csrc/activation_kernels.cu:act_and_mul_kernel", QWEN_MOE, None),
    ("csrc/cache_kernels.cu:reshape_and_cache_flash_kernel", GPT_OSS, "decode"),
    ("csrc/moe/topk_softmax_kernels.cu:topkGating", QWEN_MOE, None),
    ("csrc/cache_kernels.cu:concat_and_cache_mla_kernel", DSV3, None),
    ("csrc/custom_all_reduce.cuh:cross_device_reduce_1stage", LLAMA, None),
    ("csrc/moe/grouped_topk_kernels.cu:grouped_topk_fused_kernel", DSV3, None),
    ("csrc/sampler.cu:apply_repetition_penalties_kernel", GPT_OSS, None),
    ("csrc/sampler.cu:topKPerRowDecode", CODER, None),
    ("csrc/mamba/selective_scan_fwd.cu:selective_scan_fwd_kernel", LLAMA, None),
    ("csrc/moe/grouped_topk_kernels.cu:grouped_topk_fused_small_expert_count_kernel", DSV3, "decode"),
    ("csrc/activation_kernels.cu:swigluoai_and_mul_kernel", GPT_OSS, None),
]


def _inv(tree, qualified, model_id, workload, facts=None):
    name = qualified.split(":")[1]
    return invoke_cuda(tree, hand_extraction(qualified, facts), model(model_id), workload,
                       command=command(name, model_id, workload), name=name)


def test_every_registered_recipe_is_in_the_matrix():
    kernels = set(registry("cuda").kernels())
    assert kernels == {q for q, _, _ in MATRIX}
    assert kernels <= set(KERNELS)


@pytest.mark.parametrize("qualified,model_id,workload", MATRIX,
                         ids=[f"{q.split(':')[1]}-{m.split('/')[1]}-{w}" for q, m, w in MATRIX])
def test_program_structure(vllm_tree, qualified, model_id, workload):
    inv = _inv(vllm_tree, qualified, model_id, workload)
    code, name = inv.code, qualified.split(":")[1]
    lines = code.splitlines()
    first_code = next(i for i, line in enumerate(lines) if not line.startswith("//"))
    assert lines[first_code] == f'#include "{name}.cu"'            # first include: the kernel unit
    assert all(line.startswith("// ") for line in lines[:first_code])
    header = "\n".join(lines[:first_code])
    for key in ("vkc ", "vLLM: 0.33.0", "KERNEL: ", "WRAPPER: csrc/", f"MODEL_NAME: {model_id}", "H_q=",
                "H_kv=", "Dh=", "hidden_size=", "max_ctx=", "flags:", "WORKLOAD: ", "INSTANTIATION: ", "GRID: ",
                "BLOCK: ", "SMEM: ", "CONFIG: https://huggingface.co/", "COMMAND: vkc ", "BUILD: nvcc -std=c++17"):
        assert key in header, key
    assert f"-o {name} {name}_main.cu" in header
    markers = [line for line in lines if line.startswith(MARKER)]
    assert markers == [f"{MARKER}{inv.facts['instantiation']}"]
    assert inv.facts["main_file"] == main_file_name(name) == f"{name}_main.cu"
    if inv.facts["min_gpus"] > 1:
        assert "cudaGetDeviceCount" in code and "return 2;" in code
    else:
        assert "SMALL_SANITY" in code and "cudaMemGetInfo" in code and "RESULT kernel=%s model=%s" in code
        assert "cudaEventElapsedTime" in code and "// from csrc/" in code
        assert "VKC_CHECK(cudaGetLastError());" in code
    assert (inv.workload == (workload or inv.workload)) and ("(inferred:" in header) == (workload is None)


def test_deterministic(vllm_tree):
    a = _inv(vllm_tree, *MATRIX[0])
    b = _inv(vllm_tree, *MATRIX[0])
    assert a.code == b.code


@pytest.mark.parametrize("qualified,model_id,workload", GOLDENS,
                         ids=[f"{q.split(':')[1]}-{m.split('/')[1]}" for q, m, _ in GOLDENS])
def test_golden(vllm_tree, qualified, model_id, workload):
    inv = _inv(vllm_tree, qualified, model_id, workload)
    path = GOLDEN / f"{qualified.split(':')[1]}--{model_id.replace('/', '__')}.cu"
    if os.environ.get("VKC_UPDATE_GOLDEN") == "1":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(inv.code)
    assert path.exists(), f"missing golden {path.name}; run with VKC_UPDATE_GOLDEN=1"
    assert inv.code == path.read_text()


def test_rms_norm_dispatch_follows_model(vllm_tree):
    q = "csrc/layernorm_kernels.cu:rms_norm_kernel"
    assert _inv(vllm_tree, q, LLAMA, None).facts["instantiation"] == "vllm::rms_norm_kernel<c10::BFloat16, 8, 2, true>"
    # gpt-oss hidden 2880: gcd(8, 2880) = 8
    assert "<c10::BFloat16, 8, 2, true>" in _inv(vllm_tree, q, GPT_OSS, None).facts["instantiation"]
    code = _inv(vllm_tree, q, CODER, "decode").code
    assert "const int hidden_size = 6144;" in code and "const float epsilon = 1e-06f;" in code
    assert re.search(r"// from csrc/layernorm_kernels.cu:\d+\n\s+const int max_block_size = batch_invariant_launch", code)


def test_fused_add_overloads(vllm_tree):
    q = "csrc/layernorm_kernels.cu:fused_add_rms_norm_kernel"
    assert _inv(vllm_tree, q, LLAMA, None).facts["instantiation"].endswith("<c10::BFloat16, 8, true>")
    ex = hand_extraction(q)
    ex = type(ex)(kernel=type(ex.kernel)(**{**ex.kernel.__dict__, "line": 180, "qualified": q + "@180"}),
                  kernel_type="cuda", source_code="", handoff=ex.handoff)
    inv = invoke_cuda(vllm_tree, ex, model(LLAMA), None, command="vkc", name=q + "@180")
    assert inv.facts["instantiation"].endswith("<c10::BFloat16, 0, true>")
    assert inv.facts["main_file"] == "csrc.layernorm_kernels.cu--fused_add_rms_norm_kernel@180_main.cu"


def test_topk_gating_constants(vllm_tree):
    inv = _inv(vllm_tree, "csrc/moe/topk_softmax_kernels.cu:topkGating", QWEN_MOE, None)
    assert inv.facts["instantiation"] == ("vllm::moe::topkGating<8, 128, 4, 16, 32, int, __nv_bfloat16, "
                                          "vllm::moe::SCORING_SOFTMAX>")


@pytest.mark.parametrize("qualified,model_id,needle", [
    ("csrc/cache_kernels.cu:concat_and_cache_mla_kernel", LLAMA, "does not use MLA"),
    ("csrc/moe/topk_softmax_kernels.cu:topkGating", LLAMA, "has no experts"),
    ("csrc/moe/moe_align_sum_kernels.cu:moe_align_block_size_kernel", "Qwen/Qwen3-8B", "has no experts"),
    ("csrc/moe/topk_softmax_kernels.cu:topkGating", CODER, "num_experts=160"),
    ("csrc/moe/grouped_topk_kernels.cu:grouped_topk_fused_kernel", GPT_OSS, "no n_group/topk_group"),
    ("csrc/moe/grouped_topk_kernels.cu:grouped_topk_fused_kernel", LLAMA, "has no experts"),
    ("csrc/quantization/w8a8/fp8/per_token_group_quant.cu:per_token_group_quant_8bit_kernel", GPT_OSS,
     "hidden_size 2880 is not a multiple"),
])
def test_kernel_does_not_apply(vllm_tree, qualified, model_id, needle):
    with pytest.raises(NotApplicableError) as e:
        _inv(vllm_tree, qualified, model_id, None)
    assert e.value.exit_code == 12
    assert needle in e.value.message and e.value.hint and "e.g." in e.value.hint


@pytest.mark.parametrize("qualified,workload", [
    ("csrc/sampler.cu:topKPerRowDecode", "prefill"),
    ("csrc/mamba/selective_scan_fwd.cu:selective_scan_fwd_kernel", "decode"),
])
def test_workload_does_not_apply(vllm_tree, qualified, workload):
    with pytest.raises(NotApplicableError) as e:
        _inv(vllm_tree, qualified, LLAMA, workload)
    assert e.value.exit_code == 12
    assert f"not used for {workload}" in e.value.message and e.value.hint


def test_grouped_topk_reads_routing_config(vllm_tree):
    q = "csrc/moe/grouped_topk_kernels.cu:grouped_topk_fused_kernel"
    inv = _inv(vllm_tree, q, DSV3, None)
    assert inv.facts["instantiation"] == ("vllm::moe::grouped_topk_fused_kernel<__nv_bfloat16, float, int32_t, "
                                          "vllm::moe::SCORING_SIGMOID>")
    code = inv.code
    assert "const int64_t n_group = 8;" in code and "const int64_t topk_group = 4;" in code
    assert "const int64_t num_experts = 256;" in code and "const int64_t topk = 8;" in code
    assert "grouped_topk_fused_small_expert_count_kernel" in inv.header   # what vLLM really takes is stated
    assert re.search(r"// from csrc/moe/grouped_topk_kernels.cu:\d+\n\s+size_t const extra_bytes = 16", code)
    kimi = _inv(vllm_tree, q, KIMI, "decode").code
    assert "const int64_t n_group = 1;" in kimi and "const int64_t num_experts = 384;" in kimi


def test_topk_per_row_decode_dispatch_follows_row_width(vllm_tree):
    q = "csrc/sampler.cu:topKPerRowDecode"
    llama = _inv(vllm_tree, q, LLAMA, None)          # max_ctx 131072: radix sort, one block per row
    assert llama.workload == "decode" and llama.facts["instantiation"] == "vllm::topKPerRowDecode<512, true>"
    assert "const int64_t numColumns = 131072;" in llama.code and "topK * sizeof(int32_t)" in llama.code
    coder = _inv(vllm_tree, q, CODER, None)          # max_ctx 262144 >= 200000: split pass
    assert coder.facts["instantiation"] == "vllm::topKPerRowDecode<512, true, true>"
    assert "outLogitsAux" in coder.code and "2 * topK * sizeof(int32_t)" in coder.code


def test_repetition_penalties_masks_are_valid(vllm_tree):
    inv = _inv(vllm_tree, "csrc/sampler.cu:apply_repetition_penalties_kernel", GPT_OSS, None)
    assert inv.facts["instantiation"] == "vllm::apply_repetition_penalties_kernel<float>"
    assert "const int vocab_size = 201088;" in inv.code
    assert inv.code.count("(uint8_t)(rng.next() %") == 2      # 0/1 masks, not zero-filled placeholders
    assert "cudaDevAttrMultiProcessorCount, 0)" in inv.code and not inv.facts["untraced"]


def test_selective_scan_defaults_are_documented(vllm_tree):
    inv = _inv(vllm_tree, "csrc/mamba/selective_scan_fwd.cu:selective_scan_fwd_kernel", LLAMA, None)
    assert inv.facts["instantiation"] == (
        "selective_scan_fwd_kernel<Selective_Scan_fwd_kernel_traits<128, 16, 1, true, true, true, true, true, "
        "c10::BFloat16, float, c10::BFloat16>>")
    assert "const int dim = 8192;" in inv.code and "const int dstate = 16;" in inv.code
    assert "Mamba-1 defaults" in inv.header and "params.out_ptr = delta;" in inv.code


def test_bad_workload(vllm_tree):
    with pytest.raises(UsageError) as e:
        _inv(vllm_tree, MATRIX[0][0], LLAMA, "training")
    assert e.value.exit_code == 2 and "prefill or decode" in (e.value.hint or "")


def test_model_values_are_literals_not_code(vllm_tree):
    import dataclasses
    m = dataclasses.replace(model(LLAMA), model_id='evil"/x\\n*/ int main(){}')
    inv = invoke_cuda(vllm_tree, hand_extraction(MATRIX[0][0]), m, None, command="vkc x\nrm -rf /",
                      name="rms_norm_kernel")
    assert '"evil\\"/x\\\\n*/ int main(){}"' in inv.code
    assert "\nrm -rf /" not in inv.code and "// COMMAND: vkc x?rm -rf /" in inv.code
    code_lines = [ln for ln in inv.code.splitlines() if "int main()" in ln and not ln.startswith("//")]
    assert code_lines == ["int main() {"] or all('"evil' in ln for ln in code_lines[1:])


def test_generic_fallback(vllm_tree):
    facts = {"params": [{"type": "const scalar_t* __restrict__", "name": "x"}, {"type": "float*", "name": "y"},
                        {"type": "const int", "name": "hidden_size"}, {"type": "const float", "name": "eps"}],
             "template_params": ["typename scalar_t"], "instantiations": {"bfloat16": "c10::BFloat16"},
             "launch": {"file": "csrc/foo.cu", "line": 9, "wrapper": "foo", "grid": "num_tokens",
                        "block": "std::min(hidden_size, 1024)", "smem": "0", "template_args": "scalar_t"}}
    inv = _inv(vllm_tree, "csrc/foo.cu:foo_kernel", LLAMA, None, facts)
    assert inv.facts["untraced"] and "untraced/generic" in inv.code
    assert inv.facts["instantiation"] == "foo_kernel<c10::BFloat16>"
    assert "dim3(std::min(hidden_size, 1024))" in inv.code
    with pytest.raises(InvocationError) as e:
        _inv(vllm_tree, "csrc/foo.cu:foo_kernel", LLAMA, None, {})
    assert e.value.exit_code == 9 and "no parameter list" in e.value.message


def test_locate_is_verbatim(vllm_tree):
    line = locate(vllm_tree, "csrc/layernorm_kernels.cu", "dim3 grid(num_tokens);")
    text = (Path(vllm_tree.root) / "csrc/layernorm_kernels.cu").read_text().splitlines()[line - 1]
    assert "dim3 grid(num_tokens);" in text
    with pytest.raises(InvocationError) as e:
        locate(vllm_tree, "csrc/layernorm_kernels.cu", "dim3 grid(no_such_thing);")
    assert type(e.value) is InvocationError and "wrapper code not found" in e.value.message


def test_build_command_matches_spec():
    assert build_command("k") == ("nvcc -std=c++17 -arch=sm_90 --expt-relaxed-constexpr --expt-extended-lambda "
                                  "-DENABLE_FP8 -I$(python -c 'import torch,os;print(os.path.join(os.path.dirname("
                                  "torch.__file__),\"include\"))') -o k k_main.cu")
