"""Model-traced CUDA binders for moe_sum, Qwen3's split q/k rope, the MLA cache write, block-FP8 quant and
DeepSeek-V3's norm/activation calls; the bytes rule of model-traced GB/s figures.

No vLLM run: recorded op calls of Qwen3-30B-A3B, DeepSeek-V3 (layers 0 and 3) and gpt-oss-120b (layers 0
and 1, with their Triton launches), written by ``make_fixtures.py`` in this folder.
"""
from __future__ import annotations

import dataclasses
import json
import math
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from vkc.invoke.core.provenance import InvocationMode
from vkc.invoke.cuda import invoke_cuda
from vkc.invoke.cuda.modeltraced import bind_call
from vkc.invoke.traced_bytes import touched_bytes, view_bytes
from vkc.modelcfg import load_model
from vkc.modeltrace.records import ModelTrace, TensorArg, trace_from_json

DATA = Path(__file__).resolve().parent / "data"
QWEN, DSV3, GPTOSS = "Qwen/Qwen3-30B-A3B", "deepseek-ai/DeepSeek-V3", "openai/gpt-oss-120b"
FIXTURES = {QWEN: "qwen3-30b-a3b.ops.trace.json", DSV3: "deepseek-v3.ops.trace.json",
            GPTOSS: "gpt-oss-120b.trace.json"}
AL = "csrc/moe/moe_align_sum_kernels.cu"
PG = "csrc/quantization/w8a8/fp8/per_token_group_quant.cu"
MLA = "csrc/cache_kernels.cu:concat_and_cache_mla_kernel"


def _trace(model_id: str) -> ModelTrace:
    return trace_from_json(json.loads((DATA / FIXTURES[model_id]).read_text()))


@pytest.fixture
def traced(monkeypatch):
    """Model tracing on; each model's trace served from its recorded fixture."""
    monkeypatch.setenv("VKC_MODEL_TRACE", "1")
    from vkc.invoke.triton.modeltraced import session
    monkeypatch.setattr(session, "model_trace_for", lambda tree, model: _trace(model.model_id))


def _invoke(tree, qualified, workload, model_id):
    from vkc.extract.cuda import extract_cuda
    from vkc.index.cuda_scan import scan_cuda
    entry = next(e for e in scan_cuda(tree) if e.qualified == qualified)
    ex = extract_cuda(tree, entry)
    name = qualified.split(":")[1].split("@")[0]
    inv = invoke_cuda(tree, ex, load_model(model_id, offline=True), workload,
                      command=f"vkc collect {name} --model {model_id} --workload {workload}", name=name)
    return ex, inv


