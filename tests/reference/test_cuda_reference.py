"""CUDA references (issue 13): every row of vkc.reference.cuda_table resolves on the real tree, and the check
script a CUDA program embeds passes a right output and catches a wrong or an unwritten one -- on CPU tensors at
small sizes, over dumps written as the host program writes them (manifest.txt, NAME.in.bin / NAME.out.bin)."""
from __future__ import annotations

import ast
import subprocess
import sys
import types

import pytest
import torch

from vkc.invoke.cuda.refcheck import check_context, poison_pattern, script_of, torch_dtype
from vkc.reference.cuda_find import cuda_spec_for, find_cuda_reference
from vkc.reference.cuda_table import CUDA_SPECS


@pytest.mark.parametrize("spec", CUDA_SPECS, ids=[f"{s.kernel}:{s.wrapper}" for s in CUDA_SPECS])
def test_every_row_resolves(vllm_tree, spec):
    found = find_cuda_reference(vllm_tree, spec.kernel, mode="model-traced", wrapper=spec.wrapper)
    assert found.reference is not None, found.reason
    assert "vllm" not in " ".join(found.reference.imports)
    ast.parse(found.reference.code)


def test_refusals(vllm_tree):
    assert find_cuda_reference(vllm_tree, "_C::rms_norm", mode="model-traced").reference is None
    got = find_cuda_reference(vllm_tree, "_C::relu_squared", mode="synthesized")
    assert got.reference is None and "synthesized" in got.reason
    host = "csrc/activation_kernels.cu:act_and_mul_kernel"
    assert cuda_spec_for(host, "csrc/activation_kernels.cu:299 (silu_and_mul via LAUNCH_ACTIVATION_GATE_KERNEL)")
    gelu = cuda_spec_for(host, "csrc/activation_kernels.cu:326 (gelu_and_mul via LAUNCH_ACTIVATION_GATE_KERNEL)")
    assert gelu and gelu.function == "GeluAndMul.forward_native" and "'none'" in dict(gelu.args)["self"]
    assert cuda_spec_for(host, "csrc/activation_kernels.cu:306 (silu_and_mul_clamp via LAUNCH_ACTIVATION_GATE_KERNEL)") is None
    assert cuda_spec_for(host, "x (silu_and_mul_quant)") is None
    got = find_cuda_reference(vllm_tree, host, mode="recipe", wrapper="(silu_and_mul)", names={"out"})
    assert got.reference is None and "input" in got.reason
    got = find_cuda_reference(vllm_tree, "_moe_C::topk_softmax", mode="model-traced",
                              values={"is_padding": True, "renormalize": True, "bias": None})
    assert got.reference is None and "is_padding" in got.reason


def test_poison_patterns():
    assert poison_pattern("bfloat16") == (0x7FC0, 2)
    assert poison_pattern("float8_e4m3fn") == (0x7F, 1)
    assert poison_pattern("int32") == (0x80000000, 4)
    assert poison_pattern("bool") is None
    for dt in ("bfloat16", "float16", "float32", "float8_e4m3fn"):
        bits, size = poison_pattern(dt)
        t = torch.tensor(list(bits.to_bytes(size, "little")), dtype=torch.uint8).view(getattr(torch, dt))
        assert torch.isnan(t.to(torch.float32)).all(), dt
    assert torch_dtype("__nv_bfloat16") == "bfloat16" and torch_dtype("c10::Float8_e4m3fn") == "float8_e4m3fn"


def _write(d, name, phase, t):
    (d / f"{name}.{phase}.bin").write_bytes(t.contiguous().view(torch.uint8).numpy().tobytes())


def _run(d, script):
    (d / "vkc_check.py").write_text(script)
    proc = subprocess.run([sys.executable, str(d / "vkc_check.py"), str(d)], capture_output=True, text=True,
                          timeout=120)
    last = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else proc.stderr[-400:]
    return proc.returncode, last


def _host_script(tree):
    found = find_cuda_reference(tree, "csrc/activation_kernels.cu:act_and_mul_kernel", mode="model-traced",
                                wrapper="(silu_and_mul)")
    ctx = check_context(found, name="act_and_mul_kernel", mode="host", out_dtypes={"out": ["bfloat16"]})
    return "".join(ctx["check_lines"])


