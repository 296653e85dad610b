"""Generic CUDA invocation (no recipe): instantiation choice and collision-free host code."""
from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from helpers import model

from vkc.invoke.cuda import invoke_cuda
from vkc.invoke.cuda.untraced.names import (
    TEMPLATE_LOCALS,
    Names,
    namespace_directives,
    pick_instantiation,
)

LLAMA = "meta-llama/Llama-3.1-8B-Instruct"


@pytest.fixture(scope="module")
def index(vllm_tree):
    from vkc.pipeline import load_index
    return load_index()


def _collect(index, name: str):
    from vkc.extract import extract
    from vkc.index import lookup
    ex = extract(index.tree, lookup(index, name), name=name)
    inv = invoke_cuda(index.tree, ex, model(LLAMA), None, command=f"vkc collect {name}", name=name)
    return ex, inv


def _main_scope_decls(code: str) -> list[str]:
    """Names declared at main()'s outermost scope (two-space indent)."""
    body = code[code.index("int main() {"):]
    out = []
    for line in body.splitlines():
        m = re.match(r"  (?:const |constexpr )?(?:[\w:<>]+\s*\*?\s+)+?([A-Za-z_]\w*)\s*(?:=|\{|;|\()", line)
        if m and not line.startswith("   ") and not re.match(r"  (return|if|for|using|VKC_|vkc_host|std::)", line):
            out.append(m.group(1))
        m = re.match(r"  using ([A-Za-z_]\w*) =", line)
        if m:
            out.append(m.group(1))
    return out


# ---------------------------------------------------------------- pure helpers
def test_pick_instantiation_order():
    f = {"instantiations": {"float32": "float", "bfloat16": "__nv_bfloat16"}}
    assert pick_instantiation(f, "bfloat16") == ("__nv_bfloat16", "from vLLM's launch")
    # a dtype-free instantiation (no dtype dispatch at the launch) is vLLM's, not the raw launch text
    f = {"instantiations": {"default": "marlin::repack_threads, 4, false"},
         "launch": {"template_args": "marlin::repack_threads, NUM_BITS, IS_A_8BIT"}}
    assert pick_instantiation(f, "bfloat16")[0] == "marlin::repack_threads, 4, false"
    text, why = pick_instantiation({"instantiations": {"float32": "float, int32_t"}}, "bfloat16")
    assert text == "float, int32_t" and "float32" in why and "none for bfloat16" in why
    # index-dtype keyed dispatches prefer int32
    text, _ = pick_instantiation({"instantiations": {"uint8": "uint8_t", "int32": "int32_t"}}, "bfloat16")
    assert text == "int32_t"
    text, why = pick_instantiation({"instantiations": {}, "example_instantiation": "float, 1"}, "bfloat16")
    assert text == "float, 1" and "example instantiation" in why
    assert pick_instantiation({}, "bfloat16") == ("", "")
    # an argument bound only by a host value: the example instantiation instead
    f = {"instantiations": {"default": "4, num_bits"}, "unbound_template_args": ["num_bits"],
         "example_instantiation": "4, 8"}
    text, why = pick_instantiation(f, "bfloat16")
    assert text == "4, 8" and "example instantiation" in why
    # arguments the extractor had to guess are not called vLLM's
    f = {"instantiations": {"default": "true, 1"}, "template_arg_choices": {"n": {"chosen": "1", "default": True}}}
    text, why = pick_instantiation(f, "bfloat16")
    assert text == "true, 1" and "n guessed" in why and "not vLLM's choice" in why


def test_names_and_namespaces():
    n = Names()
    assert not n.take("stream") and n.take("num_tokens") and not n.take("num_tokens")
    assert n.fresh("num_tokens") == "num_tokens_2" and n.fresh("p_x") == "p_x"
    assert {"stream", "iters", "vkc_grid"} <= TEMPLATE_LOCALS
    assert namespace_directives("vllm::moe::k") == ["using namespace vllm;", "using namespace vllm::moe;"]
    assert namespace_directives("k") == []


# ---------------------------------------------------------------- real kernels (no nvcc)
# moe_sum_vec_dynamic_kernel: the untraced path (moe_sum_vec_kernel has a recipe now, MoE models only)
@pytest.mark.parametrize("name", ["vocab_parallel_embedding_kernel", "moe_sum_vec_dynamic_kernel",
                                  "fusedQKNormRopeKernel"])
