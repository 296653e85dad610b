"""The CUDA half's static index: which test reaches which compiled op (ast only), on made-up files
and on the real vLLM 0.33.0 tree."""
from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from vkc.records import SourceTree
from vkc.testtrace import build_op_reach_index, op_jobs
from vkc.testtrace.static_cuda import module_op_wrappers, op_refs, scan_op_test_file

CUSTOM_OPS = textwrap.dedent('''
    import torch

    def rms_norm(out, input, weight, epsilon):
        torch.ops._C.rms_norm(out, input, weight, epsilon)

    def _helper(x):
        return torch.ops._C_cache_ops.swap_blocks.default(x)

    def uses_helper(x):
        return _helper(x)

    if hasattr(torch.ops._C, "awq_gemm"):
        @register_fake("_C::awq_gemm")
        def _awq_gemm_fake(x):
            return torch.ops._C.not_a_call_site(x)

    def no_op(x):
        return hasattr(torch.ops._C, "rms_norm")
''')

FP8_UTILS = textwrap.dedent('''
    import torch

    def per_token_group_quant_fp8(x):
        torch.ops._C.per_token_group_fp8_quant(x)
''')

TEST_FILE = textwrap.dedent('''
    import pytest
    import torch
    from tests.kernels.utils import opcheck
    from vllm import _custom_ops as ops
    from vllm._custom_ops import uses_helper
    from vllm.model_executor.layers.quantization.utils import fp8_utils

    @pytest.mark.parametrize("hidden_size", [8, 4096])
    def test_passes_the_op(hidden_size, default_vllm_config):
        opcheck(torch.ops._C.rms_norm, (1, 2, 3, 1e-6))

    def test_wrapper():
        ops.rms_norm(1, 2, 3, 1e-6)
        uses_helper(1)

    def _local(x):
        return fp8_utils.per_token_group_quant_fp8(x)

    def test_via_local_helper():
        _local(1)

    def test_nothing():
        ops.not_a_wrapper(1)
''')


def _tree(tmp_path: Path) -> SourceTree:
    for rel, text in (("vllm/_custom_ops.py", CUSTOM_OPS),
                      ("vllm/model_executor/layers/quantization/utils/fp8_utils.py", FP8_UTILS),
                      ("tests/kernels/core/test_x.py", TEST_FILE)):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    return SourceTree(root=tmp_path, version="0.0.0", origin=str(tmp_path))


def test_wrappers_follow_the_module_call_graph_and_skip_fakes():
    w = module_op_wrappers(CUSTOM_OPS)
    assert w == {"rms_norm": frozenset({"_C::rms_norm"}), "_helper": frozenset({"_C_cache_ops::swap_blocks"}),
                 "uses_helper": frozenset({"_C_cache_ops::swap_blocks"})}
    assert op_refs(__import__("ast").parse("torch.ops._C.x.default(1); torch.ops._C")) == {"_C::x"}