def test_host_check_passes_right_and_catches_wrong(vllm_tree, tmp_path):
    script = _host_script(vllm_tree)
    d_, t = 64, 4
    x = (torch.rand(t, 2 * d_) * 4 - 2).to(torch.bfloat16)
    right = torch.nn.functional.silu(x[:, :d_]) * x[:, d_:]
    (tmp_path / "manifest.txt").write_text(f"scale num_tokens_ll {t}\nbuffer out out 2 {t * d_} c10::BFloat16\n"
                                           f"buffer input in 2 {t * 2 * d_} c10::BFloat16\nvalue d {d_}\n")
    _write(tmp_path, "input", "in", x)
    _write(tmp_path, "out", "in", torch.full((t, d_), float("nan"), dtype=torch.bfloat16))
    _write(tmp_path, "out", "out", right)
    assert _run(tmp_path, script) == (0, "check=PASS max_abs_err=0 max_rel_err=0 written=all")
    wrong = right.clone()
    wrong[1, 3] += 1.0
    _write(tmp_path, "out", "out", wrong)
    rc, last = _run(tmp_path, script)
    assert rc == 1 and last.startswith("check=FAIL") and "written=all" in last
    short = right.clone()
    short[-1] = float("nan")      # a short grid: the last row left as poisoned
    _write(tmp_path, "out", "out", short)
    rc, last = _run(tmp_path, script)
    assert rc == 1 and last.startswith("check=FAIL") and "written=partial" in last


def test_wrapped_check_views_and_fp8(vllm_tree, tmp_path):
    """dynamic_scaled_fp8_quant: the op's arguments as views of storages (result fp8, input bf16, scale fp32[1]
    in a 256-byte storage); the kernel's answer is computed here as the CUDA kernel does (x * (1/scale))."""
    found = find_cuda_reference(vllm_tree, "_C::dynamic_scaled_fp8_quant", mode="model-traced",
                                names={"result", "input", "scale"}, values={})
    views = {"SMALL": {"result": ("s0", "float8_e4m3fn", [2, 64], [64, 1], 0),
                       "input": ("s1", "bfloat16", [2, 64], [64, 1], 0),
                       "scale": ("s2", "float32", [1], [1], 0)}}
    ctx = check_context(found, name="absmax_reduction_flat", mode="wrapped",
                        out_dtypes={"result": ["float8_e4m3fn"], "scale": ["float32"]}, views=views,
                        values={"SMALL": {}})
    script = "".join(ctx["check_lines"])
    x = torch.randn(2, 64).to(torch.bfloat16)
    scale = (x.float().abs().max() / torch.finfo(torch.float8_e4m3fn).max).view(1)
    q = (x.float() * (1.0 / scale)).clamp(-448, 448).to(torch.float8_e4m3fn)
    (tmp_path / "manifest.txt").write_text("config SMALL\nbuffer s0 out 1 128 c10::Float8_e4m3fn\n"
                                           "buffer s1 in 2 128 c10::BFloat16\nbuffer s2 out 4 64 float\n")
    nan_scale = torch.full((64,), float("nan"))
    _write(tmp_path, "s0", "in", torch.full((128,), 0x7F, dtype=torch.uint8))
    _write(tmp_path, "s1", "in", x)
    _write(tmp_path, "s2", "in", nan_scale)
    _write(tmp_path, "s0", "out", q.view(-1))
    _write(tmp_path, "s2", "out", torch.cat([scale, nan_scale[1:]]))
    rc, last = _run(tmp_path, script)
    assert rc == 0 and last.startswith("check=PASS") and "written=all" in last, last
    _write(tmp_path, "s2", "out", torch.cat([scale * 2, nan_scale[1:]]))
    rc, last = _run(tmp_path, script)
    assert rc == 1 and last.startswith("check=FAIL"), last


def test_script_round_trips_through_the_program(vllm_tree):
    from vkc.templating import render

    script = _host_script(vllm_tree)
    lines = [ln + "\n" for ln in script.splitlines()]
    program = render("vkc.invoke.cuda/check.cuh.j2", check_lines=lines)
    assert script_of(program) == "".join(lines)


def test_class_used_for_its_static_methods_is_extracted(vllm_tree):
    """RotaryEmbedding.forward_static calls ApplyRotaryEmb.forward_static: the class becomes a namespace of its
    extracted static methods, not a raising stub."""
    from vkc.reference.extract import extract_reference

    ex = extract_reference(vllm_tree.root, "vllm/model_executor/layers/rotary_embedding/base.py",
                           "RotaryEmbedding.forward_static", {})
    assert ex.stubs == () and "import types" in ex.imports
    assert "ApplyRotaryEmb = types.SimpleNamespace(forward_static=ApplyRotaryEmb_forward_static)" in ex.code
    ns: dict = {}
    exec("import torch\nimport types\n" + ex.code, ns)  # noqa: S102 - the extracted reference, as the example runs it
    q = torch.randn(3, 2 * 8)
    k = torch.randn(3, 8)
    cache = torch.randn(16, 8)
    rq, rk = ns["RotaryEmbedding_forward_static"](torch.tensor([0, 5, 15]), q, k, 8, 8, cache, True)
    assert rq.shape == q.shape and rk.shape == k.shape and not torch.equal(rq, q)


