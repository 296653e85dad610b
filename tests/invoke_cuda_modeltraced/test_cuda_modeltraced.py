"""Model-traced CUDA host programs: the op -> kernel map, and recipes bound to the recorded Llama trace.

No vLLM run: the trace is the recorded fixture ``tests/data/modeltrace/llama-3.1-8b-instruct.trace.json``
(decode 64 x 4096, prefill 4 x 2048), handed to the invoker through the shared trace session.
"""
from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from vkc.invoke.core.provenance import InvocationMode
from vkc.invoke.cuda import invoke_cuda
from vkc.invoke.cuda.modeltraced import op_kernel_map
from vkc.modelcfg import load_model
from vkc.modeltrace.records import trace_from_json

DATA = Path(__file__).resolve().parent.parent / "data" / "modeltrace" / "llama-3.1-8b-instruct.trace.json"
LLAMA = "meta-llama/Llama-3.1-8B-Instruct"


@pytest.fixture(scope="module")
def index(vllm_tree):
    from vkc.index import build_index
    return build_index(vllm_tree)


@pytest.fixture(scope="module")
def opmap(index):
    return op_kernel_map(index)


@pytest.fixture
def traced(monkeypatch):
    """Model tracing on, the trace served from the recorded Llama fixture."""
    trace = trace_from_json(json.loads(DATA.read_text()))
    monkeypatch.setenv("VKC_MODEL_TRACE", "1")
    from vkc.invoke.triton.modeltraced import session
    monkeypatch.setattr(session, "model_trace_for", lambda tree, model: trace)
    return trace


EXPECTED = {
    "_C::rms_norm": {"csrc/layernorm_kernels.cu:rms_norm_kernel"},
    "_C::fused_add_rms_norm": {"csrc/layernorm_kernels.cu:fused_add_rms_norm_kernel@107",
                               "csrc/layernorm_kernels.cu:fused_add_rms_norm_kernel@180"},
    "_C::silu_and_mul": {"csrc/activation_kernels.cu:act_and_mul_kernel"},
    "_C::rotary_embedding": {"csrc/pos_encoding_kernels.cu:rotary_embedding_kernel"},
    "_moe_C::topk_softmax": {"csrc/moe/topk_softmax_kernels.cu:topkGating",
                             "csrc/moe/topk_softmax_kernels.cu:moeSoftmax",
                             "csrc/moe/topk_softmax_kernels.cu:moeTopK"},
    "_moe_C::moe_align_block_size": {"csrc/moe/moe_align_sum_kernels.cu:moe_align_block_size_kernel",
                                     "csrc/moe/moe_align_sum_kernels.cu:count_and_sort_expert_tokens_kernel",
                                     "csrc/moe/moe_align_sum_kernels.cu:moe_align_block_size_small_batch_expert_kernel"},
    "_moe_C::moe_sum": {"csrc/moe/moe_align_sum_kernels.cu:moe_sum_vec_kernel",
                        "csrc/moe/moe_align_sum_kernels.cu:moe_sum_scalar_kernel"},
    "_C_cache_ops::reshape_and_cache_flash": {"csrc/cache_kernels.cu:reshape_and_cache_flash_kernel"},
    # launched in LAUNCH_CONCAT_AND_CACHE_MLA, expanded by CALL_CONCAT_AND_CACHE_MLA, which the host passes to
    # DISPATCH_BY_KV_CACHE_DTYPE as an argument (a macro named, not called)
    "_C_cache_ops::concat_and_cache_mla": {"csrc/cache_kernels.cu:concat_and_cache_mla_kernel"},
    "_C::per_token_group_fp8_quant": {
        "csrc/quantization/w8a8/fp8/per_token_group_quant.cu:per_token_group_quant_8bit_kernel",
        "csrc/quantization/w8a8/fp8/per_token_group_quant.cu:per_token_group_quant_8bit_register_kernel"},
    # registered next to their kernels (STABLE_TORCH_LIBRARY_IMPL in a .cu), not in a torch_bindings.cpp
    "_C::marlin_gemm": {"csrc/quantization/marlin/marlin.cu:MarlinDefault"},
    "_C::gptq_marlin_repack": {"csrc/quantization/marlin/gptq_marlin_repack.cu:gptq_marlin_repack_kernel"},
    "_C::dsv3_fused_a_gemm": {"csrc/dsv3_fused_a_gemm.cu:fused_a_gemm_kernel"},
    "_moe_C::moe_unpermute": {"csrc/moe/permute_unpermute_kernels/moe_permute_unpermute_kernel.inl:finalizeMoeRoutingKernel"},
}