def test_index_on_a_made_up_tree(tmp_path, monkeypatch):
    monkeypatch.setenv("VKC_CACHE_DIR", str(tmp_path / "cache"))
    tree = _tree(tmp_path)
    kernels = {"_C::rms_norm": ("csrc/layernorm_kernels.cu:rms_norm_kernel",),
               "_C_cache_ops::swap_blocks": ("csrc/cache_kernels.cu:swap",),
               "_C::per_token_group_fp8_quant": ("csrc/q.cu:group_quant",)}
    idx = build_op_reach_index(tree, kernels)
    got = sorted((r.kernel.split(":")[1], r.op, r.wrapper, r.test.function, r.via) for r in idx.reaches)
    assert got == [
        ("group_quant", "_C::per_token_group_fp8_quant",
         "vllm.model_executor.layers.quantization.utils.fp8_utils:per_token_group_quant_fp8",
         "test_via_local_helper", "_local"),
        ("rms_norm_kernel", "_C::rms_norm", "torch.ops._C.rms_norm", "test_passes_the_op", None),
        ("rms_norm_kernel", "_C::rms_norm", "vllm._custom_ops:rms_norm", "test_wrapper", None),
        ("swap", "_C_cache_ops::swap_blocks", "vllm._custom_ops:uses_helper", "test_wrapper", None),
    ]
    assert (idx.files, idx.tests) == (1, 4)
    rms = next(r for r in idx.reaches if r.test.function == "test_passes_the_op")
    assert rms.test.params == (("hidden_size", ("8", "4096")),) and rms.test.fixtures == ("default_vllm_config",)
    # cached on disk: a second index (fresh memo) reads the same answer back
    from vkc.testtrace import static_cuda
    static_cuda._memo.clear()
    assert build_op_reach_index(tree, kernels) == idx
    assert list((tmp_path / "cache" / "testtraces").glob("opreach-*.json"))
    jobs = op_jobs(idx, kernels, "csrc/layernorm_kernels.cu:rms_norm_kernel", {"hidden": 4096})
    assert [(j.test.function, j.ops, dict(j.dims or {})) for j in jobs] == [
        ("test_passes_the_op", ("_C::rms_norm",), {"hidden": 4096}),   # a mappable size first
        ("test_wrapper", ("_C::rms_norm",), {"hidden": 4096})]


def test_scan_ignores_a_broken_file():
    assert scan_op_test_file("tests/kernels/test_bad.py", "def test(:\n", {}) == []


@pytest.fixture(scope="module")
def real(vllm_tree):
    from vkc.index import build_index
    from vkc.invoke.cuda.modeltraced.opmap import op_kernel_map

    kernels = {op: ok.kernels for op, ok in op_kernel_map(build_index(vllm_tree)).items()}
    return kernels, build_op_reach_index(vllm_tree, kernels)


@pytest.mark.sdist
@pytest.mark.parametrize("kernel,op,test", [
    ("csrc/layernorm_kernels.cu:rms_norm_kernel", "_C::rms_norm",
     "tests/kernels/core/test_layernorm.py::test_rms_norm"),
    ("csrc/cache_kernels.cu:reshape_and_cache_flash_kernel", "_C_cache_ops::reshape_and_cache_flash",
     "tests/kernels/attention/test_cache.py::test_reshape_and_cache_flash"),
    ("csrc/activation_kernels.cu:act_and_mul_kernel", "_C::silu_and_mul",
     "tests/kernels/core/test_activation.py::test_act_and_mul"),
    ("csrc/moe/moe_align_sum_kernels.cu:moe_align_block_size_kernel", "_moe_C::moe_align_block_size",
     "tests/kernels/moe/test_moe_align_block_size.py::test_moe_align_block_size"),
    ("csrc/quantization/w8a8/fp8/per_token_group_quant.cu:per_token_group_quant_8bit_kernel",
     "_C::per_token_group_fp8_quant",
     "tests/kernels/quantization/test_per_token_group_quant.py::test_per_token_group_quant_fp8"),
])
def test_real_tree_reaches_known_kernels(real, kernel, op, test):
    _kernels, idx = real
    found = {(r.op, r.test.node_id) for r in idx.for_kernel(kernel)}
    assert (op, test) in found, sorted(found)[:10]


@pytest.mark.sdist
def test_real_tree_counts_and_first_jobs(real):
    kernels, idx = real
    assert idx.files > 250 and idx.tests > 1500
    assert 100 <= len(idx.kernels) <= 133          # every reached kernel is one the op map has
    assert all(r.op in kernels and r.kernel in kernels[r.op] for r in idx.reaches)
    jobs = op_jobs(idx, kernels, "csrc/layernorm_kernels.cu:rms_norm_kernel", None)
    assert len(jobs) == 3 and all(j.ops == ("_C::rms_norm",) for j in jobs)
    assert jobs[0].test.file.startswith("tests/kernels/core/")