def test_param_named_num_tokens_declared_once(index, name):
    _ex, inv = _collect(index, name)
    decls = _main_scope_decls(inv.code)
    assert "num_tokens" in decls
    dup = sorted({d for d in decls if decls.count(d) > 1})
    assert not dup, dup


@pytest.mark.parametrize("name,want", [
    ("awq_marlin_repack_kernel", "marlin::awq_marlin_repack_kernel<marlin::repack_threads, 4, false>"),
    ("convert_fp8_kernel", "vllm::convert_fp8_kernel<uint8_t, float, vllm::Fp8KVCacheDataType::kAuto>"),
    # swigluoai_and_mul_kernel has a recipe now; fatrelu's act_and_mul_kernel_with_param keeps the generic path
    ("act_and_mul_kernel_with_param",
     ("vllm::act_and_mul_kernel_with_param<c10::BFloat16, typename vllm::PackedTypeConverter<c10::BFloat16>::Type, "
      "vllm::fatrelu_kernel<c10::BFloat16>, vllm::packed_fatrelu_kernel< typename "
      "vllm::PackedTypeConverter<c10::BFloat16>::Type>, true, true>")),
])
def test_instantiation_is_resolved(index, name, want):
    _ex, inv = _collect(index, name)
    assert inv.facts["instantiation"] == want
    assert f"// VKC_INSTANTIATE: {want}\n" in inv.code
    assert "dispatch: generic: " in inv.code and "from vLLM's launch" in inv.code


def test_namespace_of_kernel_is_visible_to_host(index):
    _ex, inv = _collect(index, "reshape_and_cache_kernel")
    assert "using namespace vllm;" in inv.code
    assert re.search(r"constexpr Fp8KVCacheDataType kv_dt = vllm::Fp8KVCacheDataType::\w+;", inv.code)


def test_guessed_dtype_instantiation_is_dropped(index):
    from vkc.extract import extract
    from vkc.index import lookup
    ex = extract(index.tree, lookup(index, "FilteredTopKUnifiedKernel"), name="FilteredTopKUnifiedKernel")
    insts = ex.facts["instantiations"]
    assert insts and "bfloat16" not in insts   # bf16 was only a guess (DType = IdType = __nv_bfloat16)
    assert all("int32_t" in v for v in insts.values())


# ---------------------------------------------------------------- nvcc (one host program)
@pytest.mark.nvcc
@pytest.mark.slow
def test_generic_program_compiles(index, tmp_path):
    if shutil.which("nvcc") is None:
        pytest.skip("nvcc not on PATH")
    from vkc.verify.cuda_compile import nvcc_flags
    ex, inv = _collect(index, "concat_and_cache_ds_mla_kernel")
    (tmp_path / inv.facts["unit_file"]).write_text(ex.source_code)
    main = Path(tmp_path / inv.facts["main_file"])
    main.write_text(inv.code)
    r = subprocess.run(["nvcc", "-c", *nvcc_flags(), "-o", str(tmp_path / "m.o"), str(main)],
                       capture_output=True, text=True, cwd=tmp_path, timeout=600, check=False)
    assert r.returncode == 0, r.stderr[-2000:]


# ---------------------------------------------------------------- extractor: guessed arguments
def test_member_of_type_parameter_takes_first_instantiation():
    from vkc.extract.cuda.refs import _member_value
    text = ("template <int Experts, int TopK>\nstruct Tier {\n  static constexpr int kExperts = Experts;\n"
            "  static constexpr int kTopK = TopK;\n};\nusing Tiers = TierList<Tier<128, 8>, Tier<256, 8>>;\n")
    assert _member_value(text, "kExperts") == "128" and _member_value(text, "kTopK") == "8"
    assert _member_value(text, "kOther") is None


def test_guessed_bf16_follows_the_files_spelling(index):
    from vkc.extract import extract
    from vkc.index import lookup
    name = "fusedMuseSparkQKNormRopeKVInsertKernel"   # its traits are specialised for c10::BFloat16 only
    ex = extract(index.tree, lookup(index, name), name=name)
    assert ex.facts["instantiations"]["bfloat16"].startswith("c10::BFloat16, ")
    name = "single_group_topk_warp_kernel"            # MaxNumExperts = First::kExperts (a Tier<128, 8>)
    ex = extract(index.tree, lookup(index, name), name=name)
    assert ex.facts["instantiations"]["bfloat16"].endswith(", 128, 8")
