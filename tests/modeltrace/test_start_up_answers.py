"""The start-up answers Step5 and Kimi-K3 needed, each on a small fixture (no vLLM run): the CuTe-DSL gate
import (``cute-dsl-gates``), the step metadata's host values (``metadata-host-reads``), meta tensors as the
H100's (``is_cuda``, pinned host memory) and C++-escaped op schema defaults (``op-schemas``)."""
from __future__ import annotations

import pytest

from vkc.modeltrace.gates import partial_module
from vkc.modeltrace.opschema import parse_schemas

GATED = '''
from functools import cache
import vkc_not_installed_dsl as dsl
from vkc_not_installed_dsl import jit

@jit
def kernel(x):
    return dsl.run(x)

class Runner(dsl.Base):
    pass

_state: Runner | None = None

def init_state():
    return dsl.init()

def maybe_init(capability: int) -> bool:
    if capability // 10 != 10:
        return False          # not SM100-family: declined before the DSL
    init_state()
    return True

@cache
def helper():
    return 3
'''


def test_a_gated_module_imports_partially_and_its_gate_decides(tmp_path):
    p = tmp_path / "gemm.py"
    p.write_text(GATED)
    mod, left = partial_module("pkg.gemm", p, ("maybe_init",))
    assert mod.maybe_init(90) is False and mod.helper() == 3
    assert [x.split(":")[0] for x in left] == ["line 3", "line 4", "line 7", "line 10", "line 13"]
    with pytest.raises(NameError):          # past the gate the DSL is needed: loud, never a silent no-op
        mod.maybe_init(100)
    with pytest.raises(ImportError, match="gate kernel"):
        partial_module("pkg.gemm", p, ("kernel",))


def test_op_schema_defaults_are_unescaped(tmp_path):
    f = tmp_path / "csrc" / "torch_bindings.cpp"
    f.parent.mkdir(parents=True)
    f.write_text('TORCH_LIBRARY_FRAGMENT(_C, ops) {\n  ops.def(\n      "fused_qknorm_rope_cache(Tensor! q, "\n'
                 '      "str kv_cache_dtype=\\"auto\\") -> ()");\n}\n')
    assert parse_schemas(tmp_path, ("csrc/torch_bindings.cpp",)) == [
        ("_C", 'fused_qknorm_rope_cache(Tensor! q, str kv_cache_dtype="auto") -> ()')]


torch = pytest.importorskip("torch")


def test_metadata_host_values_answer_a_derived_host_read():
    from vkc.modeltrace.dummy_scalars import metadata_shadows

    qsl = torch.empty(5, dtype=torch.int32, device="meta")
    host = torch.tensor([0, 16, 32, 48, 64], dtype=torch.int32)
    with metadata_shadows([(qsl, host)]) as table:
        counts = (qsl[1:] - qsl[:-1] + 63) // 64      # FLA prepare_chunk_indices: cdiv(prepare_lens(cu), 64)
        assert counts.tolist() == [1, 1, 1, 1]
        assert counts.device.type == "meta"           # the kernels' tensors stay meta
        other = torch.empty(3, device="meta")
        with pytest.raises(NotImplementedError):      # anything else: as before
            other.tolist()
    assert table.answered


def test_meta_tensors_are_the_h100s():
    from vkc.modeltrace.startup_steps import meta_placements

    with meta_placements():
        m = torch.empty(2, device="cuda")
        assert m.device.type == "meta" and m.is_cuda
        h = torch.arange(3)
        assert not h.is_cuda
        assert h.pin_memory() is h and torch.empty(2, pin_memory=True).device.type == "cpu"