def test_registrations_outside_the_bindings_files(vllm_tree):
    from vkc.invoke.cuda.modeltraced.opmap import registrations

    regs = registrations(vllm_tree.root)
    assert regs["_C::machete_mm"] == ("mm", "csrc/quantization/machete/machete_pytorch.cu")
    assert regs["_C::marlin_gemm"] == ("marlin_gemm", "csrc/quantization/marlin/marlin.cu")
    assert regs["_C::rms_norm"] == ("rms_norm", "csrc/torch_bindings.cpp")      # a bindings file's comes first
    assert "_C::machete_supported_schedules" not in regs                        # CompositeExplicitAutograd, not CUDA


def test_same_named_kernels_keep_the_definition_next_to_the_launch(opmap):
    dense, moe = set(opmap["_C::marlin_gemm"].kernels), set(opmap["_moe_C::moe_wna16_marlin_gemm"].kernels)
    assert dense and all(k.startswith("csrc/quantization/marlin/") for k in dense)
    assert moe and all(k.startswith("csrc/moe/marlin_moe_wna16/") for k in moe)


@pytest.mark.parametrize("op", sorted(EXPECTED))
def test_op_kernel_map(opmap, op):
    got = set(opmap[op].kernels)
    assert EXPECTED[op] <= got, (op, got)
    # nothing from an unrelated file: every kernel lives in the host function's file or one it calls into
    assert all(k.startswith("csrc/") for k in got)


def test_op_map_no_false_edges(opmap):
    assert not any("grouped_topk" in k for k in opmap["_C_cache_ops::reshape_and_cache_flash"].kernels)
    assert opmap["_C::rms_norm"].host == "rms_norm"
    assert opmap["_C::rms_norm"].host_file == "csrc/layernorm_kernels.cu"
    # an op whose host function the tree does not define (or reaches no launch) has no entry
    assert "_C::weak_ref_tensor" not in opmap


def _invoke(tree, qualified, workload, model_id=LLAMA):
    from vkc.extract.cuda import extract_cuda
    from vkc.index.cuda_scan import scan_cuda
    entry = next(e for e in scan_cuda(tree) if e.qualified == qualified)
    ex = extract_cuda(tree, entry)
    name = qualified.split(":")[1].split("@")[0]
    inv = invoke_cuda(tree, ex, load_model(model_id, offline=True), workload,
                      command=f"vkc collect {name} --model {model_id} --workload {workload}", name=name)
    return ex, inv


CASES = [  # kernel, workload, bound values that must be in the program, scale
    ("csrc/layernorm_kernels.cu:rms_norm_kernel", "decode", ["const int hidden_size = 4096;"], 64),
    ("csrc/layernorm_kernels.cu:rms_norm_kernel", "prefill", ["const int hidden_size = 4096;"], 8192),
    ("csrc/layernorm_kernels.cu:fused_add_rms_norm_kernel@107", "decode", ["const int hidden_size = 4096;"], 64),
    ("csrc/activation_kernels.cu:act_and_mul_kernel", "decode", ["const int d = 14336;"], 64),
    ("csrc/pos_encoding_kernels.cu:rotary_embedding_kernel", "decode",
     ["const int num_heads = 32;", "const int num_kv_heads = 8;", "const int head_size = 128;",
      "const int rot_dim = 128;", "const int max_position = 131072;"], 64),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c[0].split(':')[1]}-{c[1]}")
