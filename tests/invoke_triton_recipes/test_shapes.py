"""Pure-Python checks of the recipes' shape functions (no vLLM import, fast)."""
from __future__ import annotations

import json

import pytest

from vkc.errors import InvocationError
from vkc.invoke.triton.recipes import get_recipe_module, registry
from vkc.invoke.triton.recipes.base import DTYPE_BYTES

from .conftest import BUDGET, DEEPSEEK, GPT_OSS, LLAMA, MAIN_MODELS, QWEN_CODER, dims

MINE = ("moe", "quant", "norms", "activation", "rotary", "sampling", "ssm", "lora")
GiB = 1 << 30


def test_registered():
    reg = registry()
    for name in MINE:
        mod = get_recipe_module(name)
        assert mod.KERNELS and all(":" in k for k in mod.KERNELS)
        for k in mod.KERNELS:
            assert reg[k] is mod, k


@pytest.mark.parametrize("name", [n for n in MINE if n != "moe"])
@pytest.mark.parametrize("model", MAIN_MODELS)
def test_shapes_json_deterministic(name, model):
    mod = get_recipe_module(name)
    for wl in mod.WORKLOADS:
        for small in (False, True):
            a = mod.shapes(dims(model), wl, BUDGET, small)
            assert json.dumps(a, sort_keys=True) == json.dumps(mod.shapes(dims(model), wl, BUDGET, small), sort_keys=True)


# ---------------------------------------------------------------------------- MoE


def test_moe_dense_model_rejected():
    with pytest.raises(InvocationError, match="MoE kernel: model .* has no experts"):
        get_recipe_module("moe").shapes(dims(LLAMA), "prefill", BUDGET, False)


@pytest.mark.parametrize("model,E,k,K,tp", [(GPT_OSS, 128, 4, 2880, 1), (QWEN_CODER, 160, 8, 6144, 2)])
@pytest.mark.parametrize("wl", ["prefill", "decode"])
def test_moe_shapes(model, E, k, K, tp, wl):
    moe = get_recipe_module("moe")
    s = moe.shapes(dims(model), wl, BUDGET, False)
    assert (s["E"], s["top_k"], s["K"], s["tp"]) == (E, k, K, tp)
    assert s["N"] == 2 * s["I"] // tp
    assert s["live_bytes"] <= BUDGET
    assert s["M"] == (moe.DECODE_TOKENS if wl == "decode" else moe.PREFILL_MAX_TOKENS)
    assert s["has_bias"] == (model == GPT_OSS)
    # a smaller budget shards further instead of overflowing
    s2 = moe.shapes(dims(model), wl, 2 * GiB, False)
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
    mod = get_recipe_module(name)
    for wl in mod.WORKLOADS:
        s = mod.shapes(dims(model), wl, BUDGET, False)
        live = _live(name, s, dims(model))
        assert live <= BUDGET * 1.01, (wl, live)
        if wl == "prefill" and name in ("activation", "rotary", "norms"):
            assert live >= BUDGET * 0.9, (wl, live)          # row kernels fill the budget
        small = mod.shapes(dims(model), wl, BUDGET, True)
        assert _live(name, small, dims(model)) < 16 << 20   # SMALL_SANITY: a few MiB at most
        assert small["dtype"] in ("float16", "float32") if "dtype" in small else True


def test_row_multiples_and_model_widths():
    q = get_recipe_module("quant").shapes(dims(LLAMA), "prefill", BUDGET, False)
    assert q["M_quant"] % 128 == 0 and q["M_gemm"] == 16384 and (q["K"], q["N"]) == (4096, 6144)
    g = get_recipe_module("quant").shapes(dims(GPT_OSS), "prefill", BUDGET, False)
    assert (g["layer"], g["K"], g["N"]) == ("o_proj", 4096, 2880)      # 2880 is not a multiple of 128
    n = get_recipe_module("norms").shapes(dims(QWEN_CODER), "prefill", BUDGET, False)
    assert n["gated"]["d_inner"] == 2 * 6144 and n["M_gated"] % 256 == 0 and n["mla"] is None
    d = get_recipe_module("norms").shapes(dims(DEEPSEEK), "decode", BUDGET, False)
    assert d["mla"] == {"q_lora_rank": 1536, "kv_lora_rank": 512, "qk_rope_head_dim": 64, "row_stride": 2112}
    a = get_recipe_module("activation").shapes(dims(GPT_OSS), "decode", BUDGET, False)
    assert (a["rows"], a["d"]) == (256 * 4, 2880)
    r = get_recipe_module("rotary").shapes(dims(QWEN_CODER), "decode", BUDGET, False)
    assert r["mrope_section"] == [16, 24, 24] and sum(r["mrope_section"]) == r["rotary_dim"] // 2
    assert get_recipe_module("rotary").mrope_section(64) == [8, 12, 12]
    ss = get_recipe_module("ssm").shapes(dims(LLAMA), "prefill", BUDGET, False)
    assert ss["mamba"]["nheads"] == 128 and ss["seq_len"] % ss["mamba"]["chunk_size"] == 0
    assert ss["tokens"] == ss["seq_len"] * ss["seqs"]
    sp = get_recipe_module("sampling").shapes(dims(GPT_OSS), "decode", BUDGET, False)
    assert sp["vocab"] == 201088 and sp["batch"] > 64


def test_lora_metadata():
    meta = get_recipe_module("lora").lora_metadata(10, 4)
    assert meta["num_tokens_per_lora"] == [3, 3, 2, 2, 0]
    assert meta["lora_token_start_loc"] == [0, 3, 6, 8, 10, 0]
    assert meta["lora_ids"] == [0, 1, 2, 3, -1]
    assert meta["token_lora_mapping"] == sorted(meta["token_lora_mapping"])