def test_host_row_view_reads_column_major_scales(vllm_tree, tmp_path):
    """per_token_group_quant_8bit_register_kernel writes its scales column-major ([rows, groups] at stride
    [1, rows]): the row's view reads them so; a row-major buffer is caught.  The row holds only for
    SCALE_UE8M0=false (the 4th template argument)."""
    import types

    key = "csrc/quantization/w8a8/fp8/per_token_group_quant.cu:per_token_group_quant_8bit_register_kernel"
    bufs = [types.SimpleNamespace(name="input", ctype="c10::BFloat16"),
            types.SimpleNamespace(name="output_q", ctype="c10::Float8_e4m3fn"),
            types.SimpleNamespace(name="output_s", ctype="float")]
    targs = ("c10::BFloat16", "c10::Float8_e4m3fn", "true", "false")
    from vkc.invoke.cuda.refcheck import host_check

    plan = types.SimpleNamespace(buffers=bufs, wrapper="x.cu:352 (per_token_group_quant_8bit)", template_args=targs)
    found, ctx, _fields = host_check(vllm_tree, key, plan, "model-traced", "k")
    assert found.reference is not None, found.reason
    assert [p["name"] for p in ctx["poison"]] == ["output_q", "output_s"]
    ue8m0 = types.SimpleNamespace(**{**vars(plan), "template_args": targs[:3] + ("true",)})
    assert host_check(vllm_tree, key, ue8m0, "model-traced", "k")[0].reference is None
    rows, hidden, group = 4, 256, 128
    x = (torch.rand(rows, hidden) * 6 - 3).to(torch.bfloat16)
    xg = x.float().reshape(-1, group)
    s = (xg.abs().amax(-1, keepdim=True).clamp(min=1e-10) / 448.0)
    q = (xg / s).clamp(-448, 448).to(torch.float8_e4m3fn).reshape(rows, hidden)
    s = s.reshape(rows, hidden // group)
    (tmp_path / "manifest.txt").write_text(
        f"scale num_tokens_ll {rows}\nbuffer input in 2 {rows * hidden} c10::BFloat16\n"
        f"buffer output_q out 1 {rows * hidden} c10::Float8_e4m3fn\nbuffer output_s out 4 {s.numel()} float\n"
        f"value hidden_size {hidden}\nvalue group_size {group}\nvalue eps 1e-10\nvalue groups_per_row {hidden // group}\n")
    _write(tmp_path, "input", "in", x)
    _write(tmp_path, "output_q", "in", torch.zeros(rows * hidden, dtype=torch.uint8))
    _write(tmp_path, "output_s", "in", torch.zeros(s.numel()))
    _write(tmp_path, "output_q", "out", q)
    _write(tmp_path, "output_s", "out", s.t().contiguous())     # column-major, as the kernel writes it
    script = "".join(ctx["check_lines"])
    rc, last = _run(tmp_path, script)
    assert rc == 0 and last.startswith("check=PASS"), last
    _write(tmp_path, "output_s", "out", s.contiguous())          # row-major: the wrong layout
    rc, last = _run(tmp_path, script)
    assert rc == 1 and last.startswith("check=FAIL"), last


_F = torch.nn.functional
# (kernel, wrapper, gated, the op's result computed here independently of the extracted reference)
_ACTIVATIONS = (
    ("act_and_mul_kernel", "mul_and_silu", True, lambda a, b: a * _F.silu(b)),
    ("act_and_mul_kernel", "gelu_and_mul", True, lambda a, b: _F.gelu(a) * b),
    ("act_and_mul_kernel", "gelu_tanh_and_mul", True, lambda a, b: _F.gelu(a, approximate="tanh") * b),
    ("activation_kernel", "gelu_quick", False, lambda x: x * torch.sigmoid(1.702 * x)),
    ("activation_kernel", "gelu_new", False, lambda x: _F.gelu(x, approximate="tanh")),
    ("activation_kernel", "gelu_fast", False, lambda x: _F.gelu(x, approximate="tanh")),
    ("activation_kernel", "relu_squared", False, lambda x: _F.relu(x) ** 2),
)


def _call_row(ref, a, v):
    """The row's reference called as the check script calls it: its code run in a fresh namespace, the arguments
    the row's expressions over ``a`` / ``v`` / ``ns``."""
    env: dict = {"torch": torch, "types": types}
    exec("\n".join([*ref.imports, ref.code]), env)  # noqa: S102 -- the extracted reference, as the check runs it
    names = {"a": a, "v": v, "ns": types.SimpleNamespace, "torch": torch}
    return env[ref.entry](*(eval(expr, dict(names)) for _n, expr in ref.spec.args))


@pytest.mark.parametrize(("kernel", "wrapper", "gated", "fn"), _ACTIVATIONS, ids=[w for _k, w, _g, _f in _ACTIVATIONS])
def test_activation_rows_compute_the_op(vllm_tree, kernel, wrapper, gated, fn):
    """Each activation row (recipe path) against the op computed here in float32: equal within vLLM's float32
    defaults; the recipe's flat input is viewed as [tokens, (2 *) d] by the row."""
    found = find_cuda_reference(vllm_tree, f"csrc/activation_kernels.cu:{kernel}", mode="model-traced",
                                wrapper=f"csrc/activation_kernels.cu:1 ({wrapper} via LAUNCH)")
    assert found.reference is not None, found.reason
    d_, t = 64, 3
    x = torch.rand(t, (2 if gated else 1) * d_) * 6 - 3
    got = _call_row(found.reference, {"input": x.reshape(-1)}, {"d": d_})
    want = fn(x[:, :d_], x[:, d_:]) if gated else fn(x)
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1.3e-6)
    assert not torch.allclose(got, fn(x[:, d_:], x[:, :d_]) if gated else -want)


