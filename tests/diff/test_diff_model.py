"""``vkc diff --model M [--workload W]`` on the fixture trees (tests/diff/data/a -> b), with model
traces made here (the real worker is exercised by tests/modeltrace and the slow test below).

The traces: scale_kernel moves with the same launch (source moved); add_kernel's launch changes
(grid, a constexpr, an argument's shape: its source changed too); relu_kernel leaves the step and
negate_kernel joins it (as a changed backend choice would); mul_kernel moves and changes source with
the same launch; ``_C::rms_norm`` is the same op in both; the old tree's checklist is UNVERIFIED.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

import vkc.modeltrace
from vkc.cli import main
from vkc.diff.launches import step_kernels
from vkc.diff.model import trace_options
from vkc.errors import InvocationError
from vkc.modeltrace.records import ModelTrace, ScalarArg, StepTrace, TensorArg, TracedEvent

DATA = Path(__file__).parent / "data"
A, B = DATA / "a", DATA / "b"
MODEL = "openai/gpt-oss-120b"
UNVERIFIED = "UNVERIFIED vLLM tree (local): the model-trace start-up checklist v9 does not know the source of 1 step(s)"


def _t(*shape: int) -> TensorArg:
    stride = tuple(int(x) for x in reversed([1] + [shape[-1 - i] for i in range(len(shape) - 1)]))
    return TensorArg("bfloat16", tuple(shape), stride, 0, 2, "s1", 2 * max(1, len(shape)), "input:0")


def _ev(i: int, name: str, *, layer: int | None = 0, grid=(64,), block: int = 128, x=(64, 4096),
        kind: str = "triton") -> TracedEvent:
    if kind == "op":
        return TracedEvent(i, "op", name, layer, "norm", (("input", _t(*x)), ("eps", ScalarArg(1e-6))))
    return TracedEvent(i, kind, name, layer, "mlp", (("x", _t(*x)), ("n", ScalarArg(x[0] * x[1]))),
                       grid=grid, constexprs={"BLOCK": block}, num_warps=4, num_stages=2)


def _trace(old: bool) -> ModelTrace:
    opts, _ = trace_options(None, mla=False)
    if old:
        evs = [_ev(0, "vllm.ops.scale:scale_kernel"), _ev(1, "vllm.ops.add:add_kernel", block=256),
               _ev(2, "vllm.ops.old_relu:relu_kernel"), _ev(3, "_C::rms_norm", kind="op"),
               _ev(4, "vllm.ops.mul:mul_kernel"), _ev(5, "vllm.ops.add:add_kernel", layer=1, block=256)]
    else:
        evs = [_ev(0, "vllm.layers.scale:scale_kernel"),
               _ev(1, "vllm.ops.add:add_kernel", grid=(32,), block=512, x=(64, 2880)),
               _ev(2, "vllm.ops.negate:negate_kernel"), _ev(3, "_C::rms_norm", kind="op"),
               _ev(4, "vllm.layers.mul:mul_kernel"), _ev(5, "vllm.ops.add:add_kernel", layer=1, grid=(32,),
                                                         block=512, x=(64, 2880))]
    steps = tuple(StepTrace(s, 64, tuple(evs), 0.1) for s in opts.steps)
    return ModelTrace(model_id=MODEL, vllm_version="local", tree_sha256=None, options=opts, full_layers=36,
                      traced_layers=2, layer_types=("sliding", "full") * 18, layer_weights={0: 18.0, 1: 18.0},
                      steps=steps, backends=("Using TRITON_ATTN backend.",) if old else ("Using FLASH_ATTN backend.",),
                      importable={"flashinfer": False}, warnings=(UNVERIFIED,) if old else (),
                      fingerprint_status="unknown" if old else "known", fingerprints={}, vllm_config={},
                      versions={}, timings={"total_s": 1.0 if old else 2.0})


@pytest.fixture
def traced(monkeypatch, tmp_path) -> list[str]:
    monkeypatch.setenv("VKC_CACHE_DIR", str(tmp_path / "vkc-cache"))
    monkeypatch.setenv("VKC_OFFLINE", "1")
    monkeypatch.delenv("VKC_DEBUG", raising=False)
    calls: list[str] = []

    def fake(tree, cfg, opts, raw_config=None, use_cache=True):
        assert cfg.model_id == MODEL and opts == trace_options(None, mla=False)[0]
        calls.append(Path(tree.root).name)
        return _trace(Path(tree.root) == A.resolve())
    monkeypatch.setattr(vkc.modeltrace, "trace_model", fake)
    return calls


def _diff(capsys, *extra: str) -> tuple[int, str, str]:
    rc = main(["diff", "--from-path", str(A), "--to-path", str(B), "--model", MODEL, "--offline", *extra])
    out, err = capsys.readouterr()
    return rc, out, err


def test_step_kernels_weights_layers_and_keeps_distinct_launches():
    _opts, specs = trace_options(None, mla=False)
    ks = step_kernels(_trace(True), specs[0])
    assert ks["vllm.ops.add:add_kernel"]["calls"] == 36.0 and len(ks["vllm.ops.add:add_kernel"]["launches"]) == 1
    assert ks["_C::rms_norm"]["kind"] == "cuda-op" and ks["vllm.ops.scale:scale_kernel"]["calls"] == 18.0


def test_model_summary(traced, capsys, tmp_path):
    rc, out, err = _diff(capsys, "--out", str(tmp_path / "o"))
    assert rc == 0 and traced == ["a", "b"]
    model = out[out.index("model openai/gpt-oss-120b"):].splitlines()
    assert model[1].startswith("  WARNING: local tree ") and "UNVERIFIED" in model[1]
    assert model[2] == "  backends changed: Using TRITON_ATTN backend.  ->  Using FLASH_ATTN backend."
    decode = model[model.index(next(ln for ln in model if ln.startswith("  decode-b64-ctx4096:"))):]
    assert decode[0] == ("  decode-b64-ctx4096: kernels the step runs: 1 added, 1 removed, 1 with changed "
                         "launches, 3 unchanged; 2 of the new step's kernels have changed source")
    assert decode[1] == ("    + vllm.ops.negate:negate_kernel [triton, source added] 18 calls/step: "
                         "only the new release's step runs it")
    assert decode[2] == ("    - vllm.ops.old_relu:relu_kernel [triton, source removed] 18 calls/step: "
                         "only the old release's step ran it")
    assert decode[3] == ("    ~ vllm.ops.add:add_kernel [triton, source changed]: arg n 262144 -> 184320; "
                         "arg x bfloat16[64, 4096] -> bfloat16[64, 2880]; constexpr BLOCK 256 -> 512; "
                         "grid (64,) -> (32,)")
    assert decode[4] == "    = vllm.layers.mul:mul_kernel (was vllm.ops.mul:mul_kernel) [triton, source changed]"
    assert decode[5] == "    = vllm.layers.scale:scale_kernel (was vllm.ops.scale:scale_kernel) [triton, source moved]"
    assert "_C::rms_norm" not in out          # unchanged op, not a tree kernel with a source class: not listed
    assert "vkc: warning: local tree " in err and "UNVERIFIED" in err
    doc = json.loads((tmp_path / "o" / "diff.json").read_text())
    assert doc["model"]["backends_changed"] and doc["model"]["checklist"] == {"from": "unknown", "to": "known"}
    assert [s["step"] for s in doc["model"]["steps"]] == ["decode-b64-ctx4096", "prefill-b4-p2048"]
    assert doc["model"]["steps"][0]["counts"] == {"added": 1, "removed": 1, "changed": 1, "unchanged": 3}
    md = (tmp_path / "o" / "diff.md").read_text()
    assert "## Model openai/gpt-oss-120b" in md and "**UNVERIFIED**" in md and "`~ vllm.ops.add:add_kernel" in md
    html = (tmp_path / "o" / "diff.html").read_text()
    assert '<h2 id="model">' in html and "<b>changed</b>" in html and "grid (64,) -&gt; (32,)" in html


def test_workload_and_byte_identical(traced, capsys, tmp_path):
    rc, out, _ = _diff(capsys, "--workload", "decode", "--json")
    assert rc == 0 and [s["step"] for s in json.loads(out)["model"]["steps"]] == ["decode-b64-ctx4096"]
    for o in ("o1", "o2"):
        assert _diff(capsys, "--out", str(tmp_path / o))[0] == 0
    for name in ("diff.json", "diff.md", "diff.html"):
        assert (tmp_path / "o1" / name).read_bytes() == (tmp_path / "o2" / name).read_bytes()


def test_without_model_the_json_has_no_model_key(traced, capsys):
    rc = main(["diff", "--from-path", str(A), "--to-path", str(B), "--json"])
    assert rc == 0 and "model" not in json.loads(capsys.readouterr().out) and traced == []


def test_a_failed_trace_is_exit_9_naming_the_release(traced, capsys, monkeypatch):
    def fail(tree, cfg, opts, raw_config=None, use_cache=True):
        raise InvocationError("model trace failed: ModuleNotFoundError: No module named 'vllm.v1.core.x' "
                              '(at "/src/vkc/modeltrace/startup.py", line 297)')
    monkeypatch.setattr(vkc.modeltrace, "trace_model", fail)
    rc, out, err = _diff(capsys)
    assert rc == 9 and out == "" and "Traceback" not in err
    last = err.splitlines()[-1]
    assert last.startswith("vkc: error: vkc diff --model: the model trace of openai/gpt-oss-120b on local tree ")
    assert "No module named 'vllm.v1.core.x'" in last and "without --model" in last
    assert "imports a module local tree " in last


@pytest.mark.parametrize("argv, words", [
    (["--workload", "decode"], "needs --model"),
    (["--model", MODEL, "--workload", "serve"], "unknown workload"),
    (["--model", " "], "--model is empty"),
])
def test_model_usage_errors(traced, capsys, argv, words):
    rc = main(["diff", "--from-path", str(A), "--to-path", str(B), *argv])
    out, err = capsys.readouterr()
    assert rc == 2 and out == "" and err.count("\n") == 1 and words in err and traced == []


@pytest.mark.slow
@pytest.mark.skipif(not os.environ.get("VKC_DIFF_MODEL_REAL"), reason="set VKC_DIFF_MODEL_REAL=1: traces gpt-oss on "
                    "the real 0.33.0 tree twice (minutes)")
def test_real_trace_same_release_is_all_unchanged(capsys, vllm_tree):
    rc = main(["diff", "--from", "0.33.0", "--to", "0.33.0", "--model", MODEL, "--workload", "decode", "--offline",
               "--json"])
    doc = json.loads(capsys.readouterr().out)
    assert rc == 0 and doc["model"]["steps"][0]["counts"]["changed"] == 0
