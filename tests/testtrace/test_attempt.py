"""The test-traced attempt of the Triton invoker, on recorded captures (no vLLM run): which mode,
which source, and a loud fallback (never a traceback) when no test gives a usable launch."""
from __future__ import annotations

import ast
import dataclasses
import importlib
from typing import ClassVar

import pytest

from vkc.invoke.core.provenance import InvocationMode
from vkc.invoke.triton.testtraced.attempt import attempt, model_dims
from vkc.records import KernelEntry
from vkc.testtrace import Capture, Reach, ReachIndex, VllmTest

from .test_build import capture

attempt_mod = importlib.import_module("vkc.invoke.triton.testtraced.attempt")

KERNEL = "vllm.model_executor.layers.mamba.ops.causal_conv1d:_causal_conv1d_update_kernel"
ENTRY = KernelEntry("triton", "_causal_conv1d_update_kernel", "_causal_conv1d_update_kernel",
                    "vllm/model_executor/layers/mamba/ops/causal_conv1d.py", 637, 700,
                    module="vllm.model_executor.layers.mamba.ops.causal_conv1d", qualified=KERNEL)
TEST = VllmTest("tests/kernels/mamba/test_causal_conv1d.py", "test_causal_conv1d_update", 131)


@pytest.fixture
def llama():
    from vkc.modelcfg import load_model
    return load_model("meta-llama/Llama-3.1-8B-Instruct", offline=True)


@pytest.fixture
def fake(monkeypatch):
    """Stand-ins for the static index and the worker; ``fake.captures`` is what the worker answers."""
    class Fake:
        captures: ClassVar[list[Capture]] = []
        jobs: ClassVar[list] = []

    def reach(tree, kernels):
        return ReachIndex(None, 1, 1, (Reach(KERNEL, "vllm.x:causal_conv1d_update", TEST),))

    def run(tree, jobs):
        Fake.jobs = list(jobs)
        return Fake.captures

    monkeypatch.setenv("VKC_TEST_TRACE", "1")
    monkeypatch.setattr(attempt_mod, "build_reach_index", reach)
    monkeypatch.setattr(attempt_mod, "capture_tests", run)
    return Fake


def _run(llama, **kw):
    return attempt(None, ENTRY, KERNEL, llama, name="_causal_conv1d_update_kernel", kernels=lambda: (), **kw)


def test_disabled_adds_nothing(monkeypatch, llama):
    monkeypatch.setenv("VKC_TEST_TRACE", "0")
    assert _run(llama) == attempt_mod.Attempt(None)


def test_no_test_reaches(fake, llama, monkeypatch):
    monkeypatch.setattr(attempt_mod, "build_reach_index", lambda t, k: ReachIndex(None, 0, 0, ()))
    a = _run(llama)
    assert a.plan is None and a.fallback is None and "no test" in (a.note or "")


def test_vllm_sized_when_no_size_maps(fake, llama):
    fake.captures = [capture()]            # only itype (a dtype) mapped: the test's own sizes
    a = _run(llama, fallback_from="model-traced: x")
    assert a.plan is not None and a.provenance is not None
    assert a.provenance.mode is InvocationMode.VLLM_SIZED and not a.provenance.model_accurate
    assert a.provenance.source.startswith("tests/kernels/mamba/test_causal_conv1d.py::test_causal_conv1d_update[dim=2048")
    assert a.provenance.fallback_from == "model-traced: x"
    assert fake.jobs[0].dims == model_dims(llama) and fake.jobs[0].dims["hidden"] == 4096


def test_test_traced_when_a_size_maps(fake, llama):
    cap = capture()
    fake.captures = [dataclasses.replace(cap, mapped={"itype": "bfloat16", "dim": "4096", "hidden_size": "4096"},
                                         params=dict(cap.params, hidden_size="4096"))]
    a = _run(llama)      # seqlen=1 and width=4 are still the test's own sizes
    assert a.provenance is not None and a.provenance.mode is InvocationMode.VLLM_SIZED
    assert a.provenance.source.endswith("(from the model and workload: hidden_size=4096; "
                                        "the test's own sizes: seqlen=1, width=4)")
    fake.captures = [dataclasses.replace(cap, mapped={"itype": "bfloat16", "dim": "4096", "hidden_size": "4096",
                                                      "seqlen": "1", "width": "4"},
                                         params=dict(cap.params, hidden_size="4096"))]
    a = _run(llama)
    assert a.provenance is not None and a.provenance.mode is InvocationMode.TEST_TRACED
    assert "from the model and workload: hidden_size=4096" in a.provenance.source
    assert "the test's own" not in a.provenance.source


