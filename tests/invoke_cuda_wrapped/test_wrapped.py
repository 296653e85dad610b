"""Wrapper-compiled CUDA examples: vLLM's own host function of an op compiled against vkc's Tensor stand-in.

No vLLM run: the op calls are the recorded fixture ``data/op_calls.json`` (Llama-3.1-8B, gpt-oss-20b,
Qwen3-Next decode steps) and one hand-built ``reshape_and_cache_flash`` call handed in as another
source would (an :class:`OpCall` with its storages' contents).  ``nvcc`` tests build every program.
"""
from __future__ import annotations

import dataclasses
import re
import subprocess
from pathlib import Path

import pytest

from vkc.invoke.core.provenance import InvocationMode
from vkc.invoke.cuda import invoke_cuda
from vkc.invoke.cuda.wrapped import OpCall, WrapRefused, host_code, invoke_wrapped
from vkc.invoke.cuda.wrapped.check import param_problem, unsupported
from vkc.invoke.cuda.wrapped.schema import parse_args
from vkc.invoke.cuda.wrapped.traced import step_call
from vkc.invoke.triton.modeltraced.session import FULL_STEPS, SMALL_STEPS
from vkc.modelcfg import load_model
from vkc.modeltrace.contents import Contents
from vkc.modeltrace.records import ScalarArg, TensorArg, TracedEvent

LLAMA = "meta-llama/Llama-3.1-8B-Instruct"
GPT_OSS_20B = "openai/gpt-oss-20b"
QWEN3_NEXT = "Qwen/Qwen3-Next-80B-A3B-Instruct"

HOST_TEMPLATE = Path(__file__).resolve().parents[2] / "src/vkc/invoke/cuda/templates/host.cu.j2"
# kernels with a recipe: the wrapper-compiled program through the entry (invoke_cuda keeps the recipe)
DIRECT = {
    "rms_norm": (LLAMA, "_C::rms_norm", "csrc/layernorm_kernels.cu:rms_norm_kernel"),
    "fused_add_rms_norm": (LLAMA, "_C::fused_add_rms_norm", "csrc/layernorm_kernels.cu:fused_add_rms_norm_kernel@107"),
    "silu_and_mul": (LLAMA, "_C::silu_and_mul", "csrc/activation_kernels.cu:act_and_mul_kernel"),
    "rotary_embedding": (LLAMA, "_C::rotary_embedding", "csrc/pos_encoding_kernels.cu:rotary_embedding_kernel"),
}
# kernels without a recipe: invoke_cuda's model-traced attempt takes the wrapper-compiled path
NO_RECIPE = {
    "moe_align_small_batch": (GPT_OSS_20B,
                              "csrc/moe/moe_align_sum_kernels.cu:moe_align_block_size_small_batch_expert_kernel"),
    "moe_sum_vec_dynamic": (QWEN3_NEXT, "csrc/moe/moe_align_sum_kernels.cu:moe_sum_vec_dynamic_kernel"),
}
FLASH = "csrc/cache_kernels.cu:reshape_and_cache_flash_kernel"


def _name(qualified: str) -> str:
    return qualified.rsplit(":", 1)[-1].split("@", 1)[0]


def _first(trace, spec, op):
    step = trace.step(spec)
    ev = next(e for e in step.events if e.kind == "op" and e.name == op)
    return step_call(trace, step, ev, f"{trace.model_id} decode layer {ev.layer}")


def _direct(vllm_tree, extract, traces, key):
    model_id, op, qualified = DIRECT[key]
    trace = traces[model_id]
    return invoke_wrapped(vllm_tree, extract(qualified), _first(trace, FULL_STEPS["decode"], op),
                          _first(trace, SMALL_STEPS["decode"], op), mode=InvocationMode.MODEL_TRACED,
                          model=load_model(model_id, offline=True), workload="decode", why="test",
                          command=f"vkc collect {_name(qualified)}", name=_name(qualified))


def _tensor(dtype, shape, stride, offset, base, nbytes, producer, itemsize=2):
    return TensorArg(dtype, tuple(shape), tuple(stride), offset, itemsize, base, nbytes, producer)


