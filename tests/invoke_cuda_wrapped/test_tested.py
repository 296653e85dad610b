"""The test-traced source of the wrapper-compiled path: an op call recorded inside a vLLM test
(``data/tested_*.json``, recorded by ``record_tested.py``) becomes the example of a CUDA kernel no
recipe covers.  No vLLM run: ``op_calls_for`` answers the recorded captures."""
from __future__ import annotations

import dataclasses
import json
import subprocess
from pathlib import Path

import pytest

from vkc.invoke.core.provenance import InvocationMode
from vkc.invoke.cuda import invoke_cuda
from vkc.invoke.cuda.wrapped.tested import op_call, wrapped_from_captures
from vkc.modelcfg import load_model
from vkc.testtrace import Capture, op_call_of

DATA = Path(__file__).resolve().parent / "data"
LLAMA = "meta-llama/Llama-3.1-8B-Instruct"
CONCAT = "csrc/concat_mla_q.cuh:ConcatMLAQKernel"
EMBED = "csrc/vocab_parallel_embedding_kernels.cu:vocab_parallel_embedding_kernel"


def _capture(name: str):
    return op_call_of(Capture.from_json(json.loads((DATA / f"tested_{name}.json").read_text())))


def _from(vllm_tree, extract, qualified, *caps):
    name = qualified.rsplit(":", 1)[-1]
    return wrapped_from_captures(tuple(caps), vllm_tree, extract(qualified), load_model(LLAMA, offline=True),
                                 workload="decode", why="test", command=f"vkc collect {name}", name=name)


def _mode_line(code: str) -> str:
    return next(ln for ln in code.splitlines() if ln.startswith("// invocation:"))


def test_a_call_at_the_tests_own_sizes_is_vllm_sized(vllm_tree, extract):
    """num_heads came from the model, nope_dim/rope_dim/num_tokens are the test's: vllm-sized, said so."""
    got = _from(vllm_tree, extract, CONCAT, _capture("concat_mla_q"))
    assert got.invocation is not None, got
    line = _mode_line(got.invocation.code)
    assert line.startswith("// invocation: vllm-sized (NOT model-accurate): tests/kernels/test_concat_mla_q.py::")
    assert "the test's own sizes: nope_dim=512, num_tokens=1, rope_dim=64" in line
    assert got.invocation.facts["provenance"].mode is InvocationMode.VLLM_SIZED


def test_a_mapped_test_call_is_test_traced(vllm_tree, extract):
    raw = Capture.from_json(json.loads((DATA / "tested_concat_mla_q.json").read_text()))
    raw = dataclasses.replace(raw, mapped=dict(raw.mapped, nope_dim="512", rope_dim="64", num_tokens="64"),
                              params=dict(raw.params, num_tokens="64"))   # every size from the model and workload
    got = _from(vllm_tree, extract, CONCAT, op_call_of(raw))
    assert got.invocation is not None, got
    line = _mode_line(got.invocation.code)
    assert line.startswith("// invocation: test-traced (model-accurate): tests/kernels/test_concat_mla_q.py::")
    assert "from the model and workload: num_heads=32" in line and "compiled against vkc's Tensor stand-in" in line
    assert got.invocation.facts["provenance"].mode is InvocationMode.TEST_TRACED
    assert got.invocation.facts["op"] == "_C_cache_ops::concat_mla_q"


def test_index_contents_are_the_tests_own(vllm_tree, extract):
    """The embedding's token ids are the ones the test made (recorded at the call), inside the vocabulary."""
    cap = _capture("vocab_parallel_embedding")
    ids = next(t for n, t in cap.event.tensors() if t.dtype.startswith("int"))
    assert ids.base in cap.contents
    values = cap.contents[ids.base].values()
    assert values and all(0 <= v < 128256 for v in values)
    got = _from(vllm_tree, extract, EMBED, cap)
    assert got.invocation is not None, got
    assert f"known contents of {ids.base}" in got.invocation.code


