"""Pure-Python checks of the recipes' shape functions (no vLLM import, fast)."""
from __future__ import annotations

import copy
import importlib
import json
from types import ModuleType

import pytest

from vkc.errors import NotApplicableError
from vkc.invoke.core.registry import registry
from vkc.invoke.triton.recipes.base import DTYPE_BYTES, TritonRecipe

from .conftest import BUDGET, DEEPSEEK, GPT_OSS, LLAMA, MAIN_MODELS, QWEN_CODER, dims

MINE = ("moe", "quant", "norms", "activation", "rotary", "sampling", "ssm", "lora")
GiB = 1 << 30


def get_recipe_module(name: str) -> ModuleType:
    return importlib.import_module(f"vkc.invoke.triton.recipes.{name}")


def _plan(name: str) -> TritonRecipe:
    """The (first) recipe plan of a recipe module: its shapes/call."""
    return get_recipe_module(name).RECIPES[0].plan


def _workloads(name: str) -> tuple[str, ...]:
    return get_recipe_module(name).RECIPES[0].workloads


def test_registered():
    reg = registry("triton")
    for name in MINE:
        recipes = get_recipe_module(name).RECIPES
        assert recipes
        for r in recipes:
            assert r.kernels and all(":" in k for k in r.kernels)
            for k in r.kernels:
                found = reg.find(k)
                assert found is not None and found.module == name and found.plan is r.plan, k


@pytest.mark.parametrize("name", [n for n in MINE if n != "moe"])
@pytest.mark.parametrize("model", MAIN_MODELS)
def test_shapes_are_json_and_leave_the_model_alone(name, model):
    """What the trace job carries must survive JSON unchanged (no tuples, no objects), and sizing must
    not edit the model dict it was given (the invoker sizes FULL and SMALL from one dict)."""
    for r in get_recipe_module(name).RECIPES:
        for wl in r.workloads:
            for small in (False, True):
                m = copy.deepcopy(dims(model))
                try:
                    a = r.plan.shapes(m, wl, BUDGET, small)
                except NotApplicableError:
                    continue
                assert json.loads(json.dumps(a)) == a and m == dims(model), (wl, small)


def _all_shapes() -> dict[str, str]:
    """Every recipe's shapes (JSON, keys in their own order) at each main model, workload and size."""
    from vkc.errors import VkcError
    from vkc.invoke.core.registry import registry as core_registry

    out = {}
    for recipe in core_registry("triton").recipes():
        if recipe.module.rsplit(".", 1)[-1] not in MINE:
            continue
        for model in MAIN_MODELS:
            for wl in recipe.workloads:
                for small in (False, True):
                    try:
                        got = json.dumps(recipe.plan.shapes(dims(model), wl, BUDGET, small))
                    except VkcError as exc:  # not applicable to this model: the message is the result
                        got = f"{type(exc).__name__}: {exc}"
                    out[f"{recipe.kernels[0]}|{model}|{wl}|{small}"] = got
    return out


def test_shapes_json_deterministic():
    """Same inputs, same shapes in another process with another hash seed (set/dict-order or
    id()-dependent shapes would differ), and the shapes are not empty."""
    import os
    import subprocess
    import sys

    here = _all_shapes()
    assert len(here) >= 40 and sum(v.startswith("{") and len(v) > 20 for v in here.values()) >= 40, here
    code = ("import json, sys; sys.path.insert(0, sys.argv[1]);"
            "from invoke_triton_recipes.test_shapes import _all_shapes; print(json.dumps(_all_shapes()))")
    tests_dir = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    for seed in ("1", "12345"):
        env = {**os.environ, "PYTHONHASHSEED": seed, "HF_HUB_OFFLINE": "1"}
        proc = subprocess.run([sys.executable, "-c", code, tests_dir], capture_output=True, text=True, env=env,
                              check=True)
        there = json.loads(proc.stdout.strip().splitlines()[-1])
        assert there == here, sorted(k for k in here if there.get(k) != here[k])


# ---------------------------------------------------------------------------- MoE


def test_moe_dense_model_rejected():
    with pytest.raises(NotApplicableError, match="MoE kernel: model .* has no experts") as e:
        _plan("moe").shapes(dims(LLAMA), "prefill", BUDGET, False)
    assert e.value.exit_code == 12


@pytest.mark.parametrize("model,E,k,K,tp", [(GPT_OSS, 128, 4, 2880, 1), (QWEN_CODER, 160, 8, 6144, 2)])
@pytest.mark.parametrize("wl", ["prefill", "decode"])
def test_moe_shapes(model, E, k, K, tp, wl):
    moe = get_recipe_module("moe")
    s = _plan("moe").shapes(dims(model), wl, BUDGET, False)
    assert (s["E"], s["top_k"], s["K"], s["tp"]) == (E, k, K, tp)
    assert s["N"] == 2 * s["I"] // tp
    assert s["live_bytes"] <= BUDGET
    assert s["M"] == (moe.DECODE_TOKENS if wl == "decode" else moe.PREFILL_MAX_TOKENS)
    assert s["has_bias"] == (model == GPT_OSS)
    # a smaller budget shards further instead of overflowing
    s2 = _plan("moe").shapes(dims(model), wl, 2 * GiB, False)
    assert s2["tp"] > s["tp"] and s2["live_bytes"] <= 2 * GiB


def test_moe_align_matches_vllm_docstring():
    """vLLM's moe_align_block_size docstring example (experts 1..4, block 4)."""
    moe = get_recipe_module("moe")
    s, e, total = moe.align_block_size([[2, 3, 4], [1, 2, 4], [1, 3, 4], [1, 2, 3]], 4, 5)
    assert s[:16] == [3, 6, 9, 12, 0, 4, 10, 12, 1, 7, 11, 12, 2, 5, 8, 12]
    assert total == 16 and len(s) == 12 + 5 * 3 and set(s[16:]) == {12}
    assert e == [1, 2, 3, 4, -1, -1, -1]


