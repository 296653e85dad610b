"""Static typing and constexpr rules of the generic (untraced) launch: synthetic kernels + real ones."""
from __future__ import annotations

import textwrap

import pytest

from vkc.invoke.triton.untraced.constexprs import (
    default_value,
    is_value,
    read_constraints,
    solve,
)
from vkc.invoke.triton.untraced.sigtypes import analyze

HEAD = "import triton\nimport triton.language as tl\n\n"


def _types(src: str, entry: str = "k") -> dict:
    return {p.name: (p.kind, p.dtype) for p in analyze(HEAD + textwrap.dedent(src), entry)}


def test_lone_int_named_param_is_the_pointer_when_nothing_else_can_be():
    t = _types("""
        @triton.jit
        def k(out, lengths, K, nblocks, TILE: tl.constexpr):
            row = tl.program_id(0)
            cols = tl.arange(0, TILE)
            n = tl.load(lengths + row)
            x = tl.load(K + row * nblocks + cols)
            tl.store(out + cols, x, mask=cols < n)
    """)
    assert t["lengths"][0] == "ptr" and t["K"][0] == "ptr" and t["nblocks"] == ("int", None)


def test_lone_int_named_param_off_a_loaded_address_stays_scalar():
    t = _types("""
        @triton.jit
        def k(addrs, start, BLOCK: tl.constexpr):
            base = tl.load(addrs).to(tl.pointer_type(tl.float32))
            tl.store(base + start + tl.arange(0, BLOCK), 1.0)
    """)
    assert t["start"] == ("int", None) and t["addrs"] == ("ptr", "int64")


def test_eight_bit_data():
    t = _types("""
        @triton.jit
        def k(raw_ptr, x_ptr, xs_ptr, w_ptr, ws_ptr, q_ptr, out_ptr, B: tl.constexpr, USE_FNUZ: tl.constexpr):
            o = tl.arange(0, B)
            raw = tl.load(raw_ptr + o)
            s = tl.cast(raw, tl.float8e4nv, bitcast=True).to(tl.float32)
            x = tl.load(x_ptr + o[:, None] * B + o[None, :])
            w = tl.load(w_ptr + o[:, None] * B + o[None, :])
            xs = tl.load(xs_ptr + o[:, None])
            ws = tl.load(ws_ptr + o[:, None])
            acc = tl.dot_scaled(x, xs, "e4m3", w.T, ws, "e4m3")
            fp8 = tl.float8e4b8 if USE_FNUZ else tl.float8e4nv
            tl.store(q_ptr + o, s.to(fp8))
            tl.store(out_ptr + o[:, None] * B + o[None, :], acc)
    """)
    assert t["raw_ptr"] == ("ptr", "uint8")
    assert t["x_ptr"] == ("ptr", "float8_e4m3fn") and t["w_ptr"] == ("ptr", "float8_e4m3fn")
    assert t["xs_ptr"] == ("ptr", "uint8") and t["ws_ptr"] == ("ptr", "uint8")
    assert t["q_ptr"] == ("ptr", "float8_e4m3fn") and t["out_ptr"] == ("ptr", "bfloat16")


def test_integer_data_and_int_used_scalars():
    t = _types("""
        @triton.jit
        def _helper(p, n, B: tl.constexpr):
            o = tl.arange(0, B)
            tl.store(p + n * B + o, tl.zeros([B], dtype=tl.float32))

        @triton.jit
        def k(w_ptr, ks_ptr, hs_ptr, out_ptr, compress_ratio, SAME: tl.constexpr, B: tl.constexpr):
            o = tl.arange(0, B)
            w = tl.load(w_ptr + o)
            lo = (w >> 4) & 0xF
            ks = tl.load(ks_ptr)
            blk = ks // B
            cur = 7 if SAME else tl.load(hs_ptr)
            m = blk // compress_ratio
            _helper(out_ptr, cur, B)
            tl.store(out_ptr + o + m, lo.to(tl.float32))
    """)
    assert t["w_ptr"] == ("ptr", "int32") and t["ks_ptr"] == ("ptr", "int32")
    assert t["hs_ptr"] == ("ptr", "int32") and t["compress_ratio"] == ("int", None)
    assert t["out_ptr"] == ("ptr", "bfloat16")


def test_optional_descriptor_is_passed_none():
    t = _types("""
        @triton.jit
        def k(a_ptr, a_desc, B: tl.constexpr):
            o = tl.arange(0, B)
            if a_desc is not None:
                x = a_desc.load([0, 0])
            else:
                x = tl.load(a_ptr + o)
            tl.store(a_ptr + o, x)
    """)
    assert t["a_desc"] == ("none", None) and t["a_ptr"][0] == "ptr"


def _solve(src: str, constexprs: dict, scalars: dict | None = None, ptrs: dict | None = None, entry: str = "k"):
    cons = read_constraints(HEAD + textwrap.dedent(src), entry)
    return solve(cons, constexprs, list(constexprs), scalars or {}, ptrs or {})