def test_plan_bound_to_traced_call(vllm_tree, traced, case):
    qualified, wl, consts, rows = case
    _ex, inv = _invoke(vllm_tree, qualified, wl)
    prov = inv.facts["provenance"]
    assert prov.mode is InvocationMode.MODEL_TRACED
    assert prov.source.startswith(f"{LLAMA} {wl} layer 0: _C::")
    assert prov.fallback_from is None
    code = inv.code
    assert f"long long num_tokens_ll = small_sanity ? 8 : {rows}LL;" in code
    assert "budget_bytes" not in code                      # FULL is the traced call, not the memory fill
    for c in consts:
        assert c in code
    assert "// traced: " in code
    assert "TRACED CALL" in inv.header and "stride=" in inv.header
    assert "invocation: model-traced (model-accurate)" in inv.header


def test_untraced_when_disabled_is_the_recipe(vllm_tree, monkeypatch):
    monkeypatch.setenv("VKC_MODEL_TRACE", "0")
    _ex, inv = _invoke(vllm_tree, "csrc/layernorm_kernels.cu:rms_norm_kernel", "decode")
    assert inv.facts["provenance"].mode is InvocationMode.RECIPE
    assert "budget_bytes" in inv.code and "TRACED CALL" not in inv.header and "model-traced" not in inv.code


def test_not_launched_keeps_recipe_with_note(vllm_tree, traced):
    # the Llama step's fused_add_rms_norm calls are aligned: they launch the width-8 overload, not @180
    _ex, inv = _invoke(vllm_tree, "csrc/layernorm_kernels.cu:fused_add_rms_norm_kernel@180", "decode")
    assert inv.facts["provenance"].mode is InvocationMode.RECIPE
    assert inv.facts["provenance"].fallback_from is None
    assert "takes LAUNCH_FUSED_ADD_RMS_NORM(8)" in inv.header
    # a kernel no op of the step launches (reshape_and_cache_flash: the Triton backend writes the cache)
    _ex, inv = _invoke(vllm_tree, "csrc/cache_kernels.cu:reshape_and_cache_flash_kernel", "decode")
    assert inv.facts["provenance"].mode is InvocationMode.RECIPE
    assert "does not launch this kernel" in inv.header


def test_trace_failure_is_loud(vllm_tree, monkeypatch, capsys):
    monkeypatch.setenv("VKC_MODEL_TRACE", "1")
    from vkc.invoke.triton.modeltraced import session

    def boom(tree, model):
        raise RuntimeError("worker died")
    monkeypatch.setattr(session, "model_trace_for", boom)
    _ex, inv = _invoke(vllm_tree, "csrc/layernorm_kernels.cu:rms_norm_kernel", "decode")
    prov = inv.facts["provenance"]
    assert prov.mode is InvocationMode.RECIPE
    assert prov.fallback_from and "worker died" in prov.fallback_from
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["vkc: warning: rms_norm_kernel: model trace failed (RuntimeError: worker died); using recipe"]


@pytest.mark.nvcc
def test_traced_programs_compile(vllm_tree, traced, tmp_path):
    assert shutil.which("nvcc")
    import torch
    inc = str(Path(torch.__file__).parent / "include")
    jobs = []
    for i, q in enumerate(["csrc/layernorm_kernels.cu:rms_norm_kernel",
                           "csrc/pos_encoding_kernels.cu:rotary_embedding_kernel"]):
        ex, inv = _invoke(vllm_tree, q, "decode")
        assert inv.facts["provenance"].mode is InvocationMode.MODEL_TRACED
        d = tmp_path / str(i)
        d.mkdir()
        stem = inv.facts["binary"]
        (d / inv.facts["unit_file"]).write_text(ex.source_code)
        (d / inv.facts["main_file"]).write_text(inv.code)
        flags = re.findall(r"-I\S+", " ".join(str(f) for f in ex.facts.get("include_flags", ()) or ()
                                             if "TORCH_INCLUDE" not in str(f)))
        jobs.append(subprocess.Popen(["nvcc", "-std=c++17", "-arch=sm_90", "--expt-relaxed-constexpr",
                                      "--expt-extended-lambda", "-DENABLE_FP8", f"-I{inc}", *flags, "-o", stem,
                                      inv.facts["main_file"]], cwd=d, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True))
    for p in jobs:
        out, _ = p.communicate(timeout=600)
        assert p.returncode == 0, out[-3000:]


