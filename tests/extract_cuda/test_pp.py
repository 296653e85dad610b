"""Build-config conditional evaluation (USE_ROCM/HIP/ENABLE_FP8 resolved, arch kept)."""
from __future__ import annotations

from pathlib import Path

import pytest

from vkc.cxx import pp

DATA = Path(__file__).parents[1] / "data" / "extract_cuda" / "pp"
CASES = sorted(p for p in DATA.glob("*.cu") if not p.name.endswith(".expected.cu"))


@pytest.mark.parametrize("case", CASES, ids=lambda p: p.stem)
def test_golden(case: Path):
    out, live = pp.evaluate_conditionals(case.read_text())
    assert len(out.split("\n")) == len(case.read_text().split("\n")) == len(live)
    assert out == case.with_suffix(".expected.cu").read_text()


@pytest.mark.parametrize("expr,value", [
    ("defined(USE_ROCM)", 0), ("!defined(USE_ROCM)", 1), ("defined ENABLE_FP8", 1),
    ("__CUDA_ARCH__ >= 800", None), ("defined(USE_ROCM) && __CUDA_ARCH__ >= 800", 0),
    ("!defined(USE_ROCM) || __CUDA_ARCH__ >= 800", 1), ("defined(__gfx942__)", 0),
    ("(1 + 2) * 3 == 9", 1), ("SOME_FN(3) > 1", None), ("!defined(USE_ROCM) && FOO", None),
])
def test_evaluate(expr, value):
    assert pp.evaluate(expr, pp.CUDA) == value


def test_rocm_view_flips():
    src = "#ifdef USE_ROCM\nint r;\n#else\nint c;\n#endif\n"
    assert "int r;" in pp.evaluate_conditionals(src, pp.ROCM)[0]
    assert "int r;" not in pp.evaluate_conditionals(src, pp.CUDA)[0]


def test_comment_lines_are_not_directives():
    src = "/*\n#ifdef USE_ROCM\n*/\nint x;\n"
    assert pp.evaluate_conditionals(src)[0] == src
