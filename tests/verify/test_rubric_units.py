"""Unit tests of the rubric's scanners (C++ lexing, Triton AST rules, model header)."""
from __future__ import annotations

import ast

import pytest

from vkc.verify import pyscan
from vkc.verify.cscan import includes, strip_c
from vkc.verify.rubric import _headers_reason, model_name


def test_strip_c_blanks_comments_and_literals() -> None:
    src = ('#include <cuda_fp16.h>\n#include "k.cu"  // k<<<1, 1>>>()\n'
           '/* int main() {\n } */ const char* s = "<<<"; char c = \'"\'; int n = 1\'000;\n'
           'auto r = R"x(main( ")x"; k<<<g, b>>>(p);\n')
    out = strip_c(src)
    assert len(out) == len(src) and out.count("\n") == src.count("\n")
    assert out.count("<<<") == 1 and "main" not in out
    assert "1'000" in out
    assert includes(src) == [("<", "cuda_fp16.h"), ('"', "k.cu")]
    assert includes("// #include <cuda_bf16.h>\n/*\n#include <x.h>\n*/\n") == []


@pytest.mark.parametrize("code,hdrs,missing", [
    ("__half x;", ["cuda_fp16.h"], None),
    ("__half x;", ["cuda_bf16.h"], None),
    ("__half x;", ["torch/headeronly/util/Half.h"], None),
    ("__nv_bfloat16 x;", ["cub/cub.cuh"], None),
    ("half2 x;", [], "cuda_fp16.h"),
    ("y = __float2half_rn(x);", ["cuda_runtime.h"], "cuda_fp16.h"),
    ("const int half = n / 2;", [], None),
    ("__nv_bfloat162 v;", ["cuda_fp16.h"], "cuda_bf16.h"),
    ("__nv_fp8_e4m3 v;", ["cuda_bf16.h"], "cuda_fp8.h"),
    ("__nv_fp8_e4m3 v;", ["cuda_fp4.h"], None),
    ("__nv_fp4_e2m1 v;", ["cuda_fp8.h"], "cuda_fp4.h"),
    ("float x;", [], None),
])
def test_headers(code: str, hdrs: list[str], missing: str | None) -> None:
    reason = _headers_reason(code, hdrs)
    if missing is None:
        assert reason is None
    else:
        assert reason is not None and f"<{missing}>" in reason


@pytest.mark.parametrize("src,jitted", [
    ("import triton\n@triton.jit\ndef k(): pass\n", ["k"]),
    ("import triton\n@triton.jit(do_not_specialize=['n'])\ndef k(n): pass\n", ["k"]),
    ("from triton import jit\n@jit\ndef k(): pass\n", ["k"]),
    ("from triton.experimental import gluon\n@gluon.jit\ndef k(): pass\n", ["k"]),
    ("from vllm.triton_utils import triton\n@triton.autotune(configs=[], key=[])\n@triton.jit\ndef k(): pass\n",
     ["k"]),
    ("import triton\n@triton.autotune(configs=[], key=[])\ndef k(): pass\n", []),
    ("import numba\n@numba.jit\ndef k(): pass\n", []),
    ("from numba import jit\n@jit\ndef k(): pass\n", []),
])
def test_jit_functions(src: str, jitted: list[str]) -> None:
    assert pyscan.jit_functions(ast.parse(src)) == jitted


@pytest.mark.parametrize("src,n", [
    ("import triton\n@triton.jit\ndef k(x):\n    tl.device_print('x', x)\n", 0),
    ("def helper(grid):\n    return grid[0](1)\n", 1),
    ("k.warmup(1, grid=(1,))\n", 1),
    ("def f():\n    import torch\n    return torch.empty(3)\n", 0),
    ("import torch as t\nX = t.zeros(3)\n", 1),
    ("def main():\n    pass\n", 1),
])
def test_host_code(src: str, n: int) -> None:
    assert len(pyscan.host_code_findings(ast.parse(src))) == n


@pytest.mark.parametrize("src,n", [
    (("from __future__ import annotations\nimport math\nimport triton.language as tl\n"
      "from triton.language.extra import libdevice\nfrom typing import Optional\n"), 0),
    ("import torch\ndef f(x: torch.Tensor): pass\n", 0),
    ("from torch import Tensor\n", 1),
    ("from . import helpers\n", 1),
    ("import vllm.envs as envs\nimport numpy as np\n", 2),
])
def test_imports(src: str, n: int) -> None:
    assert len(pyscan.import_findings(ast.parse(src))) == n


@pytest.mark.parametrize("text,model", [
    ("# MODEL_NAME: Qwen/Qwen3-8B\n", "Qwen/Qwen3-8B"),
    ("// vkc\n// MODEL_NAME: openai/gpt-oss-120b\n", "openai/gpt-oss-120b"),
    ('"""\nMODEL_NAME = meta-llama/Llama-3.1-8B\n"""\n', "meta-llama/Llama-3.1-8B"),
    ("# MODEL_NAME: none\n", None),
    ("# MODEL_NAME: None\n", None),
    ("# no header\n", None),
    ("\n" * 100 + "# MODEL_NAME: far/below\n", None),
])
def test_model_name(text: str, model: str | None) -> None:
    assert model_name(text) == model
