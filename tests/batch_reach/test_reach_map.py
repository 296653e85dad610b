"""The reach map (:mod:`vkc.batch.reach`) and its use by ``collect --all`` without ``--model``.

Recorded Llama trace (tests/data/modeltrace), edited into two "models" so the order rules show:
model A (Llama) launches unified attention only in prefill; model B (Qwen3-30B-A3B) launches it in
decode and also fused_moe_kernel.  No vLLM run: ``model_trace_for`` is monkeypatched.
"""
from __future__ import annotations

import argparse
import dataclasses
import importlib
import io
import json
from pathlib import Path

import pytest

from vkc.batch import reach as reach_mod
from vkc.batch.cli_hooks import check_collect_args
from vkc.batch.plan import plan_jobs
from vkc.errors import InvocationError, UsageError
from vkc.invoke.triton.modeltraced import session
from vkc.modelcfg import DEFAULT_MODEL, DEFAULT_MODELS, bundled_ids
from vkc.modeltrace.records import TracedEvent, trace_from_json

LLAMA = Path(__file__).resolve().parents[1] / "data" / "modeltrace" / "llama-3.1-8b-instruct.trace.json"
A, B = "meta-llama/Llama-3.1-8B-Instruct", "Qwen/Qwen3-30B-A3B"
ATTN = "vllm.v1.attention.ops.triton_unified_attention:kernel_unified_attention"
CACHE = "vllm.v1.attention.ops.triton_reshape_and_cache_flash:reshape_and_cache_kernel_flash"
MOE = "vllm.model_executor.layers.fused_moe.fused_moe:fused_moe_kernel"
RMS = "csrc/layernorm_kernels.cu:rms_norm_kernel"
ca = importlib.import_module("vkc.batch.collect_all")   # the module (vkc.batch.collect_all is also a function)


@pytest.fixture(scope="module")
def index(vllm_tree):
    from vkc.index import build_index
    return build_index(vllm_tree)


def _traces() -> dict:
    base = trace_from_json(json.loads(LLAMA.read_text()))
    dec, pre = base.steps
    a_dec = dataclasses.replace(dec, events=tuple(e for e in dec.events if e.name != ATTN))
    a = dataclasses.replace(base, steps=(a_dec, pre))
    moe = TracedEvent(index=10_000, kind="triton", name=MOE, layer=0, module="experts", args=())
    b = dataclasses.replace(base, model_id=B, steps=(dataclasses.replace(dec, events=(*dec.events, moe)), pre))
    return {A: a, B: b}


@pytest.fixture
def traced(monkeypatch, tmp_path):
    """Two fake model traces; the reach cache in tmp_path; ``calls`` counts trace requests."""
    traces, calls = _traces(), []

    def fake(tree, cfg):
        calls.append(cfg.model_id)
        return traces[cfg.model_id]
    monkeypatch.setattr(session, "model_trace_for", fake)
    monkeypatch.setattr(reach_mod, "_path", lambda key: tmp_path / "reach" / f"{key}.json")
    return calls


def test_order_is_the_default_list_then_the_bundled_models():
    order = reach_mod.reach_order()
    assert order[0] == DEFAULT_MODEL and order[:len(DEFAULT_MODELS)] == DEFAULT_MODELS
    assert sorted(order) == sorted(bundled_ids()) and len(order) == len(set(order)) == 15
    rest = order[len(DEFAULT_MODELS):]
    assert list(rest) == [m for m in bundled_ids() if m not in DEFAULT_MODELS]


def test_first_model_wins_then_decode_before_prefill(index, traced):
    rm = reach_mod.reach_map(index, models=[A, B], warn=io.StringIO())
    assert rm.order == ((A, "decode"), (A, "prefill"), (B, "decode"), (B, "prefill"))
    assert rm.get(CACHE) == reach_mod.Reach(A, "decode", "decode-b64-ctx4096")
    assert rm.get(ATTN) == reach_mod.Reach(A, "prefill", "prefill-b4-p2048")   # A's prefill beats B's decode
    assert rm.get(MOE) == reach_mod.Reach(B, "decode", "decode-b64-ctx4096")
    assert rm.get(RMS) is not None and rm.get(RMS).model == A                 # a custom op -> its CUDA kernel
    assert rm.get("vllm.ops.nowhere:k") is None
    assert not rm.failed and not rm.cached
    # exactly the kernels --all-used's rule finds in the FULL steps
    from vkc.batch.used import op_map, step_kernels
    known = {k.qualified: k for k in index.kernels if k.role == "entry"}
    want = set().union(*(step_kernels(s, known, op_map(index), tree=index.tree) for t in _traces().values() for s in t.steps))
    assert set(rm.kernels) == want