def test_arange_of_an_expression_becomes_a_power_of_two():
    cx, pinned, ptrs, notes = _solve("""
        @triton.jit
        def k(p, RATIO: tl.constexpr, OVERLAP: tl.constexpr):
            tokens = tl.arange(0, (1 + OVERLAP) * RATIO)
            tl.store(p + tokens, 0)
    """, {"RATIO": 16, "OVERLAP": 16})
    n = (1 + cx["OVERLAP"]) * cx["RATIO"]
    assert n & (n - 1) == 0 and notes and not pinned and not ptrs


def test_static_asserts_pin_scalars_type_pointers_and_bound_sizes():
    cx, pinned, ptrs, _ = _solve("""
        @triton.jit
        def k(mx_ptr, desc, stride_q, quant: tl.constexpr, size: tl.constexpr, USE: tl.constexpr):
            tl.static_assert(stride_q == 1)
            tl.static_assert(mx_ptr.dtype.element_ty == tl.uint8)
            tile: tl.constexpr = quant * 64
            tl.static_assert(tile <= size, "tile outruns the token")
            if USE:
                pass
            else:
                tl.static_assert(desc is None, "desc must be none")
            tl.store(mx_ptr + tl.arange(0, tile), 0)
    """, {"quant": 128, "size": 16, "USE": False}, {"stride_q": 128}, {"mx_ptr": "bfloat16", "desc": "bfloat16"})
    assert pinned == {"stride_q": 1}
    assert ptrs == {"mx_ptr": "uint8", "desc": None}
    assert cx["quant"] * 64 <= cx["size"] and cx["USE"] is False   # the assert was met, not skipped


def test_reshape_keeps_the_element_count():
    cx, *_ = _solve("""
        @triton.jit
        def k(x_ptr, HEAD: tl.constexpr, SCALE_DIM: tl.constexpr, QB: tl.constexpr):
            x = tl.load(x_ptr + tl.arange(0, HEAD)).to(tl.float32)
            tiles = tl.reshape(x, (SCALE_DIM, QB))
            tl.store(x_ptr + tl.arange(0, HEAD), tl.reshape(tiles, (HEAD,)))
    """, {"HEAD": 512, "SCALE_DIM": 128, "QB": 64})
    assert cx["HEAD"] == cx["SCALE_DIM"] * cx["QB"]


def test_rules_under_a_false_constexpr_branch_do_not_bind():
    cx, *_ = _solve("""
        @triton.jit
        def k(p, N: tl.constexpr, FLAG: tl.constexpr):
            if FLAG:
                tl.store(p + tl.arange(0, N), 0)
    """, {"N": 48, "FLAG": False})
    assert cx == {"N": 48, "FLAG": False}


def test_extractor_default_text_is_parsed():
    assert default_value("448.0") == 448.0 and default_value("False") is False
    assert default_value("tl.float32") == {"__tl_dtype__": "fp32"} and default_value("'silu'") == "silu"
    assert default_value("tl.float8e4nv") == {"__tl_dtype__": "fp8e4nv"}
    assert not is_value(default_value("SOME_CONSTANT")) and is_value(default_value("0"))


# real kernels of the tree whose typing used to be wrong (fast: static only)
REAL = {
    "vllm.models.deepseek_v41.nvidia.specialized_decode.attention.candidate_topk:_finalize_candidates_kernel":
        {"lengths": ("ptr", None), "out": ("ptr", "int32")},
    "vllm.model_executor.layers.lightning_attn:_fwd_diag_kernel": {"K": ("ptr", "bfloat16"), "n": ("int", None)},
    "vllm.model_executor.layers.quantization.utils.nvfp4_emulation_utils:_dequantize_nvfp4_kernel":
        {"scale_ptr": ("ptr", "uint8")},
    "vllm.model_executor.kernels.linear.mxfp8.rocm_native:_mxfp8_linear_kernel":
        {"x_ptr": ("ptr", "float8_e4m3fn"), "w_ptr": ("ptr", "float8_e4m3fn"), "xs_ptr": ("ptr", "uint8")},
    "vllm.lora.ops.triton_ops.lora_expand_op:_lora_expand_kernel": {"output_hs_ptr": ("ptr", "int32")},
    "vllm.lora.ops.triton_ops.fused_moe_lora_op:_fused_moe_lora_kernel":
        {"a_desc": ("none", None), "b_desc": ("none", None)},
}


@pytest.mark.parametrize("qualified", sorted(REAL))
def test_real_kernel_typing(vllm_tree, qualified):
    from vkc.extract import extract
    from vkc.index import build_index, lookup

    ex = extract(vllm_tree, lookup(build_index(vllm_tree), qualified), name=qualified)
    got = {p.name: (p.kind, p.dtype) for p in analyze(ex.source_code, qualified.split(":")[1])}
    for name, (kind, dt) in REAL[qualified].items():
        assert got[name][0] == kind, name
        if dt is not None:
            assert got[name][1] == dt, name