def flash_call() -> OpCall:
    """Llama-3.1-8B's shapes as a FLASH_ATTN step would pass them: key and value views of one qkv row,
    key and value caches views of one KV cache, one slot per sequence (given contents)."""
    blocks, row = 16385, 6144                       # 64 sequences x 256 blocks + 1; (32 + 2 * 8) * 128
    per = blocks * 16 * 8 * 128
    qkv = ("bfloat16", (64, 8, 128), (row, 128, 1))
    cache = ("bfloat16", (blocks, 16, 8, 128), (16 * 8 * 128, 8 * 128, 128, 1))
    args = (("key", _tensor(*qkv, 4096, "q", 64 * row * 2, "event:3")),
            ("value", _tensor(*qkv, 5120, "q", 64 * row * 2, "event:3")),
            ("key_cache", _tensor(*cache, 0, "kv", 2 * per * 2, "kv_cache:0")),
            ("value_cache", _tensor(*cache, per, "kv", 2 * per * 2, "kv_cache:0")),
            ("slot_mapping", _tensor("int64", (64,), (1,), 0, "slots", 512, "metadata:slot_mapping", 8)),
            ("kv_cache_dtype", ScalarArg("auto")),
            ("k_scale", _tensor("float32", (), (), 0, "ks", 4, "weight:k_scale", 4)),
            ("v_scale", _tensor("float32", (), (), 0, "vs", 4, "weight:v_scale", 4)))
    ev = TracedEvent(7, "op", "_C_cache_ops::reshape_and_cache_flash", 0, "model.layers.0.self_attn.attn", args)
    contents = {"slots": Contents.of([i * 4096 + 4095 for i in range(64)]),
                "ks": Contents(((1.0, 1),)), "vs": Contents(((1.0, 1),))}
    return OpCall(ev, contents, "hand-built op call (tests/invoke_cuda_wrapped)", kv_bases=frozenset({"kv"}),
                  launches=(FLASH,))


def _flash(vllm_tree, extract):
    return invoke_wrapped(vllm_tree, extract(FLASH), flash_call(), mode=InvocationMode.VLLM_SIZED,
                          model=load_model(LLAMA, offline=True), workload="decode", why="test",
                          command="vkc collect reshape_and_cache_flash_kernel", name="reshape_and_cache_flash_kernel")


def _no_recipe(vllm_tree, extract, key):
    model_id, qualified = NO_RECIPE[key]
    return invoke_cuda(vllm_tree, extract(qualified), load_model(model_id, offline=True), "decode",
                       command=f"vkc collect {_name(qualified)} --model {model_id}", name=_name(qualified))


@pytest.fixture
def programs(vllm_tree, extract, traced):
    """id -> (kernel qualified name, Invocation) for every program the tests build."""
    out = {k: (DIRECT[k][2], _direct(vllm_tree, extract, traced, k)) for k in DIRECT}
    out.update({k: (NO_RECIPE[k][1], _no_recipe(vllm_tree, extract, k)) for k in NO_RECIPE})
    out["reshape_and_cache_flash"] = (FLASH, _flash(vllm_tree, extract))
    return out


def test_programs_call_vllms_host_function(vllm_tree, programs):
    result = re.search(r'"RESULT kernel=.*?\\n"', HOST_TEMPLATE.read_text(), re.S)
    assert result is not None
    for key, (qualified, inv) in programs.items():
        code = inv.code
        prov = inv.facts["provenance"]
        assert inv.facts["wrapper_compiled"], key
        assert prov.fallback_from is None
        where = inv.facts["host_function"]
        assert prov.source.endswith(f"; launch: vLLM's {inv.facts['host_name']} ({where}) compiled against vkc's "
                                    "Tensor stand-in"), key
        file, line = where.split(":")
        head = (vllm_tree.root / file).read_text().splitlines()[int(line) - 1]
        assert head in code, (key, head)                    # the host function, copied verbatim
        assert "// ==== vkc Tensor stand-in" in code
        # the host template's RESULT line, unchanged (" %s": the reference check's fields, where there is one)
        fmt = result.group(0).replace('{{ " %s" if reference else "" }}', "")
        assert fmt in code or fmt.replace("\\n", " %s\\n") in code, key
        assert f'#include "{_name(qualified)}.cu"' in code
        assert not re.search(r"__global__[^;{]*\b" + re.escape(_name(qualified)) + r"\s*\(", code), key