def test_warm_map_is_read_from_the_cache_without_tracing(index, traced):
    cold = reach_mod.reach_map(index, models=[A, B], warn=io.StringIO())
    assert set(traced) == {A, B}
    traced.clear()
    warm = reach_mod.reach_map(index, models=[A, B], warn=io.StringIO())
    assert traced == [] and warm.cached and warm.kernels == cold.kernels and warm.key == cold.key
    # another order is another key: traced again
    other = reach_mod.reach_map(index, models=[B, A], warn=io.StringIO())
    assert not other.cached and other.key != cold.key and other.get(ATTN).model == B


def test_key_follows_the_trace_keys(index, traced, monkeypatch):
    first = reach_mod.reach_map(index, models=[A], warn=io.StringIO())
    import vkc.modeltrace.trace as trace_mod
    real = trace_mod.cache_key
    monkeypatch.setattr(trace_mod, "cache_key", lambda *a, **k: real(*a, **k)[::-1])   # a changed trace key
    again = reach_mod.reach_map(index, models=[A], warn=io.StringIO())
    assert again.key != first.key and not again.cached


def test_failed_trace_one_warning_and_the_next_model_takes_over(index, traced, monkeypatch, tmp_path):
    traces = _traces()

    def fake(tree, cfg):
        if cfg.model_id == A:
            raise InvocationError("model trace failed: boom", hint="x")
        return traces[cfg.model_id]
    monkeypatch.setattr(session, "model_trace_for", fake)
    warn = io.StringIO()
    rm = reach_mod.reach_map(index, models=[A, B], warn=warn)
    lines = warn.getvalue().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"vkc: warning: reach map: {A}: model trace failed") \
        and "boom" in lines[0]
    assert rm.failed and rm.failed[0][0] == A
    assert rm.get(CACHE).model == B and rm.get(ATTN) == reach_mod.Reach(B, "decode", "decode-b64-ctx4096")
    assert not list((tmp_path / "reach").glob("*.json"))     # a map with a failure is not cached


def test_plan_takes_model_and_workload_from_the_map(index):
    reach = {CACHE: (B, "prefill")}
    plain = plan_jobs(index, lang="triton", out_dir="out")
    jobs = plan_jobs(index, lang="triton", out_dir="out", reach=reach)
    assert len(jobs) == len(plain)
    for j, p in zip(jobs, plain):
        if j.qualified == CACHE:
            assert (j.model, j.workload, j.reach, j.out_dir) == (B, "prefill", f"{B} prefill", "out")
            assert j.command == f"vkc collect {j.name} --model {B} --workload prefill --out out"
            assert j.fallback == p and p.command == f"vkc collect {j.name} --out out"
        else:
            assert j == p
    # an explicit --model / --workload: the map does not apply
    assert plan_jobs(index, lang="triton", models=[A], reach=reach) == plan_jobs(index, lang="triton", models=[A])


def test_switch_off_traces_nothing(index, monkeypatch):
    def boom(*a, **k):
        raise AssertionError("traced although the reach map is off")
    monkeypatch.setattr(reach_mod, "reach_map", boom)
    monkeypatch.setattr(session, "model_trace_for", boom)
    assert ca._reach(index, False, 2) == (None, {"status": "off (--no-reach)"})
    monkeypatch.setenv("VKC_MODEL_TRACE", "0")
    assert ca._reach(index, True, 2) == (None, {"status": "off (VKC_MODEL_TRACE=0)"})
    monkeypatch.setenv("VKC_MODEL_TRACE", "1")
    with pytest.raises(AssertionError):
        ca._reach(index, True, 2)      # on: the map is asked for


