"""What the model trace's start-up reads per release (issue 14), on small fixture trees.

* op schemas: 0.25.0 - 0.30.0 define the stable-ABI ops (``_C::silu_and_mul``, the MoE ops) in
  ``csrc/libtorch_stable/torch_bindings.cpp`` and ``csrc/libtorch_stable/moe/``; reading only 0.33.0's two
  files left ``torch.ops._C.silu_and_mul`` undefined, so every model trace there failed.
* dummy-scalars: 0.32.0's ``initialize_single_dummy_weight`` takes no ``name`` (0.33.0's does); calling it
  with one failed every model trace with a TypeError.
"""
from __future__ import annotations

from pathlib import Path

from vkc.modeltrace.dummy_scalars import _takes_name
from vkc.modeltrace.opschema import binding_files, parse_schemas

_STABLE = '''\
STABLE_TORCH_LIBRARY_FRAGMENT(_C, ops) {
  ops.def("silu_and_mul(Tensor! result, Tensor input) -> ()");
}
'''
_MOE = '''\
STABLE_TORCH_LIBRARY_FRAGMENT(_moe_C, m) {
  m.def("moe_sum(Tensor input, Tensor! output) -> ()");
}
'''
_CPU = '''\
TORCH_LIBRARY_FRAGMENT(_C, ops) {
  ops.def("cpu_only_op(Tensor! out) -> ()");
}
'''


def _write(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


def test_the_stable_abi_bindings_of_an_older_release_are_read(tmp_path):
    root = _write(tmp_path, {"csrc/torch_bindings.cpp": "// custom_ar only\n",
                             "csrc/libtorch_stable/torch_bindings.cpp": _STABLE,
                             "csrc/libtorch_stable/moe/torch_bindings.cpp": _MOE,
                             "csrc/cpu/torch_bindings.cpp": _CPU,
                             "csrc/rocm/torch_bindings.cpp": _CPU})
    assert binding_files(root) == ("csrc/torch_bindings.cpp", "csrc/libtorch_stable/moe/torch_bindings.cpp",
                                   "csrc/libtorch_stable/torch_bindings.cpp")
    got = parse_schemas(root)
    assert ("_C", "silu_and_mul(Tensor! result, Tensor input) -> ()") in got
    assert ("_moe_C", "moe_sum(Tensor input, Tensor! output) -> ()") in got
    assert not any("cpu_only_op" in s for _, s in got)          # CPU/ROCm builds' bindings are not CUDA's


def test_the_033_layout_keeps_its_two_files_in_order(tmp_path):
    root = _write(tmp_path, {"csrc/moe/torch_bindings.cpp": _MOE, "csrc/torch_bindings.cpp": _STABLE,
                             "csrc/rocm/quickreduce/torch_bindings.cpp": _CPU})
    assert binding_files(root) == ("csrc/torch_bindings.cpp", "csrc/moe/torch_bindings.cpp")
    assert [ns for ns, _ in parse_schemas(root)] == ["_C", "_moe_C"]


def test_the_dummy_fill_is_called_as_the_release_calls_it():
    def fill_033(param, low=None, high=None, seed=1234, name=""):
        pass

    def fill_032(param, low=-1e-3, high=1e-3, seed=1234):
        pass

    def fill_kw(param, **kwargs):
        pass

    assert _takes_name(fill_033) and _takes_name(fill_kw)
    assert not _takes_name(fill_032)


def test_the_structured_output_worker_gets_the_arguments_its_release_takes():
    import pytest

    from vkc.modeltrace.release_stubs import release_kwargs

    known = {"max_num_logits": 64, "vocab_size": 32, "device": "meta", "mask_stride": 1, "num_bonus_tokens": 1}

    class W033:
        def __init__(self, max_num_logits, vocab_size, device, mask_stride):
            pass

    class W032(W033):
        def __init__(self, max_num_logits, vocab_size, device, mask_stride, num_bonus_tokens):
            pass

    class W025:
        def __init__(self, max_num_logits, vocab_size, device):
            pass

    class Unknown:
        def __init__(self, max_num_logits, grammar_cache):
            pass

    assert set(release_kwargs(W033, known)) == {"max_num_logits", "vocab_size", "device", "mask_stride"}
    assert release_kwargs(W032, known) == known
    assert set(release_kwargs(W025, known)) == {"max_num_logits", "vocab_size", "device"}
    with pytest.raises(TypeError, match="grammar_cache"):
        release_kwargs(Unknown, known)
