"""gptq_gemm on the wrapper-compiled path: vLLM's host code calls cuBLAS (the reconstruct path's
cublasHgemm, q_gemm.cu gemm_half_q_half_cuda), which the program forwards to the library it loads at run
time (templates/cublas.cuh.j2).  The call is the exllama source's own (composed:gptq /
composed:gptq8 on Llama-3.1-8B with --linear-backend exllama --dtype float16, decode layer 0 qkv_proj),
recorded (data/op_calls_gptq.json); no vLLM run."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from vkc.invoke.core.provenance import InvocationMode
from vkc.invoke.cuda.wrapped import OpCall, WrapRefused, invoke_wrapped
from vkc.invoke.cuda.wrapped.check import CUBLAS_FORWARDED, unsupported, uses_cublas
from vkc.invoke.cuda.wrapped.traced import step_call
from vkc.invoke.triton.modeltraced.session import FULL_STEPS, SMALL_STEPS
from vkc.modelcfg import load_model
from vkc.modeltrace.records import ScalarArg, TensorArg, TracedEvent, trace_from_json

SOURCE = "composed:gptq{}:meta-llama/Llama-3.1-8B-Instruct@linear-backend=exllama,dtype=float16"
Q_GEMM = "csrc/quantization/gptq/q_gemm.cu"
DATA = Path(__file__).resolve().parent / "data"
CUBLAS_TEMPLATE = Path(__file__).resolve().parents[2] / "src/vkc/invoke/cuda/templates/cublas.cuh.j2"


@pytest.fixture(scope="module")
def gptq_traces():
    """data/op_calls_gptq.json (make_fixture.py gptq): both sources' decode steps, their gptq_gemm calls."""
    data = json.loads((DATA / "op_calls_gptq.json").read_text(encoding="utf-8"))
    return {m: trace_from_json(d) for m, d in data.items()}


def gptq_call(traces, bit: int, spec=None) -> OpCall:
    """The first _C::gptq_gemm call of the source's decode step (FULL: 64 tokens; SMALL: 2) with its facts."""
    trace = traces[SOURCE.format("" if bit == 4 else bit)]
    step = trace.step(spec or FULL_STEPS["decode"])
    ev = next(e for e in step.events if e.kind == "op" and e.name == "_C::gptq_gemm")
    return step_call(trace, step, ev, f"{trace.model_id} decode layer {ev.layer}")


def _wrapped(vllm_tree, extract, kernel, call):
    model = load_model(_model_of(call), offline=True)
    return invoke_wrapped(vllm_tree, extract(f"{Q_GEMM}:{kernel}"), call, mode=InvocationMode.MODEL_TRACED,
                          model=model, workload="decode", why="test", command=f"vkc collect {kernel}", name=kernel)


def _model_of(call: OpCall) -> str:
    return call.source.split(" decode ", 1)[0]


def test_forwarded_cublas_calls_pass_others_are_refused():
    assert CUBLAS_FORWARDED == {"cublasHgemm"}
    assert unsupported("cublasHgemm(h, a, b); void* p; torch_get_current_cuda_blas_handle(&p);") == []
    assert unsupported("cublasSgemm(h, 1);") == ["cuBLAS: cublasSgemm"]
    assert uses_cublas("cublasHgemm(h);") and not uses_cublas("// cublasHgemm(h)\nint x;")


@pytest.mark.parametrize(("bit", "kernel"), [(4, "reconstruct_exllama_4bit_kernel"),
                                             (8, "reconstruct_exllama_8bit_kernel")])
def test_reconstruct_path_is_wrapper_compiled_with_cublas(vllm_tree, extract, gptq_traces, bit, kernel):
    inv = _wrapped(vllm_tree, extract, kernel, gptq_call(gptq_traces, bit))
    assert inv.facts["provenance"].mode is InvocationMode.MODEL_TRACED
    assert inv.facts["wrapper_compiled"] and inv.facts["host_name"] == "gptq_gemm"
    assert f"this call launches (vkc's dispatch rule for _C::gptq_gemm): {kernel}" in inv.code
    assert "// ==== cuBLAS, loaded at run time" in inv.code
    assert 'extern "C" cublasStatus_t CUBLASWINAPI cublasHgemm(' in inv.code
    assert inv.code.count("torch_get_current_cuda_blas_handle(void** ret_handle)") == 1