def test_modes_and_sources(programs):
    for key in (*DIRECT, *NO_RECIPE):
        prov = programs[key][1].facts["provenance"]
        assert prov.mode is InvocationMode.MODEL_TRACED, key
        assert "decode layer 0" in prov.source
    assert programs["moe_align_small_batch"][1].facts["provenance"].source.startswith(
        f"{GPT_OSS_20B} decode layer 0: _moe_C::moe_align_block_size(topk_ids int32[64, 4]")
    assert "// invocation: model-traced (model-accurate): " in programs["moe_sum_vec_dynamic"][1].code
    flash = programs["reshape_and_cache_flash"][1].facts["provenance"]
    assert flash.mode is InvocationMode.VLLM_SIZED
    assert flash.source.startswith("hand-built op call (tests/invoke_cuda_wrapped); launch: vLLM's "
                                   "reshape_and_cache_flash (csrc/cache_kernels.cu:")


def test_views_share_one_allocation(programs):
    rope = programs["rotary_embedding"][1].code
    # Llama's query and key: views of one fused qkv row (6144 elements), key 4096 elements in
    assert re.search(r"torch::stable::Tensor t1\((s\d), \{64, 4096\}, \{6144, 1\}, 0, ", rope)
    s = re.search(r"torch::stable::Tensor t1\((s\d)", rope).group(1)
    assert f"torch::stable::Tensor t2({s}, {{64, 1024}}, {{6144, 1}}, 4096, " in rope
    flash = programs["reshape_and_cache_flash"][1].code
    assert "torch::stable::Tensor t2(s1, {16385, 16, 8, 128}, {16384, 1024, 128, 1}, 0, " in flash
    assert "torch::stable::Tensor t3(s1, {16385, 16, 8, 128}, {16384, 1024, 128, 1}, 268451840, " in flash
    assert "std::string(\"auto\")" in flash
    assert "KV cache" in flash                        # not counted in the GB/s bytes


def test_index_contents_are_vllms(programs):
    align = programs["moe_align_small_batch"][1].code
    # topk_ids: the router's top-k routing (values below the 32 experts), never zeros or addresses
    block = align[align.index("config FULL"):]
    ids = re.search(r"static const long long v\[\] = \{([^}]*)\}", block).group(1)
    vals = [int(x) for x in ids.split(",")]
    assert len(vals) == 64 * 4 and all(0 <= v < 32 for v in vals) and len(set(vals)) > 4
    flash = programs["reshape_and_cache_flash"][1].code
    assert "4095, 8191, 12287" in flash              # the slots the call's source gave


def test_schema_defaults_fill_missing_arguments(programs):
    code = programs["moe_align_small_batch"][1].code
    assert "// scatter_idx = None (schema default)" in code
    assert "::moe_align_block_size(c0, c1, c2, c3, c4, c5, c6, c7);" in code


def test_deterministic(vllm_tree, extract, traced):
    a = _direct(vllm_tree, extract, traced, "rotary_embedding").code
    b = _direct(vllm_tree, extract, traced, "rotary_embedding").code
    assert a == b


def test_recipe_kernels_keep_their_recipe(vllm_tree, extract, traced):
    qualified = DIRECT["rms_norm"][2]
    inv = invoke_cuda(vllm_tree, extract(qualified), load_model(LLAMA, offline=True), "decode",
                      command="vkc collect rms_norm_kernel", name="rms_norm_kernel")
    assert not inv.facts.get("wrapper_compiled")
    assert "vkc Tensor stand-in" not in inv.code


def test_not_launched_leaves_the_synthesized_example_unchanged(vllm_tree, extract, traced, monkeypatch):
    """Llama's step calls no moe_sum: the synthesized example, byte-identical to model tracing off."""
    qualified = NO_RECIPE["moe_sum_vec_dynamic"][1]
    on = invoke_cuda(vllm_tree, extract(qualified), load_model(LLAMA, offline=True), "decode", command="c", name="k")
    monkeypatch.setenv("VKC_MODEL_TRACE", "0")
    off = invoke_cuda(vllm_tree, extract(qualified), load_model(LLAMA, offline=True), "decode", command="c", name="k")
    assert on.code == off.code
    assert on.facts["provenance"].mode is InvocationMode.SYNTHESIZED


