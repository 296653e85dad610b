"""vkc.reference: the mapping table against the real tree, the static extraction, the refusals."""
from __future__ import annotations

import ast
import dataclasses
from pathlib import Path

import pytest

from vkc.reference import LaunchFacts, find_reference
from vkc.reference import find as find_mod
from vkc.reference.extract import Refused, extract_reference
from vkc.reference.table import REFUSED, SPECS
from vkc.reference.tolerance import stated, vllm_defaults

pytestmark = pytest.mark.sdist
UNIFIED = "vllm.v1.attention.ops.triton_unified_attention:kernel_unified_attention"


def _imports(code: str) -> list[str]:
    return [ast.unparse(n) for n in ast.walk(ast.parse(code)) if isinstance(n, (ast.Import, ast.ImportFrom))]


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.kernel.split(":")[-1])
def test_every_row_resolves_self_contained(vllm_tree, spec):
    found = find_reference(vllm_tree, spec.kernel, mode="recipe")
    assert found.reference is not None, found.reason
    ref = found.reference
    assert not _imports(ref.code)                      # no import at all in the pieces (vllm or other)
    assert "vllm" not in " ".join(ref.imports)
    for line in ref.imports:                          # the import lines it needs are plain libraries
        assert line.split()[1].split(".")[0] in ("torch", "math", "numpy", "einops", "typing")
    ast.parse("\n".join(ref.imports) + "\n" + ref.code)
    for piece in ref.pieces:                          # every extracted piece says where it is from
        name, where = piece.split(" ")
        assert f"# from {where}\n" in ref.code and name in ref.code
    assert ref.pieces[-1].startswith(ref.entry + " ")
    assert found.reason == f"{spec.source} {ref.origin}"


def test_sources_and_tolerances(vllm_tree):
    kinds = {s.source for s in SPECS}
    assert kinds == {"ir-native", "forward_native", "test-reference"}
    tol = vllm_defaults(vllm_tree.root, None)
    assert tol is not None and tol.for_dtype("bfloat16") == (1e-3, 1.6e-2) and tol.for_dtype("int8") == (1.0, 0.0)
    assert tol.for_dtype("float8_e4m3fn") == (0.1, 0.1)
    # an IR op's own override_tolerance applies on top of the defaults
    rms = vllm_defaults(vllm_tree.root, "rms_norm")
    assert rms is not None and rms.for_dtype("float16") == (1e-2, 2e-3) and "override_tolerance" in rms.origin
    unified = find_reference(vllm_tree, UNIFIED, mode="model-traced").reference
    assert unified is not None and unified.tolerance.for_dtype("bfloat16") == (1.5e-2, 1e-2)
    assert stated(vllm_tree.root, "tests/kernels/attention/test_triton_unified_attention.py:787", 1.5e-2, 1e-2)
    assert not stated(vllm_tree.root, "tests/kernels/attention/test_triton_unified_attention.py:787", 1e-3, 1e-2)


def test_refusals_give_none_with_a_reason(vllm_tree):
    for kernel, why in REFUSED.items():
        found = find_reference(vllm_tree, kernel, mode="model-traced")
        assert found.reference is None and found.reason == why
    found = find_reference(vllm_tree, "vllm.nowhere:kernel", mode="recipe")
    assert found.reference is None and "no reference mapping" in found.reason
    # a synthesized example's buffers are vkc's conventions: the mapping is not known
    found = find_reference(vllm_tree, SPECS[1].kernel, mode="synthesized")
    assert found.reference is None and "synthesized" in found.reason
    assert found.to_json() == {"reference_source": None, "reference_refused": found.reason}


def _unified_launch(**over) -> LaunchFacts:
    values = {k: v for k, v in find_mod.spec_for(UNIFIED).requires}
    values.update(SLIDING_WINDOW=0, USE_SOFTCAP=False, num_seqs=2, scale=0.1, softcap=0)
    values.update(over)
    tensors = frozenset({"query_ptr", "key_cache_ptr", "value_cache_ptr", "query_start_len_ptr", "seq_lens_ptr",
                         "block_tables_ptr", "output_ptr"})
    return LaunchFacts("SMALL", values, tensors, tensors | {"num_seqs", "scale", "softcap"})