CASES = [  # kernel, model, workload, rows, lines the program must contain, instantiation suffix
    (f"{AL}:moe_sum_vec_kernel", QWEN, "decode", 64,
     ["const int hidden_size = 2048;", "const int topk = 8;"], "<c10::BFloat16, int32_t, 8, false>"),
    (f"{AL}:moe_sum_vec_kernel", QWEN, "prefill", 8192,
     ["const int hidden_size = 2048;", "const int topk = 8;"], "<c10::BFloat16, int32_t, 8, false>"),
    (f"{AL}:moe_sum_vec_kernel", GPTOSS, "decode", 64,                  # Marlin MoE pads hidden 2880 -> 3072
     ["const int hidden_size = 3072;", "const int topk = 4;"], "<c10::BFloat16, int32_t, 4, false>"),
    (f"{AL}:moe_sum_vec_kernel", DSV3, "decode", 64,
     ["const int hidden_size = 7168;", "const int topk = 8;"], "<c10::BFloat16, int32_t, 8, false>"),
    ("csrc/pos_encoding_kernels.cu:rotary_embedding_kernel", QWEN, "decode", 64,
     ["const int num_heads = 32;", "const int num_kv_heads = 4;", "const int64_t query_stride = (int64_t)num_heads",
      "const int64_t key_stride = (int64_t)num_kv_heads"], "<c10::BFloat16, c10::BFloat16, true>"),
    ("csrc/pos_encoding_kernels.cu:rotary_embedding_kernel", QWEN, "prefill", 8192,
     ["const int num_heads = 32;", "const int num_kv_heads = 4;"], "<c10::BFloat16, c10::BFloat16, true>"),
    ("csrc/pos_encoding_kernels.cu:rotary_embedding_kernel", GPTOSS, "decode", 64,   # fused qkv row, as before
     ["const int num_heads = 64;", "const int num_kv_heads = 8;", "const int64_t query_stride = row;"],
     "<c10::BFloat16, c10::BFloat16, true>"),
    (MLA, DSV3, "decode", 64, ["const int kv_lora_rank = 512;", "const int pe_dim = 64;", "const int block_size = 16;"],
     "<__nv_bfloat16, __nv_bfloat16, vllm::Fp8KVCacheDataType::kAuto, false>"),
    (MLA, DSV3, "prefill", 8192, ["const int block_size = 16;"],
     "<__nv_bfloat16, __nv_bfloat16, vllm::Fp8KVCacheDataType::kAuto, false>"),
    (f"{PG}:per_token_group_quant_8bit_register_kernel", DSV3, "decode", 64,
     ["const int hidden_size = 7168;", "const int scale_stride = (int)num_rows;"],
     "<c10::BFloat16, c10::Float8_e4m3fn, true, false>"),
    (f"{PG}:per_token_group_quant_8bit_register_kernel", DSV3, "prefill", 8192,
     ["const int hidden_size = 7168;"], "<c10::BFloat16, c10::Float8_e4m3fn, true, false>"),
    ("csrc/activation_kernels.cu:act_and_mul_kernel", DSV3, "decode", 64, ["const int d = 18432;"], ""),
    ("csrc/activation_kernels.cu:act_and_mul_kernel", DSV3, "prefill", 8192, ["const int d = 18432;"], ""),
    ("csrc/layernorm_kernels.cu:rms_norm_kernel", DSV3, "decode", 64, ["const int hidden_size = 7168;"], ""),
    ("csrc/layernorm_kernels.cu:rms_norm_kernel", DSV3, "prefill", 8192, ["const int hidden_size = 7168;"], ""),
    ("csrc/layernorm_kernels.cu:fused_add_rms_norm_kernel@107", DSV3, "decode", 64,
     ["const int hidden_size = 7168;"], ""),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c[0].split(':')[1]}-{c[1].split('/')[1]}-{c[2]}")
def test_bound_to_traced_call(vllm_tree, traced, case):
    qualified, model_id, wl, rows, lines, inst = case
    _ex, inv = _invoke(vllm_tree, qualified, wl, model_id)
    prov = inv.facts["provenance"]
    assert prov.mode is InvocationMode.MODEL_TRACED, inv.header
    assert prov.source.startswith(f"{model_id} {wl} layer ")
    assert f"long long num_tokens_ll = small_sanity ? 8 : {rows}LL;" in inv.code
    assert "budget_bytes" not in inv.code
    for ln in lines:
        assert ln in inv.code, ln
    assert inv.facts["instantiation"].endswith(inst)
    assert "// GB/s BYTES: rule: " in inv.header


def test_split_qk_rope_buffers(vllm_tree, traced):
    _ex, inv = _invoke(vllm_tree, "csrc/pos_encoding_kernels.cu:rotary_embedding_kernel", "decode", QWEN)
    assert "const size_t n_query = (size_t)((size_t)num_tokens * num_heads * head_size);" in inv.code
    assert "const size_t n_key = (size_t)((size_t)num_tokens * num_kv_heads * head_size);" in inv.code
    assert "qkv + (size_t)num_heads" not in inv.code
    assert "separate contiguous tensors" in inv.header


def test_mla_slots_unique_inside_cache(vllm_tree, traced):
    # decode: slot of sequence s = s * blocks_per_seq * block_size + seq_len - 1 < num_blocks * block_size
    _ex, inv = _invoke(vllm_tree, MLA, "decode", DSV3)
    assert "(i*blocks_per_seq * block_size + seq_len - 1) % (num_blocks * block_size)" in inv.code
    assert "const int64_t num_blocks = (int64_t)num_tokens * blocks_per_seq;" in inv.code
    assert "recipe's choice 64 replaced" in inv.code              # FlashMLA's page size -> the traced cache's 16
    _ex, inv = _invoke(vllm_tree, MLA, "prefill", DSV3)
    assert "(i*1 + 0) % (num_blocks * block_size)" in inv.code    # prefill: slot i, cache of exactly the prompt