def test_failure_is_a_fallback_with_reason(fake, llama, capsys):
    bad = capture().to_json()
    bad["buffers"]["conv_state_indices"]["earlier"] = ["vllm.x:_prep_kernel"]
    fake.captures = [Capture(False, TEST.node_id, KERNEL, reason="fixture dist_init not provided by the harness",
                             category="fixture"), Capture.from_json(bad)]
    a = _run(llama)
    assert a.plan is None
    assert a.fallback is not None and a.fallback.startswith("test-traced: ")
    assert "dist_init" in a.fallback and "earlier launch" in a.fallback
    err = capsys.readouterr().err
    assert err.count("vkc: warning:") == 1 and "Traceback" not in err


@pytest.mark.sdist
def test_invoker_writes_a_vllm_sized_example(vllm_tree, fake, llama, monkeypatch):
    """invoke_triton takes the test-traced source before the synthesized one (real extraction)."""
    from vkc.extract import extract
    from vkc.index import build_index, lookup
    from vkc.invoke.triton import invoke_triton

    monkeypatch.setenv("VKC_MODEL_TRACE", "0")
    fake.captures = [capture()]
    ex = extract(vllm_tree, lookup(build_index(vllm_tree), KERNEL))
    inv = invoke_triton(vllm_tree, ex, llama, None, command="vkc collect _causal_conv1d_update_kernel")
    prov = inv.facts["provenance"]
    assert prov.mode is InvocationMode.VLLM_SIZED
    assert "# invocation: vllm-sized (NOT model-accurate): tests/kernels/mamba/test_causal_conv1d.py::" in inv.code
    configs = next(ast.literal_eval(n.value) for n in ast.parse(inv.code).body
                   if isinstance(n, ast.Assign) and getattr(n.targets[0], "id", "") == "CONFIGS")
    assert configs["FULL"]["buffers"]["conv_state_indices"] == ([2], "int32", ("values", [1, 2]))
    assert inv.facts["compile"]["signature"]["x_ptr"] == "*bf16"


@pytest.mark.sdist
def test_invoker_falls_back_to_synthesized(vllm_tree, fake, llama, monkeypatch, capsys):
    from vkc.extract import extract
    from vkc.index import build_index, lookup
    from vkc.invoke.triton import invoke_triton

    monkeypatch.setenv("VKC_MODEL_TRACE", "0")
    fake.captures = [Capture(False, TEST.node_id, KERNEL, reason="the test skipped itself: no GPU", category="skipped")]
    ex = extract(vllm_tree, lookup(build_index(vllm_tree), KERNEL))
    inv = invoke_triton(vllm_tree, ex, llama, None, command="vkc collect _causal_conv1d_update_kernel")
    prov = inv.facts["provenance"]
    assert prov.mode is InvocationMode.SYNTHESIZED
    assert prov.fallback_from == f"test-traced: {TEST.node_id}: the test skipped itself: no GPU"
    assert "fell back from test-traced" in inv.code
    assert "vkc: warning: _causal_conv1d_update_kernel: no vLLM test" in capsys.readouterr().err


def test_stood_in_packages_are_named_in_the_notes(monkeypatch):
    import json
    from pathlib import Path

    from vkc.invoke.triton.testtraced import attempt as attempt_mod
    from vkc.testtrace import Capture

    data = json.loads((Path(__file__).parent / "data" / "causal_conv1d_update.json").read_text())
    cap = Capture.from_json(dict(data, stubs=["flashinfer"]))
    monkeypatch.setattr(attempt_mod, "tests_enabled", lambda: True)
    monkeypatch.setattr(attempt_mod, "build_reach_index", lambda *_a, **_k: None)
    monkeypatch.setattr(attempt_mod, "jobs_for", lambda *_a, **_k: ["job"])
    monkeypatch.setattr(attempt_mod, "capture_tests", lambda *_a, **_k: [cap])
    monkeypatch.setattr(attempt_mod, "model_dims", lambda *_a, **_k: {})

    class _K:
        line = 1

    got = attempt_mod.attempt(None, _K(), cap.kernel, None, name="k", kernels=lambda: ())
    assert got.plan is not None
    assert any("stood in" in n and "flashinfer" in n for n in got.notes)
