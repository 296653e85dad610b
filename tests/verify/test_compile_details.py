"""Verify internals: Triton error lines, the Blackwell-only retry, the CUDA program cache,
the compile workers' memory cap."""
from __future__ import annotations

import json
import shutil
import textwrap

import pytest

from vkc.batch.verify_many import compile_memory_cap
from vkc.verify import cuda_compile
from vkc.verify.triton_compile import compile_artifact, compile_error_text

FP4_KERNEL = textwrap.dedent('''\
    import triton
    import triton.language as tl


    @triton.jit
    def fp4_pack_kernel(x_ptr, y_ptr, BLOCK: tl.constexpr):
        offs = tl.arange(0, BLOCK)
        a = tl.load(x_ptr + 2 * offs)
        b = tl.load(x_ptr + 2 * offs + 1)
        packed = tl.inline_asm_elementwise(
            "{ .reg .b8 t; cvt.rn.satfinite.e2m1x2.f32 t, $1, $2; cvt.u32.u8 $0, t; }",
            "=r,r,r", [a, b], dtype=tl.int32, is_pure=True, pack=1)
        tl.store(y_ptr + offs, packed.to(tl.uint8))
    ''')


def _triton_artifact(source: str, entry: str, signature: dict, constexprs: dict) -> dict:
    spec = {"entry": entry, "signature": signature, "constexprs": constexprs, "attrs": {},
            "num_warps": 4, "num_stages": 1, "target": ["cuda", 90, 32]}
    inv = f"KERNEL_FILE = 'k.py'\nVKC_COMPILE = {spec!r}\n"
    return {"name": entry, "kernel": {"kernel_type": "triton", "source_code": source, "invocation_example": inv}}


def test_blackwell_only_ptx_compiles_for_sm100():
    art = _triton_artifact(FP4_KERNEL, "fp4_pack_kernel", {"x_ptr": "*fp32", "y_ptr": "*u8", "BLOCK": "constexpr"},
                           {"BLOCK": 128})
    [res] = compile_artifact("a.json", art)
    assert res.ok, res.reason
    assert res.details["target"] == "sm_100"
    assert "Blackwell-only PTX cvt.e2m1x2.f32" in res.reason


def test_frontend_error_is_position_and_message():
    src = FP4_KERNEL.replace("offs = tl.arange(0, BLOCK)", "offs = tl.arange(0, BLOCK * 3)")
    art = _triton_artifact(src, "fp4_pack_kernel", {"x_ptr": "*fp32", "y_ptr": "*u8", "BLOCK": "constexpr"},
                           {"BLOCK": 128})
    [res] = compile_artifact("a.json", art)
    assert not res.ok
    assert res.reason.startswith("CompilationError: at ") and "power of 2" in res.reason
    assert "tl.load" not in res.reason          # the quoted source excerpt is dropped


def test_compile_error_text_nested_and_plain():
    inner = ValueError("at 3:4:\n    x = 1\n    ^\nunexpected type fp32")
    outer = RuntimeError("at 10:2:\n    helper(x)\n    ^")
    outer.__cause__ = inner
    assert compile_error_text(outer) == "at 10:2: at 3:4: unexpected type fp32"
    assert compile_error_text(RuntimeError("plain failure")) == "plain failure"


def test_compile_memory_cap(monkeypatch):
    monkeypatch.setenv("VKC_COMPILE_MEM_GB", "3")
    assert compile_memory_cap(2) == 3 * 2**30
    monkeypatch.setenv("VKC_COMPILE_MEM_GB", "0")
    assert compile_memory_cap(2) is None
    monkeypatch.delenv("VKC_COMPILE_MEM_GB")
    assert compile_memory_cap(2) >= 6 * 2**30


TINY_CU = "__global__ void __launch_bounds__(64) tiny_kernel(float* x) { x[threadIdx.x] += 1.0f; }\n"
TINY_MAIN = textwrap.dedent('''\
    #include "tiny_kernel.cu"
    #include <cstdio>
    int main() { printf("built\\n"); return 0; }
    ''')


@pytest.mark.nvcc
def test_program_cache_builds_once(tmp_path, monkeypatch):
    if shutil.which("nvcc") is None:
        pytest.skip("nvcc not on PATH")
    monkeypatch.setenv("VKC_CACHE_DIR", str(tmp_path / "cache"))
    art = {"name": "tiny_kernel", "kernel": {"kernel_type": "cuda", "source_code": TINY_CU,
                                             "invocation_example": TINY_MAIN}}
    prog, err = cuda_compile.build_program("a.json", art)
    assert err is None and prog.is_file() and prog.parent.name == cuda_compile.program_key(art)
    stamp = prog.stat().st_mtime_ns
    assert cuda_compile.prepare_artifact("a.json", art) == []
    assert prog.stat().st_mtime_ns == stamp                     # cached: not rebuilt
    broken = json.loads(json.dumps(art))
    broken["kernel"]["invocation_example"] += "int broken("
    assert cuda_compile.program_key(broken) != cuda_compile.program_key(art)
    [res] = cuda_compile.prepare_artifact("b.json", broken)
    assert not res.ok and res.check == "run" and res.reason.startswith("build failed")
    assert cuda_compile._global_name(TINY_CU) == "tiny_kernel"


def test_result_files_are_not_artifacts(tmp_path):
    from vkc.batch.verify_many import expand_artifacts
    from vkc.verify import expand_paths

    for name in ("collect_results.json", "verify_results.json", "fidelity_results.json", "report.json", "a.json"):
        (tmp_path / name).write_text("{}")
    assert [p for p, _ in expand_artifacts([tmp_path])] == [f"{tmp_path}/a.json".replace("\\", "/")]
    assert expand_paths([tmp_path]) == [f"{tmp_path}/a.json".replace("\\", "/")]