def test_generic_group_quant_not_launched(vllm_tree, traced, capsys):
    # group 128 + bf16 contiguous aligned input: vLLM takes the register kernel, never the generic one
    _ex, inv = _invoke(vllm_tree, f"{PG}:per_token_group_quant_8bit_kernel", "decode", DSV3)
    prov = inv.facts["provenance"]
    assert prov.mode is InvocationMode.RECIPE and prov.fallback_from is None
    assert "does not launch this kernel" in inv.header and "CanUseRegisterPath" in inv.header
    assert "warning" not in capsys.readouterr().err


def test_row_major_scales_choice():
    # the MoE layer's call allocates row-major scales: the binder picks COL_MAJOR = 0
    ev = next(e for e in _trace(DSV3).step(_full("decode")).events
              if e.name == "_C::per_token_group_fp8_quant" and e.layer == 3
              and dict(e.args)["output_s"].stride == (56, 1))
    b = bind_call(f"{PG}:per_token_group_quant_8bit_register_kernel", ev)
    assert b.refused is None and b.consts["is_column_major"][0] == 0 and b.rows == 64


def test_refusals():
    ev = next(e for e in _trace(QWEN).step(_full("decode")).events if e.name == "_moe_C::moe_sum")
    inp = dict(ev.args)["input"]
    strided = dataclasses.replace(inp, stride=(inp.stride[0] * 2, inp.stride[1], 1))
    bad = dataclasses.replace(ev, args=tuple((n, strided if n == "input" else a) for n, a in ev.args))
    assert "contiguous [T, topk, H]" in (bind_call(f"{AL}:moe_sum_vec_kernel", bad).refused or "")
    rope = next(e for e in _trace(QWEN).step(_full("decode")).events if e.name == "_C::rotary_embedding")
    key = dict(rope.args)["key"]
    same_base = dataclasses.replace(key, base=dict(rope.args)["query"].base, stride=(9999, 1))
    bad = dataclasses.replace(rope, args=tuple((n, same_base if n == "key" else a) for n, a in rope.args))
    assert "not views of one fused qkv row" in (bind_call("csrc/pos_encoding_kernels.cu:rotary_embedding_kernel",
                                                          bad).refused or "")


def _full(wl):
    from vkc.invoke.triton.modeltraced.session import steps_for
    return steps_for(wl)[0]


def _triton(wl, name, window=None):
    """gpt-oss's first launch of ``name`` (with that SLIDING_WINDOW constexpr: gpt-oss alternates 128 / full)."""
    from vkc.invoke.triton.modeltraced.build import kv_blocks
    step = _trace(GPTOSS).step(_full(wl))
    ev = next(e for e in step.events if e.kind == "triton" and name in e.name
              and (window is None or e.constexprs.get("SLIDING_WINDOW") == window))
    return ev, [(p, a) for p, a in ev.args if isinstance(a, TensorArg)], step.spec, kv_blocks(step)


def test_bytes_paged_attention():
    ev, args, spec, nb = _triton("decode", "kernel_unified_attention", 0)      # full-attention layer
    got, rule = touched_bytes(ev, args, spec, num_blocks=nb, block_size=16)
    kv = 64 * 4096 * 8 * 64 * 2 * 2                                              # batch x ctx x H_kv x Dh x 2B x K,V
    whole = sum(math.prod(a.shape) * a.itemsize for _p, a in args)
    assert whole > 4e9                                                           # the old count: the whole cache
    others = sum(view_bytes(a) for p, a in args if "cache" not in p)
    assert got == kv + others and got < 6e8
    assert rule.startswith("paged attention: the blocks the context covers (64 sequences x ctx 4096 tokens)")
    ev, args, spec, nb = _triton("decode", "kernel_unified_attention", 128)    # sliding-window layer
    got, rule = touched_bytes(ev, args, spec, num_blocks=nb, block_size=16)
    assert "SLIDING_WINDOW 128" in rule and got < kv / 20


def test_bytes_cache_write_and_broadcast():
    ev, args, spec, nb = _triton("prefill", "reshape_and_cache_kernel_flash")
    got, rule = touched_bytes(ev, args, spec, num_blocks=nb, block_size=16)
    rows = 8192 * 8 * 64 * 2                                                     # tokens x H_kv x Dh x 2B
    assert got == 2 * rows + 2 * rows + 8192 * 8 + 2 * 4                         # k,v read; k,v slots; slots; scales
    assert rule.startswith("cache write: the 8192 slots written")
    scale = TensorArg("float32", (64, 8), (0, 0), 0, 4, "s1", 4, "weight:x")     # a broadcast [64, 8] of one float
    assert view_bytes(scale) == 4
    got, rule = touched_bytes(ev, [("x", scale)], spec, num_blocks=nb, block_size=16)
    assert got == 4 and rule.startswith("view bytes")