QWEN = "Qwen/Qwen3-30B-A3B"
QWEN_DATA = Path(__file__).resolve().parent / "data" / "qwen3-30b-a3b.ops.trace.json"  # its op calls only


@pytest.fixture
def qwen_traced(monkeypatch):
    trace = trace_from_json(json.loads(QWEN_DATA.read_text()))
    monkeypatch.setenv("VKC_MODEL_TRACE", "1")
    from vkc.invoke.triton.modeltraced import session
    monkeypatch.setattr(session, "model_trace_for", lambda tree, model: trace)
    return trace


@pytest.mark.parametrize("case", [
    ("csrc/moe/topk_softmax_kernels.cu:topkGating", ["const int num_experts = 128;", "const int topk = 8;"], 64),
    ("csrc/moe/moe_align_sum_kernels.cu:moe_align_block_size_kernel",
     ["const int64_t num_experts = 128;", "const int32_t topk_num = 8;", "const int64_t block_size = 32;"], 64),
    ("csrc/activation_kernels.cu:act_and_mul_kernel", ["const int d = 768;"], 512),   # rows = 64 tokens x top-8
    ("csrc/layernorm_kernels.cu:rms_norm_kernel", ["const int hidden_size = 2048;"], 64),
], ids=lambda c: c[0].split(":")[1])
def test_moe_plans_bound(vllm_tree, qwen_traced, case):
    qualified, consts, rows = case
    _ex, inv = _invoke(vllm_tree, qualified, "decode", QWEN)
    assert inv.facts["provenance"].mode is InvocationMode.MODEL_TRACED, inv.header
    assert "small_sanity ? " in inv.code and f": {rows}LL;" in inv.code
    for c in consts:
        assert c in inv.code


def test_block_size_is_the_traced_choice(vllm_tree, qwen_traced):
    # the recipe guesses BLOCK_SIZE_M = 16 for decode; the traced call says 32, and the program follows it
    _ex, inv = _invoke(vllm_tree, "csrc/moe/moe_align_sum_kernels.cu:moe_align_block_size_kernel", "decode", QWEN)
    assert "recipe's choice 16 replaced" in inv.code


def test_unreproducible_layout_falls_back(vllm_tree, qwen_traced, monkeypatch):
    # a key in the query's storage but not at the fused qkv row's offset/stride: no recipe layout reproduces it
    # (Qwen3's real call -- separate contiguous q and k -- is bound: test_more_binders.py)
    import dataclasses

    from vkc.invoke.triton.modeltraced import session

    def bad(ev):
        if ev.name != "_C::rotary_embedding":
            return ev
        q = dict(ev.args)["query"]
        k = dataclasses.replace(dict(ev.args)["key"], base=q.base, stride=(9999, 1))
        return dataclasses.replace(ev, args=tuple((n, k if n == "key" else a) for n, a in ev.args))
    steps = tuple(dataclasses.replace(st, events=tuple(bad(e) for e in st.events)) for st in qwen_traced.steps)
    monkeypatch.setattr(session, "model_trace_for", lambda tree, model: dataclasses.replace(qwen_traced, steps=steps))
    _ex, inv = _invoke(vllm_tree, "csrc/pos_encoding_kernels.cu:rotary_embedding_kernel", "decode", QWEN)
    prov = inv.facts["provenance"]
    assert prov.mode is InvocationMode.RECIPE
    assert prov.fallback_from and "not views of one fused qkv row" in prov.fallback_from
    assert "fell back from model-traced" in inv.header