def test_grouped_topk_row_is_the_sorted_native_path(vllm_tree):
    """grouped_topk's native path as the row binds it (torch path, sorted): with one group it is the top-k of
    sigmoid(x) + bias in descending order, the weights the unbiased sigmoids renormalised; with groups only the
    best topk_group groups (by their two best biased scores) contribute."""
    wrapper = "csrc/moe/grouped_topk_kernels.cu:1280 (invokeNoAuxTc, from grouped_topk at x)"
    found = find_cuda_reference(vllm_tree, "csrc/moe/grouped_topk_kernels.cu:grouped_topk_fused_small_expert_count_kernel",
                                mode="recipe", wrapper=wrapper)
    assert found.reference is not None, found.reason
    torch.manual_seed(0)
    x, bias = torch.randn(5, 16), torch.randn(16) * 0.1
    v = {"num_experts": 16, "topk": 3, "renormalize": 1, "n_group": 1, "topk_group": 1, "routed_scaling_factor": 1.0}
    w, ids = _call_row(found.reference, {"scores": x.reshape(-1), "bias": bias}, v)
    want_ids = torch.topk(x.sigmoid() + bias, 3, dim=-1).indices
    assert ids.dtype == torch.int32 and torch.equal(ids.long(), want_ids)
    sig = x.sigmoid().gather(1, want_ids)
    torch.testing.assert_close(w, sig / sig.sum(-1, keepdim=True))
    _w4, ids4 = _call_row(found.reference, {"scores": x.reshape(-1), "bias": bias}, {**v, "n_group": 4, "topk_group": 1})
    best = ((x.sigmoid() + bias).view(5, 4, 4).topk(2, dim=-1).values.sum(-1)).argmax(-1)
    assert torch.equal(ids4.long() // 4, best[:, None].expand(5, 3))
    softmax = find_cuda_reference(vllm_tree, "csrc/moe/grouped_topk_kernels.cu:grouped_topk_fused_small_expert_count_kernel",
                                  mode="recipe", wrapper=wrapper, values={"template_arg3": "vllm::moe::SCORING_NONE"})
    assert softmax.reference is None and "SCORING_SIGMOID" in softmax.reason
    general = "csrc/moe/grouped_topk_kernels.cu:grouped_topk_fused_kernel"   # ids differ on an H200: no row
    assert find_cuda_reference(vllm_tree, general, mode="recipe", wrapper=wrapper).reference is None


def test_buffer_types_named_by_a_template_alias(vllm_tree):
    """A recipe's buffers typed by its program's ``using IdxT = int32_t;`` (invokeNoAuxTc's template aliases): the
    check reads them as their aliased type, not as bytes."""
    from vkc.invoke.cuda.plan import Stmt
    from vkc.invoke.cuda.refcheck import _aliases

    plan = types.SimpleNamespace(consts=(Stmt("using T = __nv_bfloat16;"), Stmt("using IdxT = int32_t;"),
                                         Stmt("const int64_t topk = 8;")), derived=(), launch_stmts=())
    assert _aliases(plan) == {"T": "__nv_bfloat16", "IdxT": "int32_t"}
    found = find_cuda_reference(vllm_tree, "csrc/moe/grouped_topk_kernels.cu:grouped_topk_fused_small_expert_count_kernel",
                                mode="recipe", wrapper="(invokeNoAuxTc)")
    ctx = check_context(found, name="k", mode="host", out_dtypes={"topk_values": ["float32"], "topk_indices": ["int32"]},
                        aliases=_aliases(plan))
    script = "".join(ctx["check_lines"])
    assert "'IdxT': 'int32'" in script and "'T': 'bfloat16'" in script