def test_a_failing_reach_job_falls_back_loudly(monkeypatch, capsys, index):
    job = next(j for j in plan_jobs(index, lang="triton", reach={CACHE: (B, "decode")}) if j.reach)
    seen = []

    def one(state, j):
        seen.append(j)
        if j.model == B:
            return {"status": ca.FAILED, "error_class": "InvocationError", "error": "no"}
        return {"status": ca.WRITTEN, "path": "p", "line": "WROTE p", "model": DEFAULT_MODEL}
    monkeypatch.setattr(ca, "_collect_one", one)
    got = ca._run_job({}, job)
    assert seen == [job, job.fallback] and got["status"] == ca.WRITTEN and got["workload"] is None
    assert got["reach_fallback"].startswith(f"{B} decode: InvocationError: no") and not got.get("reach")
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith("vkc: warning: ") and "reach map" in err[0]
    monkeypatch.setattr(ca, "_collect_one", lambda state, j: {"status": ca.WRITTEN, "model": j.model})
    assert ca._run_job({}, job)["reach"] == f"{B} decode"


def test_summary_says_how_many_took_their_model_from_the_map():
    recs = [{"status": ca.WRITTEN, "lang": "triton", "invocation_mode": "model-traced", "reach": f"{B} decode",
             "error_class": None}, {"status": ca.WRITTEN, "lang": "cuda", "invocation_mode": "recipe",
                                    "reach": None, "error_class": None}]
    rep = ca.BatchReport(records=recs, seconds=1.0, results_path="out/collect_results.json", jobs=2,
                         summary=ca.summarise(recs))
    rm = reach_mod.ReachMap(order=(), kernels={MOE: reach_mod.Reach(B, "decode", "d")}, cached=True)
    rep.reach = {"status": "on", "used": 1, "describe": rm.describe()}
    assert ("vkc:   reach map: 1 kernels took their model and workload from it (1 kernels reached by 0 bundled "
            "models x 2 workloads, read from the reach cache)\n") in ca.format_summary(rep)
    rep.reach = {"status": "off (--no-reach)"}
    assert "reach map: off (--no-reach)" in ca.format_summary(rep)


def test_no_reach_flag_only_with_all():
    base = {"kernel": "k", "all": False, "all_used": False, "model": None, "workload": None, "kernel_type": None,
            "jobs": None, "resume": False, "no_reach": True}
    with pytest.raises(UsageError):
        check_collect_args(argparse.Namespace(**base))
    assert check_collect_args(argparse.Namespace(**dict(base, kernel=None, all=True))) is True


DATA_TREE = Path(__file__).resolve().parents[1] / "data" / "batch" / "tree"


@pytest.mark.parametrize(("flags", "env_trace", "status"), [
    (("--no-reach",), "1", "off (--no-reach)"),
    ((), "0", "off (VKC_MODEL_TRACE=0)"),
])
def test_cli_says_when_the_map_is_off(tmp_path, flags, env_trace, status):
    """The summary is never silent about the map; with it off nothing is traced (the fixture tree is not
    vLLM: a trace attempt would print a warning line)."""
    import os
    import subprocess
    import sys

    env = dict(os.environ, VKC_CACHE_DIR=str(tmp_path / "cache"), HF_HUB_OFFLINE="1", VKC_MODEL_TRACE=env_trace)
    env.pop("VKC_DEBUG", None)
    p = subprocess.run([sys.executable, "-m", "vkc", "collect", "--all", "--type", "cuda", *flags, "--vllm",
                        str(DATA_TREE), "--jobs", "1", "--out", "out"], cwd=tmp_path, env=env, capture_output=True,
                       text=True, check=False, timeout=300)
    assert f"vkc:   reach map: {status}; every kernel sized as without it" in p.stderr, p.stderr
    assert "model trace" not in p.stderr
    res = json.loads((tmp_path / "out" / "collect_results.json").read_text())
    assert res["reach"] == {"status": status, "planned": 0, "used": 0, "fell_back": 0}
    assert all(k["reach"] is None and k["reach_fallback"] is None for k in res["kernels"])