@pytest.mark.parametrize("M,E,k,bm", [(8192, 128, 4, 128), (256, 160, 8, 16), (3, 16, 2, 16)])
def test_moe_routing_valid(M, E, k, bm):
    moe = get_recipe_module("moe")
    ids = moe.routing(M, E, k)
    assert all(len(set(r)) == k and all(0 <= x < E for x in r) for r in ids)
    s, e, total = moe.align_block_size(ids, bm, E)
    numel = M * k
    valid = [x for x in s[:total] if x != numel]
    assert sorted(valid) == list(range(numel))               # every routed row exactly once
    assert total % bm == 0 and len(e) * bm >= len(s)
    for b in range(total // bm):                              # each block holds one expert's rows
        rows = [x for x in s[b * bm:(b + 1) * bm] if x != numel]
        assert rows and all(ids[x // k][x % k] == e[b] for x in rows)
    assert all(x == -1 for x in e[total // bm:])
    assert ids == moe.routing(M, E, k)                        # deterministic


# ---------------------------------------------------------------------------- others


def _live(name: str, s: dict, model: dict) -> int:
    """Approximate live set of the FULL launch, per recipe (bytes)."""
    es = DTYPE_BYTES[s["dtype"]] if "dtype" in s else 2
    if name == "activation":
        return s["rows"] * 3 * s["d"] * es
    if name == "rotary":
        return s["tokens"] * ((s["H_q"] + s["H_kv"]) * s["Dh"] + 3 * s["rotary_dim"]) * es
    if name == "lora":
        return s["tokens"] * (s["hidden"] * es + s["rank"] * 4)
    if name == "quant":
        return max(s["M_quant"] * s["K"] * (es + 1), s["M_gemm"] * (s["K"] + s["N"] * es) + s["N"] * s["K"])
    if name == "norms":
        return s["M_gated"] * 3 * s["gated"]["d_inner"] * es
    if name == "sampling":
        return s["batch"] * s["vocab"] * 4 * (1 + s["num_spec"])
    if name == "ssm":
        m = s["mamba"]
        return (s["batch"] + 1) * m["nheads"] * m["head_dim"] * m["d_state"] * es
    raise AssertionError(name)


@pytest.mark.parametrize("name", [n for n in MINE if n != "moe"])
@pytest.mark.parametrize("model", MAIN_MODELS)
def test_budget_respected(name, model):
    plan = _plan(name)
    for wl in _workloads(name):
        s = plan.shapes(dims(model), wl, BUDGET, False)
        live = _live(name, s, dims(model))
        assert live <= BUDGET * 1.01, (wl, live)
        if wl == "prefill" and name in ("activation", "rotary", "norms"):
            assert live >= BUDGET * 0.9, (wl, live)          # row kernels fill the budget
        small = plan.shapes(dims(model), wl, BUDGET, True)
        assert _live(name, small, dims(model)) < 16 << 20   # SMALL_SANITY: a few MiB at most
        assert small["dtype"] in ("float16", "float32") if "dtype" in small else True


def test_row_multiples_and_model_widths():
    q = _plan("quant").shapes(dims(LLAMA), "prefill", BUDGET, False)
    assert q["M_quant"] % 128 == 0 and q["M_gemm"] == 16384 and (q["K"], q["N"]) == (4096, 6144)
    g = _plan("quant").shapes(dims(GPT_OSS), "prefill", BUDGET, False)
    assert (g["layer"], g["K"], g["N"]) == ("o_proj", 4096, 2880)      # 2880 is not a multiple of 128
    n = _plan("norms").shapes(dims(QWEN_CODER), "prefill", BUDGET, False)
    assert n["gated"]["d_inner"] == 2 * 6144 and n["M_gated"] % 256 == 0 and n["mla"] is None
    d = _plan("norms").shapes(dims(DEEPSEEK), "decode", BUDGET, False)
    assert d["mla"] == {"q_lora_rank": 1536, "kv_lora_rank": 512, "qk_rope_head_dim": 64, "row_stride": 2112}
    a = _plan("activation").shapes(dims(GPT_OSS), "decode", BUDGET, False)
    assert (a["rows"], a["d"]) == (256 * 4, 2880)
    r = _plan("rotary").shapes(dims(QWEN_CODER), "decode", BUDGET, False)
    assert r["mrope_section"] == [16, 24, 24] and sum(r["mrope_section"]) == r["rotary_dim"] // 2
    assert get_recipe_module("rotary").mrope_section(64) == [8, 12, 12]
    ss = _plan("ssm").shapes(dims(LLAMA), "prefill", BUDGET, False)
    assert ss["mamba"]["nheads"] == 128 and ss["seq_len"] % ss["mamba"]["chunk_size"] == 0
    assert ss["tokens"] == ss["seq_len"] * ss["seqs"]
    sp = _plan("sampling").shapes(dims(GPT_OSS), "decode", BUDGET, False)
    assert sp["vocab"] == 201088 and sp["batch"] > 64


def test_lora_metadata():
    meta = get_recipe_module("lora").lora_metadata(10, 4)
    assert meta["num_tokens_per_lora"] == [3, 3, 2, 2, 0]
    assert meta["lora_token_start_loc"] == [0, 3, 6, 8, 10, 0]
    assert meta["lora_ids"] == [0, 1, 2, 3, -1]
    assert meta["token_lora_mapping"] == sorted(meta["token_lora_mapping"])
