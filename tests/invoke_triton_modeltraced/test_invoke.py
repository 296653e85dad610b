"""invoke_triton's model-traced path, wired end to end on the recorded Llama trace (no vLLM run):
header, provenance, the rendered example (parsed, and its index buffers materialised and range-checked),
the loud fallback when the trace fails, and the VKC_MODEL_TRACE=0 switch."""
from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

import vkc.invoke.triton.modeltraced.attempt as attempt_mod
from invoke_triton.fixtures import load_extraction, model
from vkc.errors import InvocationError
from vkc.invoke.core.provenance import InvocationMode
from vkc.invoke.triton import invoker
from vkc.invoke.triton.plan import TritonPlan
from vkc.modeltrace.records import StepSpec, trace_from_json

LLAMA = Path(__file__).resolve().parent.parent / "data" / "modeltrace" / "llama-3.1-8b-instruct.trace.json"
MODEL = "meta-llama/Llama-3.1-8B-Instruct"


@pytest.fixture(scope="module")
def trace():
    return trace_from_json(json.loads(LLAMA.read_text()))


@pytest.fixture
def traced(monkeypatch, trace):
    monkeypatch.setenv("VKC_MODEL_TRACE", "1")
    monkeypatch.setattr(attempt_mod, "model_trace_for", lambda tree, m: trace)
    # the fixture holds only the FULL steps: let them stand for SMALL too
    monkeypatch.setattr(attempt_mod, "steps_for", lambda wl: {
        "decode": (StepSpec("decode", 64, ctx=4096),) * 2, "prefill": (StepSpec("prefill", 4, prompt_len=2048),) * 2}[wl])


def _invoke(vllm_tree, name: str, workload: str = "decode"):
    ex = load_extraction(name)
    return invoker.invoke_triton(vllm_tree, ex, model(MODEL), workload, command=f"vkc collect {name}")


def _header(code: str) -> dict[str, str]:
    out = {}
    for ln in code.splitlines():
        if ln.startswith("# ") and ": " in ln:
            k, v = ln[2:].split(": ", 1)
            out.setdefault(k, v)
    return out


@pytest.mark.parametrize("name", ["kernel_unified_attention", "reshape_and_cache_kernel_flash"])
def test_model_traced_example(vllm_tree, traced, name):
    inv = _invoke(vllm_tree, name)
    prov = inv.facts["provenance"]
    assert prov.mode is InvocationMode.MODEL_TRACED and prov.fallback_from is None
    h = _header(inv.code)
    assert h["invocation"] == prov.header_value()
    assert h["invocation"].startswith(f"model-traced (model-accurate): {MODEL} decode layers 0,1, step decode-b64-ctx4096")
    assert f"`vkc model kernels {MODEL} --workload decode`" in h["invocation"]
    tree = ast.parse(inv.code)
    lits = {t.id: ast.literal_eval(n.value) for n in tree.body if isinstance(n, ast.Assign)
            for t in n.targets if isinstance(t, ast.Name) and t.id in ("CONFIGS", "VKC_COMPILE")}
    plan = inv.facts["plan"]
    assert lits["CONFIGS"]["FULL"]["grid"] == plan.full.grid
    comp = lits["VKC_COMPILE"]
    assert (comp["num_warps"], comp["num_stages"]) == (plan.full.num_warps, plan.full.num_stages)
    for k, v in comp["constexprs"].items():   # the trace's constexprs, and the None-valued (constexpr) scalars
        assert v == (plan.full.constexprs[k] if k in plan.full.constexprs else plan.full.arg(k).value), k
    assert set(plan.full.constexprs) <= set(comp["constexprs"])
    assert list(comp["signature"]) == list(plan.launch.params)   # the kernel's own parameter order


def _exec_example(code: str, monkeypatch):
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    ns: dict = {"__name__": "vkc_example", "__file__": "/nonexistent/example.py"}
    exec(compile(code, "example.py", "exec"), ns)  # noqa: S102 -- defines functions only (main not run)
    return ns