def test_launch_values_outside_the_mapping_refuse(vllm_tree):
    ok = find_reference(vllm_tree, UNIFIED, mode="model-traced", configs=[_unified_launch()])
    assert ok.reference is not None, ok.reason
    # the 3D (split-KV) path writes partials, not the output the reference computes
    found = find_reference(vllm_tree, UNIFIED, mode="model-traced", configs=[_unified_launch(IS_3D=True)])
    assert found.reference is None and "IS_3D=True" in found.reason
    launch = dataclasses.replace(_unified_launch(), tensors=frozenset({"query_ptr"}))
    found = find_reference(vllm_tree, UNIFIED, mode="model-traced", configs=[launch])
    assert found.reference is None and "not a tensor" in found.reason


def test_a_tolerance_the_tree_does_not_state_refuses(vllm_tree, monkeypatch):
    spec = find_mod.spec_for(UNIFIED)
    moved = dataclasses.replace(spec, tolerance_at=("tests/kernels/attention/test_triton_unified_attention.py:788",))
    monkeypatch.setattr(find_mod, "SPECS", (moved,))
    found = find_reference(vllm_tree, UNIFIED, mode="model-traced")
    assert found.reference is None and "not stated" in found.reason


def _tree(tmp_path: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    return tmp_path


def test_extraction_follows_helpers_and_stubs_what_it_cannot_extract(tmp_path):
    root = _tree(tmp_path, {
        "vllm/__init__.py": "",
        "vllm/util.py": "import math\nSCALE = 2.0\ndef helper(x):\n    return x * SCALE + math.pi\n",
        "vllm/platforms.py": "class Platform:\n    pass\ncurrent_platform = Platform()\n",
        "tests/__init__.py": "",
        "tests/ref.py": ("import torch\nfrom vllm.util import helper\nfrom vllm.platforms import current_platform\n"
                         "DEVICE = current_platform.device_type\n"
                         "@torch.inference_mode()\ndef ref(x: 'vllm.Foo', fp8: bool = False) -> torch.Tensor:\n"
                         "    if fp8:\n        return torch.zeros(1, device=DEVICE.type)\n    return helper(x)\n"),
    })
    ex = extract_reference(root, "tests/ref.py", "ref", {})
    assert ex.imports == ("import math", "import torch")
    assert ex.pieces == ("SCALE vllm/util.py:2", "helper vllm/util.py:3", "ref tests/ref.py:6")
    assert "# from vllm/util.py:3\ndef helper(x):" in ex.code and "# from tests/ref.py:6\ndef ref(x, fp8=False):" in ex.code
    assert any(s.startswith("DEVICE ") for s in ex.stubs)
    import math

    import torch
    ns: dict = {"torch": torch, "math": math}
    exec(compile(ex.code, "ref", "exec"), ns)  # noqa: S102
    assert float(ns["ref"](torch.ones(1))) == pytest.approx(2.0 + math.pi)
    with pytest.raises(NotImplementedError, match="not extracted"):
        ns["ref"](torch.ones(1), fp8=True)
    bound = extract_reference(root, "tests/ref.py", "ref", {"DEVICE": "'cpu'"})
    assert "DEVICE = 'cpu'  # bound by vkc's mapping" in bound.code and not bound.stubs


def test_extraction_refuses_what_is_not_plain(tmp_path):
    root = _tree(tmp_path, {
        "tests/a.py": "import scipy\ndef ref(x):\n    return scipy.special.erf(x)\n",
        "tests/b.py": "def ref(x):\n    return undefined_name(x)\n",
        "tests/c.py": "import triton\n@triton.jit\ndef ref(x):\n    pass\n",
    })
    for rel, why in (("tests/a.py", "not a plain library"), ("tests/b.py", "does not resolve"),
                     ("tests/c.py", "jit kernel")):
        with pytest.raises(Refused, match=why):
            extract_reference(root, rel, "ref", {})
