"""The typed Triton launch plan and its rendering (fast, no vLLM)."""
from __future__ import annotations

import ast

from vkc.invoke.triton.plan import (
    RANDN,
    Buffer,
    InitSpec,
    LaunchConfig,
    LaunchInfo,
    Scalar,
    TensorView,
    TritonPlan,
    compile_literal,
    flat_view,
)
from vkc.pyliteral import pyrepr


def _cfg(**kw) -> LaunchConfig:
    base = {
        "grid": (4, 2), "num_warps": 8, "num_stages": 3, "options": {"maxnreg": 128}, "constexprs": {"BLOCK": 64, "HAS_BIAS": False},
        "buffers": (Buffer("x", (16, 8), "bfloat16", RANDN), Buffer("ids", (4,), "int32", InitSpec("values", ([0, 1, 2, 3],)))),
        "args": (TensorView("x_ptr", "x", (16, 4), (8, 1), 4, "bfloat16"), flat_view("ids", 4, "int32"),
              Scalar("n", 16), Scalar("eps", 1e-6), Scalar("bias_ptr", None), Scalar("big", 2**40)),
        "live_bytes": 272, "flops": None, "bytes": 272.0, "shapes": {"rows": 16, "dtype": "bfloat16"},
    }
    base.update(kw)
    return LaunchConfig(**base)


def test_to_literal_is_the_scripts_format():
    lit = _cfg().to_literal()
    assert list(lit) == ["grid", "num_warps", "num_stages", "options", "constexprs", "buffers", "args", "live_bytes",
                         "flops", "bytes", "shapes"]
    assert lit["grid"] == (4, 2) and lit["buffers"]["ids"] == ([4], "int32", ("values", [0, 1, 2, 3]))
    assert lit["args"][0] == ("x_ptr", ("tensor", "x", [16, 4], [8, 1], 4, "bfloat16"))
    assert lit["args"][2] == ("n", ("scalar", 16)) and lit["args"][4] == ("bias_ptr", ("scalar", None))
    assert ast.literal_eval(pyrepr(lit)) == lit          # renders as a Python literal and reads back


def test_compile_literal_derived_and_traced():
    cfg = _cfg()
    info = LaunchInfo(params=("x_ptr", "ids", "n", "eps", "bias_ptr", "big", "BLOCK", "HAS_BIAS"))
    lit = compile_literal("k", cfg, info)
    assert lit["signature"] == {"x_ptr": "*bf16", "ids": "*i32", "n": "i32", "eps": "fp32", "bias_ptr": "constexpr",
                                "big": "i64", "BLOCK": "constexpr", "HAS_BIAS": "constexpr"}
    assert lit["constexprs"] == {"bias_ptr": None, "BLOCK": 64, "HAS_BIAS": False}
    assert lit["target"] == ("cuda", 90, 32) and lit["num_warps"] == 8
    # no launch info (the name-only guess): arguments, then constexprs
    assert list(compile_literal("k", cfg, None)["signature"])[-2:] == ["BLOCK", "HAS_BIAS"]
    # Triton's own signature wins when the trace has one; attrs sorted
    traced = LaunchInfo(params=("x_ptr", "BLOCK"), signature={"BLOCK": "constexpr", "x_ptr": "*bf16"},
                        attrs={"x_ptr": [["tt.divisibility", 16]], "a": []})
    lit = compile_literal("k", cfg, traced)
    assert list(lit["signature"]) == ["x_ptr", "BLOCK"] and list(lit["attrs"]) == ["a", "x_ptr"]


def test_plan_accessors():
    cfg = _cfg()
    plan = TritonPlan(full=cfg, small=cfg, path="generic", launch=LaunchInfo(params=()))
    assert not plan.traced and [n for n, _ in plan.configs()] == ["FULL", "SMALL"]
    assert [t.param for t in cfg.tensors] == ["x_ptr", "ids"] and cfg.arg("n") == Scalar("n", 16)
    assert cfg.buffer("ids").init.to_literal() == ("values", [0, 1, 2, 3])
    assert set(plan.to_literal()) == {"FULL", "SMALL"}