def test_cuda_header_bytes_rule(vllm_tree, traced, monkeypatch):
    _ex, inv = _invoke(vllm_tree, MLA, "decode", DSV3)
    assert "GB/s BYTES: rule: cache write" in inv.header
    monkeypatch.setenv("VKC_MODEL_TRACE", "0")                                   # recipe path: header unchanged
    _ex, inv = _invoke(vllm_tree, MLA, "decode", DSV3)
    assert "GB/s BYTES" not in inv.header


@pytest.mark.nvcc
def test_new_traced_programs_compile(vllm_tree, traced, tmp_path):
    assert shutil.which("nvcc")
    import torch
    inc = str(Path(torch.__file__).parent / "include")
    jobs = []
    for i, (q, m) in enumerate([(f"{AL}:moe_sum_vec_kernel", QWEN),
                                ("csrc/pos_encoding_kernels.cu:rotary_embedding_kernel", QWEN),
                                (MLA, DSV3), (f"{PG}:per_token_group_quant_8bit_register_kernel", DSV3),
                                ("csrc/activation_kernels.cu:act_and_mul_kernel", DSV3)]):
        ex, inv = _invoke(vllm_tree, q, "decode", m)
        assert inv.facts["provenance"].mode is InvocationMode.MODEL_TRACED
        d = tmp_path / str(i)
        d.mkdir()
        (d / inv.facts["unit_file"]).write_text(ex.source_code)
        (d / inv.facts["main_file"]).write_text(inv.code)
        flags = re.findall(r"-I\S+", " ".join(str(f) for f in ex.facts.get("include_flags", ()) or ()
                                             if "TORCH_INCLUDE" not in str(f)))
        jobs.append(subprocess.Popen(["nvcc", "-std=c++17", "-arch=sm_90", "--expt-relaxed-constexpr",
                                      "--expt-extended-lambda", "-DENABLE_FP8", f"-I{inc}", *flags, "-o",
                                      inv.facts["binary"], inv.facts["main_file"]], cwd=d, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True))
    for p in jobs:
        out, _ = p.communicate(timeout=900)
        assert p.returncode == 0, out[-3000:]


@pytest.mark.parametrize("model_id,op,want", [
    (QWEN, "_moe_C::moe_sum", {"moe_sum_vec_kernel"}),
    (QWEN, "_moe_C::topk_softmax", {"topkGating"}),                        # 128 experts: the fused kernel
    (QWEN, "_moe_C::moe_align_block_size", {"moe_align_block_size_kernel", "count_and_sort_expert_tokens_kernel"}),
    (DSV3, "_C::per_token_group_fp8_quant", {"per_token_group_quant_8bit_register_kernel"}),
    (DSV3, "_C_cache_ops::concat_and_cache_mla", {"concat_and_cache_mla_kernel"}),
])
def test_call_launches(model_id, op, want):
    from vkc.invoke.cuda.modeltraced import call_launches, launched_kernels
    ev = next(e for e in _trace(model_id).step(_full("decode")).events if e.name == op)
    assert launched_kernels(ev) == want
    assert call_launches(f"csrc/x.cu:{min(want)}", ev) is True
    assert call_launches("csrc/moe/moe_align_sum_kernels.cu:moe_sum_scalar_kernel", ev) is False
    assert launched_kernels(dataclasses.replace(ev, name="_C::no_rule")) is None


def test_call_launches_branches():
    from vkc.invoke.cuda.modeltraced import launched_kernels
    ev = next(e for e in _trace(QWEN).step(_full("decode")).events if e.name == "_moe_C::moe_sum")
    inp = dict(ev.args)["input"]
    odd = dataclasses.replace(inp, offset=inp.offset + 1)                   # unaligned: the scalar fallback
    assert launched_kernels(dataclasses.replace(ev, args=tuple((n, odd if n == "input" else a) for n, a in ev.args))) \
        == {"moe_sum_scalar_kernel"}
    k5 = dataclasses.replace(inp, shape=(inp.shape[0], 5, inp.shape[2]))   # top-5: not a switch case
    assert launched_kernels(dataclasses.replace(ev, args=tuple((n, k5 if n == "input" else a) for n, a in ev.args))) \
        == {"moe_sum_vec_dynamic_kernel"}
