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
