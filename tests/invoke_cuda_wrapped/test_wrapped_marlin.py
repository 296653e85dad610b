"""The wrapper-compiled path on the Marlin GEMMs' host code (csrc/quantization/marlin/marlin.cu,
csrc/moe/marlin_moe_wna16/ops.cu): the host pass's ``marlin_gemm`` (not the ``__CUDA_ARCH__ < 750``
stub), its ``vllm::ScalarTypeId`` parameter (an ``int64_t`` through ``using`` declarations), and the
refusal that is left: vLLM compiles the Marlin instantiations its generated selector names in other
(generated) translation units."""
from __future__ import annotations

import pytest

from vkc.extract.cuda import extract_cuda
from vkc.index.build import scan_cuda_cached
from vkc.invoke.cuda.wrapped import WrapRefused, host_code
from vkc.invoke.cuda.wrapped.check import param_problem, type_aliases

pytestmark = pytest.mark.sdist

_CASES = [("csrc/quantization/marlin/marlin_template.h:Marlin@217", "csrc/quantization/marlin/marlin.cu",
           "marlin_gemm", 16),
          ("csrc/moe/marlin_moe_wna16/marlin_template.h:Marlin@225", "csrc/moe/marlin_moe_wna16/ops.cu",
           "moe_wna16_marlin_gemm", 25)]


def test_type_aliases_resolve_a_scalar_parameter():
    al = type_aliases("class ScalarType { using Id = int64_t; };\nusing ScalarTypeId = ScalarType::Id;")
    assert param_problem("vllm::ScalarTypeId const&", "int", al) is None
    assert "is not one the program can construct" in (param_problem("vllm::ScalarTypeId const&", "int") or "")
    # one name aliased to two types: not resolved
    two = type_aliases("struct A { using Id = int64_t; }; struct B { using Id = Foo; }; using T = A::Id;")
    assert "Id" not in two and param_problem("T", "int", two) is not None


@pytest.mark.parametrize(("q", "rel", "fn", "nargs"), _CASES, ids=["dense", "moe"])
def test_marlin_host_code_refusal_names_the_generated_instantiations(vllm_tree, q, rel, fn, nargs):
    k = next(k for k in scan_cuda_cached(vllm_tree) if k.qualified == q)
    ex = extract_cuda(vllm_tree, k)
    with pytest.raises(WrapRefused) as got:
        host_code(str(vllm_tree.root), rel, fn, ex.source_code, nargs=nargs)
    msg = got.value.message
    assert "defines 2 host functions" not in msg          # the host pass compiles one marlin_gemm
    assert f"{fn} calls Marlin, which vLLM defines in another translation unit" in msg
    assert "instantiates it 672 times in 14 generated files" in msg and "host code names 672 instantiations" in msg


def test_marlin_host_pass_definition_and_parameters(vllm_tree, monkeypatch):
    import vkc.invoke.cuda.wrapped.host as host_mod

    monkeypatch.setattr(host_mod, "_defined_elsewhere", lambda unit, kept: [])   # past the refusal above
    q, rel, fn, nargs = _CASES[0]
    k = next(k for k in scan_cuda_cached(vllm_tree) if k.qualified == q)
    ex = extract_cuda(vllm_tree, k)
    h = host_code(str(vllm_tree.root), rel, fn, ex.source_code, nargs=nargs)
    assert h.line == 422                                   # not the stub at marlin.cu:52
    al = type_aliases(h.text + "\n" + ex.source_code)
    assert dict(h.params)["vllm::ScalarTypeId const&"] == "b_type_id"
    assert param_problem("vllm::ScalarTypeId const&", "int", al) is None
    assert "kernel = Marlin<" in h.text                    # the generated selector, inlined in get_marlin_kernel
