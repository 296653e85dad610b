"""Choosing a parametrization: the first values, size parameters mapped from the model by name."""
from __future__ import annotations

import pytest
import torch

from vkc.testtrace.harness import Unsatisfied, choose_params, value_text

DIMS = {"h_q": 32, "h_kv": 8, "head_dim": 128, "hidden": 4096, "dtype": "bfloat16"}


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("num_tokens", [7, 83])
@pytest.mark.parametrize("head_size", [64, 80])
@pytest.mark.parametrize("num_heads", [(16, 16), (4, 1)])
def _case(dtype, num_tokens, head_size, num_heads):
    raise AssertionError("never called")


@pytest.mark.parametrize("itype", [torch.float32])
@pytest.mark.parametrize("hidden_size", [pytest.param(1, marks=pytest.mark.skip), 2])
def _other(itype, hidden_size):
    raise AssertionError("never called")


@pytest.mark.parametrize("x", [pytest.param(1, marks=pytest.mark.skip)])
def _all_skipped(x):
    raise AssertionError("never called")


def test_first_values_without_dims():
    kwargs, mapped, indirect = choose_params(_case, None)
    assert kwargs == {"dtype": torch.float16, "num_tokens": 7, "head_size": 64, "num_heads": (16, 16)}
    assert mapped == {} and indirect == []


def test_mapped_from_model():
    kwargs, mapped, _ = choose_params(_case, DIMS)
    assert kwargs == {"dtype": torch.bfloat16, "num_tokens": 7, "head_size": 128, "num_heads": (32, 8)}
    assert mapped == {"dtype": "bfloat16", "head_size": "128", "num_heads": "(32,8)"}


def test_dtype_only_when_listed_and_skip_marks():
    kwargs, mapped, _ = choose_params(_other, DIMS)
    assert kwargs == {"itype": torch.float32, "hidden_size": 4096}      # bfloat16 is not in the test's list
    assert mapped == {"hidden_size": "4096"}
    assert choose_params(_other, None)[0]["hidden_size"] == 2            # the skip-marked value is passed over
    with pytest.raises(Unsatisfied, match="skip"):
        choose_params(_all_skipped, None)


def test_value_text():
    assert value_text(torch.bfloat16) == "bfloat16"
    assert value_text((1, torch.int8)) == "(1,int8)"
    assert value_text("x" * 50).endswith("...")


@pytest.mark.parametrize("num_q_heads,num_kv_heads", [(24, 4), (8, 8)])
@pytest.mark.parametrize("shape", [(0, 128), (7, 128)])
@pytest.mark.parametrize("num_tokens", [0, 5])
@pytest.mark.parametrize("flag", [False, True])
def _multi(num_q_heads, num_kv_heads, shape, num_tokens, flag):
    raise AssertionError("never called")


def test_zero_sizes_passed_over_and_multi_name_marks_mapped():
    kwargs, mapped, _ = choose_params(_multi, None)
    assert kwargs == {"flag": False, "num_tokens": 5, "shape": (7, 128), "num_q_heads": 24, "num_kv_heads": 4}
    kwargs, mapped, _ = choose_params(_multi, DIMS)
    assert (kwargs["num_q_heads"], kwargs["num_kv_heads"]) == (32, 8)
    assert mapped == {"num_q_heads": "32", "num_kv_heads": "8"}


@pytest.mark.parametrize("precision", [pytest.param((torch.float32, torch.bfloat16), id="s32_a16")])
@pytest.mark.parametrize("x", [pytest.param(3, id="three"), 4])
def _single_name_params(precision, x):
    raise AssertionError("never called")


def test_single_name_pytest_param_is_unwrapped():
    kwargs, _, _ = choose_params(_single_name_params, None)
    assert kwargs == {"precision": (torch.float32, torch.bfloat16), "x": 3}


@pytest.fixture(params=["HND", "NHD"])
def layout_fixture(request):
    return f"layout:{request.param}"


@pytest.fixture
def indirect_fixture(request, layout_fixture):
    return (request.param, layout_fixture)


def test_fixtures_taking_request_get_the_param():
    import contextlib
    import sys

    from vkc.testtrace.fixtures import fixture_contexts

    home = sys.modules[__name__]
    with contextlib.ExitStack() as stack, fixture_contexts(["indirect_fixture"], stack, home,
                                                           {"indirect_fixture": "NHD"}) as fx:
        # the indirect value from the test's parametrize; a params fixture's first param
        assert fx == {"indirect_fixture": ("NHD", "layout:HND")}
    with contextlib.ExitStack() as stack, pytest.raises(Unsatisfied, match="no params"), \
            fixture_contexts(["indirect_fixture"], stack, home) as fx:
        pass


def test_cpu_device_marks_gpu_tensors():
    from vkc.testtrace.harness import CpuDevice

    host = torch.ones(3)
    with CpuDevice():
        a = torch.zeros(3, device="cuda")
        moved = host.cuda()
        assert a.device.type == "cpu" and a.is_cuda and not a.is_cpu
        assert (a + 1).is_cuda and moved.is_cuda and moved is not host    # a copy, as the transfer makes
        assert host.is_cpu and not host.is_cuda                            # the test's host tensor stays one
        assert host.to("cuda").is_cuda and a.cpu().is_cpu and a.to("cpu").is_cpu
        assert torch.arange(4).is_cpu


def test_cpu_patches_in_a_fresh_process():
    import subprocess
    import sys

    code = ("import torch\nfrom vkc.testtrace.harness import CpuDevice, install_cpu_patches\n"
            "install_cpu_patches()\n"
            "with CpuDevice():\n"
            "    g = torch.Generator(device='cuda').manual_seed(0)\n"
            "    assert isinstance(g, torch.Generator) and isinstance(torch.default_generator, torch.Generator)\n"
            "    torch.rand(2, device='cuda', generator=g)\n"
            "    graph = torch.cuda.CUDAGraph()\n"
            "    with torch.cuda.graph(graph):\n"
            "        pass\n"
            "    graph.replay()\n"
            "    torch.set_default_device('cuda')\n"
            "    assert torch.empty(2).is_cuda\n"
            "print('ok')\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
    assert out.stdout.strip() == "ok", out.stderr[-2000:]