def test_the_quantized_gemm_rows_launch_another_kernel(vllm_tree, extract, gptq_traces):
    """The SMALL step's 2 rows (<= MAX_Q_GEMM_ROWS 50) take gemm_half_q_half_gptq_4bit_kernel, not the reconstruct
    kernel (the reach map counts only FULL steps: this kernel is not a reach of the source)."""
    from vkc.invoke.cuda.wrapped.host import NotLaunched
    with pytest.raises(NotLaunched, match="launches gemm_half_q_half_gptq_4bit_kernel"):
        _wrapped(vllm_tree, extract, "reconstruct_exllama_4bit_kernel", gptq_call(gptq_traces, 4, SMALL_STEPS["decode"]))
    inv = _wrapped(vllm_tree, extract, "gemm_half_q_half_gptq_4bit_kernel", gptq_call(gptq_traces, 4, SMALL_STEPS["decode"]))
    assert inv.facts["provenance"].mode is InvocationMode.MODEL_TRACED


def _synthetic(root, op):
    """Every tensor bf16 [16, 128], every scalar without a default a plain value (test_wrapped's rule)."""
    from vkc.invoke.cuda.wrapped.schema import op_schema
    _text, schema = op_schema(root, op)
    args = []
    for i, a in enumerate(schema):
        if a.base == "Tensor":
            args.append((a.name, TensorArg("bfloat16", (16, 128), (128, 1), 0, 2, f"b{i}", 4096, "input:test")))
        elif a.default is None:
            args.append((a.name, ScalarArg({"int": 16, "SymInt": 16, "float": 1.0, "bool": False, "str": "auto"}[a.base])))
    return OpCall(TracedEvent(0, "op", op, None, None, tuple(args)), {}, "synthetic")


def test_programs_without_cublas_do_not_include_it(vllm_tree, extract):
    inv = invoke_wrapped(vllm_tree, extract("csrc/layernorm_kernels.cu:rms_norm_kernel"),
                         _synthetic(str(vllm_tree.root), "_C::rms_norm"), mode=InvocationMode.VLLM_SIZED, model=None,
                         workload="decode", why="test", command="c", name="rms_norm_kernel", check_launch=False)
    assert "cuBLAS" not in inv.code and "cublasHgemm" not in inv.code


def test_awq_gemm_stays_refused_for_its_own_gap(vllm_tree, extract):
    """cuBLAS support changes nothing for awq_gemm: torch::stable::sum is still the stand-in's gap."""
    with pytest.raises(WrapRefused, match=r"torch::stable::sum"):
        invoke_wrapped(vllm_tree, extract("csrc/quantization/awq/gemm_kernels.cu:gemm_forward_4bit_cuda_m16nXk32"),
                       _synthetic(str(vllm_tree.root), "_C::awq_gemm"), mode=InvocationMode.VLLM_SIZED, model=None,
                       workload="decode", why="test", command="c", name="gemm_forward_4bit_cuda_m16nXk32",
                       check_launch=False)


def _cublas_header() -> bool:
    nvcc = shutil.which("nvcc")
    if nvcc is None:
        return False
    home = Path(nvcc).resolve().parents[1]
    return any((home / d / "cublas_v2.h").is_file() for d in ("include", "targets/x86_64-linux/include"))


@pytest.mark.nvcc
@pytest.mark.skipif(not _cublas_header(), reason="the CUDA toolkit here has no cuBLAS headers (cublas_v2.h)")
def test_reconstruct_program_builds_without_linking_cublas(vllm_tree, extract, gptq_traces, tmp_path):
    from vkc.toolchain.nvcc import nvcc_flags
    kernel = "reconstruct_exllama_4bit_kernel"
    inv = _wrapped(vllm_tree, extract, kernel, gptq_call(gptq_traces, 4))
    stem = inv.facts["binary"]
    (tmp_path / f"{stem}.cu").write_text(extract(f"{Q_GEMM}:{kernel}").source_code)
    (tmp_path / f"{stem}_main.cu").write_text(inv.code)
    r = subprocess.run(["nvcc", *nvcc_flags(), "-o", str(tmp_path / stem), str(tmp_path / f"{stem}_main.cu")],
                       capture_output=True, text=True, cwd=tmp_path, timeout=1200)
    assert r.returncode == 0, r.stderr[-3000:]


def test_template_forwards_exactly_the_listed_entry_points():
    text = CUBLAS_TEMPLATE.read_text()
    assert set(re.findall(r'extern "C" cublasStatus_t CUBLASWINAPI (\w+)\(', text)) == CUBLAS_FORWARDED
