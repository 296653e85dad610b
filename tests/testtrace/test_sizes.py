"""Which mode a test capture earns (vkc.testtrace.sizes): test-traced only at the model's sizes."""
from __future__ import annotations

from vkc.testtrace import SIZE_NAMES
from vkc.testtrace.sizes import capture_mode, capture_source, own_sizes, workload_dims


def test_own_sizes_are_integers_and_integer_tuples_not_seeds_bools_or_dtypes():
    params = {"num_tokens": "7", "shape": "(7,512)", "seed": "0", "add_residual": "False", "dtype": "bfloat16",
              "device": "'cuda:0'", "hidden_size": "4096", "scale": "0.5", "layout": "'NHD'", "empty": "()"}
    assert own_sizes(params, {"hidden_size": "4096"}) == ["num_tokens=7", "shape=(7,512)"]


def test_every_size_from_the_model_is_test_traced():
    params = {"num_tokens": "64", "hidden_size": "4096", "seed": "0"}
    assert capture_mode(params, {"num_tokens": "64", "hidden_size": "4096"}, SIZE_NAMES) == "test-traced"
    assert capture_mode(params, {"hidden_size": "4096"}, SIZE_NAMES) == "vllm-sized"
    assert capture_mode(params, {}, SIZE_NAMES) == "vllm-sized"
    assert capture_mode({"dtype": "bfloat16"}, {"dtype": "bfloat16"}, SIZE_NAMES) == "vllm-sized"   # no size mapped


def test_source_names_both_halves():
    params = {"num_tokens": "7", "hidden_size": "4096"}
    assert capture_source("t::x", params, {"hidden_size": "4096"}, SIZE_NAMES) == (
        "t::x (from the model and workload: hidden_size=4096; the test's own sizes: num_tokens=7)")
    assert capture_source("t::x", params, {}, SIZE_NAMES) == "t::x (the test's own sizes; none maps from the model)"


def test_batch_names_take_the_workloads_step():
    assert SIZE_NAMES["num_tokens"] == "tokens" and SIZE_NAMES["batch_size"] == SIZE_NAMES["num_seqs"] == "seqs"
    assert workload_dims("decode") == {"tokens": 64, "seqs": 64}
    assert workload_dims("prefill") == {"tokens": 8192, "seqs": 4}
    assert workload_dims(None) == {}


def test_model_dims_with_a_workload():
    from vkc.invoke.triton.testtraced.attempt import model_dims
    from vkc.modelcfg import load_model

    llama = load_model("meta-llama/Llama-3.1-8B-Instruct", offline=True)

    assert "tokens" not in model_dims(llama)
    d = model_dims(llama, "decode")
    assert d["tokens"] == 64 and d["seqs"] == 64 and d["hidden"] == 4096