def test_unreproducible_call_falls_back_loudly(vllm_tree, extract, traced, capsys):
    """A launching call the wrapper path cannot reproduce: synthesized, fallback_from and a warning."""
    trace = traced[QWEN3_NEXT]

    def odd(e):                       # moe_sum's output in a dtype the stand-in cannot hold
        return dataclasses.replace(e, args=tuple((n, dataclasses.replace(a, dtype="bits16") if n == "output" else a)
                                                 for n, a in e.args))
    steps = tuple(dataclasses.replace(s, events=tuple(odd(e) if e.name == "_moe_C::moe_sum" else e
                                                      for e in s.events)) for s in trace.steps)
    traced[QWEN3_NEXT] = dataclasses.replace(trace, steps=steps)
    inv = _no_recipe(vllm_tree, extract, "moe_sum_vec_dynamic")
    prov = inv.facts["provenance"]
    assert prov.mode is InvocationMode.SYNTHESIZED
    assert prov.fallback_from is not None and "output: dtype bits16 has no C++ element type" in prov.fallback_from
    assert "vkc: warning: csrc/moe/moe_align_sum_kernels.cu:moe_sum_vec_dynamic_kernel: model-traced call not " \
           "reproducible" in capsys.readouterr().err
    assert "fell back from model-traced" in inv.code


def _synthetic(root, op):
    from vkc.invoke.cuda.wrapped.schema import op_schema
    _text, schema = op_schema(root, op)
    args = []
    for i, a in enumerate(schema):
        if a.base == "Tensor":
            args.append((a.name, _tensor("bfloat16", (16, 128), (128, 1), 0, f"b{i}", 4096, "input:test")))
        elif a.default is None:
            args.append((a.name, ScalarArg({"int": 16, "SymInt": 16, "float": 1.0, "bool": False, "str": "auto"}[a.base])))
    return OpCall(TracedEvent(0, "op", op, None, None, tuple(args)), {}, "synthetic")


def test_stand_in_gap_is_refused_with_the_reason(vllm_tree, extract):
    """awq_gemm's host code calls torch::stable::sum, which the stand-in does not provide: refused, named."""
    with pytest.raises(WrapRefused, match=r"does not provide: torch::stable::sum"):
        invoke_wrapped(vllm_tree, extract("csrc/quantization/awq/gemm_kernels.cu:gemm_forward_4bit_cuda_m16nXk32"),
                       _synthetic(str(vllm_tree.root), "_C::awq_gemm"), mode=InvocationMode.VLLM_SIZED, model=None,
                       workload="decode", why="test", command="c", name="gemm_forward_4bit_cuda_m16nXk32",
                       check_launch=False)


def test_unsupported_names():
    assert unsupported("auto t = torch::stable::empty({4}); torch::stable::accelerator::DeviceGuard g(0);") == []
    assert unsupported("torch::stable::sum(x); // torch::stable::amax") == ["torch::stable::sum"]
    assert unsupported('cublasSgemm(h, 1); printf("at::foo");') == ["cuBLAS: cublasSgemm"]
    assert unsupported("cublasHgemm(h, 1);") == []          # forwarded (templates/cublas.cuh.j2)
    assert unsupported("auto s = at::cuda::getCurrentCUDAStream();") == ["ATen (at::...): at::cuda"]
    assert param_problem("const std::optional<torch::stable::Tensor>&", "Tensor?") is None
    assert param_problem("int64_t", "int") is None
    assert "is not one the program can construct" in (param_problem("SomeStruct const&", "int") or "")


def test_schema_parse():
    args = parse_args("swigluoai_and_mul(Tensor! out, Tensor input, float alpha=1.702, float limit=7.0) -> ()")
    assert [(a.name, a.type, a.default, a.written) for a in args] == [
        ("out", "Tensor", None, True), ("input", "Tensor", None, False), ("alpha", "float", "1.702", False),
        ("limit", "float", "7.0", False)]
    odd = parse_args("f(Tensor(a!) x, Tensor !y, Tensor? z=None, *, int[] s=[]) -> Tensor")
    assert [(a.name, a.type, a.written) for a in odd] == [("x", "Tensor", True), ("y", "Tensor", True),
                                                         ("z", "Tensor?", False), ("s", "int[]", False)]