def test_a_call_of_another_op_is_refused_with_its_reason(vllm_tree, extract):
    got = _from(vllm_tree, extract, EMBED, _capture("concat_mla_q"))
    assert got.invocation is None
    assert got.fallback and got.fallback.startswith("test-traced: no recorded op call reproducible")
    assert "concat_mla_q" in got.fallback and "does not reach" in got.fallback


def test_no_capture_is_a_note_not_a_fallback(vllm_tree, extract):
    got = _from(vllm_tree, extract, EMBED)
    assert got.invocation is None and got.fallback is None and got.note


def test_op_call_keeps_the_dispatch_verdict():
    cap = _capture("concat_mla_q")
    assert op_call(cap).launches == ((cap.kernel,) if cap.launches else None)
    assert op_call(cap).contents == dict(cap.contents)


@pytest.fixture
def tests_on(monkeypatch):
    monkeypatch.setenv("VKC_TEST_TRACE", "1")
    monkeypatch.setenv("VKC_MODEL_TRACE", "0")


def _invoke(vllm_tree, extract, monkeypatch, qualified, caps):
    import vkc.testtrace as tt
    monkeypatch.setattr(tt, "op_calls_for", lambda tree, kernel, dims, **kw: caps)
    name = qualified.rsplit(":", 1)[-1]
    return invoke_cuda(vllm_tree, extract(qualified), load_model(LLAMA, offline=True), "decode",
                       command=f"vkc collect {name}", name=name)


def test_invoke_cuda_takes_the_test_call(vllm_tree, extract, monkeypatch, tests_on, capsys):
    inv = _invoke(vllm_tree, extract, monkeypatch, EMBED, (_capture("vocab_parallel_embedding"),))
    assert _mode_line(inv.code).startswith("// invocation: vllm-sized (NOT model-accurate)")   # hidden, tp_size its own
    assert capsys.readouterr().err == ""


def test_an_unusable_test_call_warns_once_and_says_so(vllm_tree, extract, monkeypatch, tests_on, capsys):
    inv = _invoke(vllm_tree, extract, monkeypatch, EMBED, (_capture("concat_mla_q"),))
    line = _mode_line(inv.code)
    assert line.startswith("// invocation: synthesized (NOT model-accurate)")
    assert "fell back from test-traced: no recorded op call reproducible" in line
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith("vkc: warning: vocab_parallel_embedding_kernel: no vLLM test gave")


def test_off_leaves_the_synthesized_example_byte_identical(vllm_tree, extract, monkeypatch, capsys):
    monkeypatch.setenv("VKC_MODEL_TRACE", "0")
    monkeypatch.setenv("VKC_TEST_TRACE", "0")
    off = _invoke(vllm_tree, extract, monkeypatch, EMBED, ())
    monkeypatch.setenv("VKC_TEST_TRACE", "1")
    none = _invoke(vllm_tree, extract, monkeypatch, EMBED, ())
    assert off.code == none.code
    assert "synthesized" in _mode_line(off.code)


@pytest.mark.nvcc
@pytest.mark.parametrize("name,qualified", [("concat_mla_q", CONCAT), ("vocab_parallel_embedding", EMBED)])
def test_program_builds(vllm_tree, extract, name, qualified, tmp_path):
    from vkc.naming import safe_stem
    from vkc.toolchain.nvcc import nvcc_flags
    inv = _from(vllm_tree, extract, qualified, _capture(name)).invocation
    assert inv is not None
    stem = safe_stem(qualified.rsplit(":", 1)[-1])
    (tmp_path / f"{stem}.cu").write_text(extract(qualified).source_code)
    (tmp_path / f"{stem}_main.cu").write_text(inv.code)
    r = subprocess.run(["nvcc", *nvcc_flags(), "-o", str(tmp_path / stem), str(tmp_path / f"{stem}_main.cu")],
                       capture_output=True, text=True, cwd=tmp_path, timeout=1200)
    assert r.returncode == 0, r.stderr[-3000:]