def test_index_buffers_are_in_range(vllm_tree, traced, monkeypatch):
    """Materialise every integer buffer with the example's own _init_tensor: block ids < num_blocks,
    the step's blocks distinct, slots < num_blocks*block_size and distinct."""
    ua = _invoke(vllm_tree, "kernel_unified_attention")
    rc = _invoke(vllm_tree, "reshape_and_cache_kernel_flash")
    for inv in (ua, rc):
        ns = _exec_example(inv.code, monkeypatch)
        cfg = ns["CONFIGS"]["FULL"]
        kv_view = next(s for p, s in cfg["args"] if p == "key_cache_ptr")
        num_blocks = kv_view[2][0]
        assert num_blocks == 16897
        for bname, (shape, dtype, init) in cfg["buffers"].items():
            if not dtype.startswith("int"):
                continue
            t = ns["_init_tensor"](shape, dtype, init, "cpu")
            if init[0] == "block_rows":
                # vLLM's persistent rows: [64, width] of a [256, width] table, the 4096-token context's
                # 256 blocks first (distinct over the batch, never the null block), then 0s
                view = next(s for p, s in cfg["args"] if s[0] == "tensor" and s[1] == bname)
                rows = t.as_strided(view[2], view[3], view[4])
                width = view[3][0]
                assert rows.shape == (64, width) and width == 131072 // 16 and init[1:] == (num_blocks, 64, 256, width)
                used, tail = rows[:, :256], rows[:, 256:]
                assert int(used.min()) >= 1 and int(used.max()) < num_blocks
                assert len(set(used.reshape(-1).tolist())) == used.numel()
                assert int(tail.abs().max()) == 0 and int(t.reshape(-1, width)[64:].abs().max()) == 0
            elif init[0] == "slot_mapping":
                assert int(t.min()) >= 0 and int(t.max()) < num_blocks * 16
                assert len(set(t.tolist())) == t.numel()
            else:
                assert init[0] == "values", (bname, init)


def test_trace_failure_warns_once_and_records_fallback(vllm_tree, monkeypatch, capsys):
    monkeypatch.setenv("VKC_MODEL_TRACE", "1")

    def boom(tree, m):
        raise InvocationError("model trace failed: worker exited 1", hint="x")

    monkeypatch.setattr(attempt_mod, "model_trace_for", boom)
    seen = {}

    def fake_recipe(tree, kernel, qualified, recipe, dims, wl):
        seen["recipe"] = recipe.module
        from vkc.invoke.triton.modeltraced import modeltraced_plan
        p = modeltraced_plan(trace_from_json(json.loads(LLAMA.read_text())), StepSpec("decode", 64, ctx=4096),
                             qualified)
        assert p is not None
        return TritonPlan(full=p.full, small=p.small, path="traced", launch=p.launch)

    monkeypatch.setattr(invoker, "traced_plan", fake_recipe)
    inv = _invoke(vllm_tree, "kernel_unified_attention")
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [("vkc: warning: kernel_unified_attention: model trace failed (model trace failed: worker exited 1); "
                    "using the recipe")]
    prov = inv.facts["provenance"]
    assert prov.mode is InvocationMode.RECIPE and prov.fallback_from.startswith("model-traced: model trace failed")
    h = _header(inv.code)["invocation"]
    assert h.startswith(f"recipe (model-accurate): {seen['recipe']} via vllm/v1/attention/ops/")
    assert "fell back from model-traced: model trace failed" in h


def test_switch_off_uses_the_recipe_silently_by_request(vllm_tree, monkeypatch, capsys):
    monkeypatch.setenv("VKC_MODEL_TRACE", "0")
    called = []
    monkeypatch.setattr(attempt_mod, "model_trace_for", lambda tree, m: called.append(1))
    from vkc.invoke.triton.modeltraced import attempt

    a = attempt.attempt(vllm_tree, model(MODEL), "x:y", "decode", name="y", weaker="the recipe")
    assert a.plan is None and a.fallback is None and "VKC_MODEL_TRACE=0" in (a.note or "")
    assert called == [] and capsys.readouterr().err == ""
