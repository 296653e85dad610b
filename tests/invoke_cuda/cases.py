"""Shared test cases: hand-built Extractions (independent of the extractor) and nvcc helpers."""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from vkc.invoke.cuda import build_command, invoke_cuda
from vkc.records import Extraction, Handoff, KernelEntry, SourceTree

# qualified kernel -> (C++ qualname, definition line in vLLM 0.33.0)
KERNELS = {
    "csrc/layernorm_kernels.cu:rms_norm_kernel": ("vllm::rms_norm_kernel", 15),
    "csrc/layernorm_kernels.cu:fused_add_rms_norm_kernel": ("vllm::fused_add_rms_norm_kernel", 107),
    "csrc/layernorm_quant_kernels.cu:rms_norm_static_fp8_quant_kernel": ("vllm::rms_norm_static_fp8_quant_kernel", 23),
    "csrc/activation_kernels.cu:act_and_mul_kernel": ("vllm::act_and_mul_kernel", 110),
    "csrc/pos_encoding_kernels.cu:rotary_embedding_kernel": ("vllm::rotary_embedding_kernel", 77),
    "csrc/cache_kernels.cu:reshape_and_cache_flash_kernel": ("vllm::reshape_and_cache_flash_kernel", 336),
    "csrc/cache_kernels.cu:concat_and_cache_mla_kernel": ("vllm::concat_and_cache_mla_kernel", 425),
    "csrc/attention/merge_attn_states.cu:merge_attn_states_kernel": ("vllm::merge_attn_states_kernel", 18),
    "csrc/moe/topk_softmax_kernels.cu:topkGating": ("vllm::moe::topkGating", 280),
    "csrc/moe/moe_align_sum_kernels.cu:moe_align_block_size_kernel": ("vllm::moe::moe_align_block_size_kernel", 371),
    "csrc/moe/moe_align_sum_kernels.cu:count_and_sort_expert_tokens_kernel":
        ("vllm::moe::count_and_sort_expert_tokens_kernel", 387),
    "csrc/moe/moe_align_sum_kernels.cu:moe_lora_align_block_size_kernel":
        ("vllm::moe::moe_lora_align_block_size_kernel", 557),
    "csrc/quantization/w8a8/int8/scaled_quant.cu:dynamic_scaled_int8_quant_kernel":
        ("vllm::dynamic_scaled_int8_quant_kernel", 143),
    "csrc/quantization/w8a8/fp8/common.cu:scaled_fp8_quant_kernel_strided_dynamic":
        ("vllm::scaled_fp8_quant_kernel_strided_dynamic", 184),
    "csrc/quantization/w8a8/fp8/per_token_group_quant.cu:per_token_group_quant_8bit_kernel":
        ("per_token_group_quant_8bit_kernel", 105),
    "csrc/quantization/w8a8/fp8/per_token_group_quant.cu:per_token_group_quant_8bit_register_kernel":
        ("per_token_group_quant_8bit_register_kernel", 189),
    "csrc/moe/moe_align_sum_kernels.cu:moe_sum_vec_kernel": ("vllm::moe::moe_sum_vec_kernel", 420),
    "csrc/custom_all_reduce.cuh:cross_device_reduce_1stage": ("vllm::cross_device_reduce_1stage", 8),
    "csrc/custom_all_reduce.cuh:cross_device_reduce_2stage": ("vllm::cross_device_reduce_2stage", 31),
    "csrc/moe/grouped_topk_kernels.cu:grouped_topk_fused_kernel": ("vllm::moe::grouped_topk_fused_kernel", 480),
    "csrc/sampler.cu:apply_repetition_penalties_kernel": ("vllm::apply_repetition_penalties_kernel", 16),
    "csrc/sampler.cu:topKPerRowDecode": ("vllm::topKPerRowDecode", 598),
    "csrc/mamba/selective_scan_fwd.cu:selective_scan_fwd_kernel": ("selective_scan_fwd_kernel", 69),
    "csrc/moe/grouped_topk_kernels.cu:grouped_topk_fused_small_expert_count_kernel":
        ("vllm::moe::grouped_topk_fused_small_expert_count_kernel", 639),
    "csrc/activation_kernels.cu:swigluoai_and_mul_kernel": ("vllm::swigluoai_and_mul_kernel", 422),
    "csrc/quantization/fused_kernels/fused_silu_mul_block_quant.cu:silu_and_mul_per_block_quant_kernel":
        ("vllm::silu_and_mul_per_block_quant_kernel", 15),
}


def hand_extraction(qualified: str, facts: dict | None = None) -> Extraction:
    qualname, line = KERNELS.get(qualified, (qualified.split(":")[1], 1))
    file, name = qualified.split(":")
    entry = KernelEntry(lang="cuda", name=name, qualname=qualname, file=file, line=line, end_line=line,
                        qualified=qualified)
    handoff = Handoff(leaf_symbols=(qualname,), arg_order=(), grid_expr="", meta_params={}, guards={},
                      smem_formula=None, stride_semantics="elements")
    return Extraction(kernel=entry, kernel_type="cuda", source_code="// unit\n", handoff=handoff,
                      facts=facts or {})


def command(name: str, model_id: str, workload: str | None) -> str:
    return f"vkc {name} --model {model_id}" + (f" --workload {workload}" if workload else "")


def torch_include() -> str | None:
    try:
        import torch
    except ImportError:
        return None
    return os.path.join(os.path.dirname(torch.__file__), "include")


def write_program(tmp: Path, tree: SourceTree, extraction: Extraction, model, workload: str | None,
                  name: str) -> tuple[Path, str]:
    """Write <stem>.cu (the unit) and <stem>_main.cu; return (dir, stem)."""
    inv = invoke_cuda(tree, extraction, model, workload, command=command(name, model.model_id, workload), name=name)
    stem = inv.facts["binary"]
    (tmp / inv.facts["unit_file"]).write_text(extraction.source_code)
    (tmp / inv.facts["main_file"]).write_text(inv.code)
    return tmp, stem


def nvcc_argv(stem: str) -> list[str]:
    """The header's build command, with the torch include resolved (no shell)."""
    cmd = build_command(stem)
    assert "-I$(python" in cmd
    inc = torch_include()
    assert inc, "torch is needed for its header-only c10 types"
    return ["nvcc", "-std=c++17", "-arch=sm_90", "--expt-relaxed-constexpr", "--expt-extended-lambda",
            "-DENABLE_FP8", f"-I{inc}", "-o", stem, f"{stem}_main.cu"]


def compile_all(jobs: list[tuple[Path, str]], timeout: int = 600) -> dict[str, tuple[int, str]]:
    """Compile programs in parallel (2 at a time); stem -> (returncode, stderr tail)."""
    assert shutil.which("nvcc")
    out: dict[str, tuple[int, str]] = {}
    pending = list(jobs)
    running: list[tuple[str, subprocess.Popen]] = []
    while pending or running:
        while pending and len(running) < 2:
            d, stem = pending.pop(0)
            running.append((stem, subprocess.Popen(nvcc_argv(stem), cwd=d, stdout=subprocess.PIPE,
                                                   stderr=subprocess.STDOUT, text=True)))
        stem, p = running.pop(0)
        text, _ = p.communicate(timeout=timeout)
        out[stem] = (p.returncode, text[-3000:])
    return out