def test_host_code_closure(vllm_tree, extract):
    ex = extract(DIRECT["rms_norm"][2])
    h = host_code(str(vllm_tree.root), "csrc/layernorm_kernels.cu", "rms_norm", ex.source_code, nargs=4)
    assert h.params[0] == ("torch::stable::Tensor&", "out") and h.params[3] == ("double", "epsilon")
    assert {"csrc/torch_utils.h:76", "csrc/dispatch_utils.h:44", "csrc/layernorm_kernels.cu:221"} <= set(h.inlined)
    assert not any(x.startswith("csrc/layernorm_kernels.cu:14") for x in h.inlined)   # the kernel: in the unit
    assert h.qualified == "::rms_norm"


@pytest.mark.nvcc
@pytest.mark.parametrize("key", [*DIRECT, *NO_RECIPE, "reshape_and_cache_flash"])
def test_program_builds(programs, extract, key, tmp_path):
    from vkc.naming import safe_stem
    from vkc.toolchain.nvcc import nvcc_flags
    qualified, inv = programs[key]
    stem = safe_stem(_name(qualified))
    (tmp_path / f"{stem}.cu").write_text(extract(qualified).source_code)
    (tmp_path / f"{stem}_main.cu").write_text(inv.code)
    r = subprocess.run(["nvcc", *nvcc_flags(), "-o", str(tmp_path / stem), str(tmp_path / f"{stem}_main.cu")],
                       capture_output=True, text=True, cwd=tmp_path, timeout=1200)
    assert r.returncode == 0, r.stderr[-3000:]


def test_stand_in_list_matches_the_header():
    """check.STANDIN_OPS names exactly the torch::stable functions the stand-in template defines."""
    from vkc.invoke.cuda.wrapped.check import STANDIN_OPS
    text = (HOST_TEMPLATE.parent / "standin.cuh.j2").read_text()
    stable = text[text.index("namespace stable {"):text.index("}  // namespace stable")]
    body = stable[stable.index("// ---- the torch::stable ops"):]
    assert set(re.findall(r"^inline Tensor (\w+)\(", body, re.M)) == STANDIN_OPS


def test_namespaces_recovered_where_the_parse_lost_them(vllm_tree, extract):
    """fused_deepseek_v4_qnorm_rope_kv_insert_kernel.cu breaks tree-sitter's parse before its host helpers:
    their items come back without a namespace chain; the host code reopens vllm::deepseek_v4_fused_ops."""
    qualified = "csrc/fused_deepseek_v4_qnorm_rope_kv_insert_kernel.cu:fusedDeepseekV4FullCacheKernel"
    h = host_code(str(vllm_tree.root), "csrc/fused_deepseek_v4_qnorm_rope_kv_insert_kernel.cu",
                  "fused_deepseek_v4_kv_rope_insert", extract(qualified).source_code)
    code = "\n".join(h.chunks)
    helper = code.index("launchFullCacheKernel(")
    opened = code.rfind("namespace deepseek_v4_fused_ops {", 0, helper)
    assert opened >= 0 and "}  // namespace deepseek_v4_fused_ops" not in code[opened:helper]
    # and vllm::cuda_async's using-directive comes with the code it makes visible (fused_qknorm_rope)
    q = host_code(str(vllm_tree.root), "csrc/fused_qknorm_rope_kernel.cu", "fused_qk_norm_rope",
                  extract("csrc/fused_qknorm_rope_kernel.cu:fusedQKNormRopeKernel").source_code)
    assert "using namespace vllm::cuda_async;" in "\n".join(q.chunks)


def test_call_into_another_translation_unit_is_refused(vllm_tree, extract):
    """persistent_topk calls top_k_per_row_decode, declared in csrc/ops.h and defined in csrc/sampler.cu: the
    program (one translation unit) cannot link it, so the host code is refused with that reason; an
    SM100-only call compiled out by its #if (concat_and_cache_mla's nvfp4 branch) is not a reason."""
    with pytest.raises(WrapRefused, match=r"calls top_k_per_row_decode, which vLLM defines in another translation"):
        host_code(str(vllm_tree.root), "csrc/topk.cu", "persistent_topk",
                  extract("csrc/persistent_topk.cuh:FilteredTopKUnifiedKernel").source_code)
    h = host_code(str(vllm_tree.root), "csrc/cache_kernels.cu", "concat_and_cache_mla",
                  extract("csrc/cache_kernels.cu:concat_and_cache_mla_kernel").source_code)
    assert "vllm::launch_concat_and_cache_nvfp4_ds_mla(" in "\n".join(h.chunks)
