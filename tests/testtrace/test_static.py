"""The static index: which test function calls which kernel's wrapper (ast only, a made-up tree)."""
from __future__ import annotations

import textwrap

import pytest

from vkc.records import KernelEntry, LaunchSite, SourceTree
from vkc.testtrace import build_reach_index
from vkc.testtrace.static import scan_test_file

TEST_FILE = textwrap.dedent('''
    import pytest
    import torch
    import vllm.ops.other as other
    from vllm.ops.conv import conv_update
    from vllm.reexport import quant_fn
    from vllm.ops.misc import forward

    @pytest.mark.parametrize("dim", [2048, 4096])
    @pytest.mark.parametrize("num_heads,head_size", [(8, 64), (16, 128)])
    def test_conv(dim, num_heads, head_size, monkeypatch, seed=0):
        conv_update(torch.zeros(dim))

    def _helper(x):
        return other.launch_other(x)

    def test_via_helper():
        _helper(1)

    def test_reexport_and_ambiguous():
        quant_fn(1)
        forward(2)

    def not_a_test():
        conv_update(1)
''')


def _kernel(name: str, module: str, file: str, wrapper: str) -> KernelEntry:
    return KernelEntry("triton", name, name, file, 1, 2, module=module,
                       launch_sites=(LaunchSite(file, 10, wrapper, "grid"),), qualified=f"{module}:{name}")


KERNELS = (
    _kernel("_conv_kernel", "vllm.ops.conv", "vllm/ops/conv.py", "conv_update"),
    _kernel("_other_kernel", "vllm.ops.other", "vllm/ops/other.py", "launch_other"),
    _kernel("_quant_kernel", "vllm.ops.quant", "vllm/ops/quant.py", "quant_fn"),
    _kernel("_fwd_a", "vllm.ops.a", "vllm/ops/a.py", "forward"),
    _kernel("_fwd_b", "vllm.ops.b", "vllm/ops/b.py", "forward"),
)


def test_scan_records_params_fixtures_and_calls():
    tests = {t.function: (t, calls, helpers) for t, calls, helpers in scan_test_file("tests/kernels/test_x.py", TEST_FILE)}
    assert set(tests) == {"test_conv", "test_via_helper", "test_reexport_and_ambiguous"}
    conv, calls, _h = tests["test_conv"]
    assert conv.params == (("dim", ("2048", "4096")), ("num_heads,head_size", ("(8, 64)", "(16, 128)")))
    assert conv.fixtures == ("monkeypatch",)          # seed has a default; the rest are parametrized
    assert ("vllm.ops.conv", "conv_update") in calls
    assert conv.node_id == "tests/kernels/test_x.py::test_conv"
    _t, _c, helpers = tests["test_via_helper"]
    assert helpers == {"_helper": {("vllm.ops.other", "launch_other")}}


def test_reach_index(tmp_path, monkeypatch):
    monkeypatch.setenv("VKC_CACHE_DIR", str(tmp_path / "cache"))
    (tmp_path / "tests" / "kernels").mkdir(parents=True)
    (tmp_path / "tests" / "kernels" / "test_x.py").write_text(TEST_FILE)
    # a test outside tests/kernels/ (sorting before it by name) reaches too, after the kernels' own tests
    (tmp_path / "tests" / "a_v1").mkdir()
    (tmp_path / "tests" / "a_v1" / "test_y.py").write_text(
        "from vllm.ops.conv import conv_update\n\ndef test_in_v1():\n    conv_update(1)\n")
    tree = SourceTree(tmp_path, "local", str(tmp_path))
    idx = build_reach_index(tree, KERNELS)
    got = {(r.kernel.split(":")[1], r.test.function, r.via) for r in idx.reaches}
    assert got == {("_conv_kernel", "test_conv", None), ("_other_kernel", "test_via_helper", "_helper"),
                   ("_quant_kernel", "test_reexport_and_ambiguous", None),   # `forward` is ambiguous: not matched
                   ("_conv_kernel", "test_in_v1", None)}
    assert idx.tests == 4 and idx.files == 2
    assert [r.test.function for r in idx.for_kernel("vllm.ops.conv:_conv_kernel")] == ["test_conv", "test_in_v1"]
    # a second build (new process: memo cleared) reads the disk cache and gives the same index
    from vkc.testtrace import static
    static._memo.clear()
    assert build_reach_index(tree, KERNELS) == idx
    assert list((tmp_path / "cache" / "testtraces").glob("reach-*.json"))


@pytest.mark.sdist
def test_reach_index_of_the_real_tree(vllm_tree):
    from vkc.index import build_index

    idx = build_reach_index(vllm_tree, build_index(vllm_tree).kernels)
    conv = "vllm.model_executor.layers.mamba.ops.causal_conv1d:_causal_conv1d_update_kernel"
    assert "tests/kernels/mamba/test_causal_conv1d.py::test_causal_conv1d_update" in {
        r.test.node_id for r in idx.for_kernel(conv)}
    assert all(r.test.file.startswith("tests/") for r in idx.reaches)
    # 228 of the 0.33.0 Triton entry kernels not rocm_only (132 from tests/kernels/); 262 and 151
    # before issue 14 made the kernels of platform-only modules rocm_only (vllm/models/*/amd/,
    # whose vLLM tests skip off ROCm)
    assert len(idx.kernels) >= 220
    assert sum(1 for q in idx.kernels if any(r.test.file.startswith("tests/kernels/") for r in idx.for_kernel(q))) >= 130  # 132
    # the rejection sampler's kernels are reached from tests/v1/ only
    sampler = [q for q in idx.kernels if q.startswith("vllm.v1.worker.gpu.spec_decode.rejection_sampler:")]
    assert sampler and all(r.test.file.startswith("tests/v1/") for q in sampler for r in idx.for_kernel(q))
    for q in idx.kernels:   # a kernel's tests under tests/kernels/ come first
        files = [r.test.file.startswith("tests/kernels/") for r in idx.for_kernel(q)]
        assert files == sorted(files, reverse=True)
