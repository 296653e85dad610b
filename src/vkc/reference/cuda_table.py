"""The CUDA mapping table: a CUDA example's buffers -> vLLM's PyTorch reference (data only).

Two kinds of row, by the example's path:

* a **wrapper-compiled** example (``wrapped.cu.j2``: vLLM's host function of an op called with one traced
  op call's tensors) is keyed by the op, ``_C::rms_norm``: ``a`` holds the op's arguments by schema name
  -- tensors as the traced views (dtype, sizes, strides, storage offset) of the dumped storages, the rest
  as their traced (or schema-default) Python values;
* a **recipe** example (``host.cu.j2``: the kernel launched with the wrapper's own expressions) is keyed
  by the kernel, ``csrc/layernorm_kernels.cu:rms_norm_kernel``, and holds only for ``wrapper`` (the
  recipe's wrapper function, from the plan): ``a`` holds the device buffers by host variable name (flat,
  typed by the element type) and ``v`` the scalars the row names in ``values`` (C++ expressions the program
  writes to its dump manifest), so the shapes are spelled in the argument expressions.

An :class:`~vkc.reference.records.Output` names the buffer (schema argument / host variable) compared
against element ``index`` of the reference's result; ``view`` picks the compared part of it (``t``: the
buffer after the launch).  Tolerances as for Triton: the test's own literals (``tolerance_at`` checked
against the tree), else ``vllm/ir/tolerances.py``.
"""
from __future__ import annotations

from vkc.reference.records import Output, RefSpec

_ACT = "vllm/model_executor/layers/activation.py"
_TQ = "tests/kernels/quant_utils.py"
_I8 = "tests/kernels/quantization/test_int8_quant.py"
_BF8 = "tests/kernels/quantization/test_block_fp8.py"
_ROPE = "vllm/model_executor/layers/rotary_embedding/base.py"
# query / key of the recipe's fused qkv row [T, (H_q + 2 H_kv) * Dh]
_Q = "{x}.view(-1, int(v['row']))[:, :int(v['num_heads']) * int(v['head_size'])]"
_K = ("{x}.view(-1, int(v['row']))[:, int(v['num_heads']) * int(v['head_size']):"
      "(int(v['num_heads']) + int(v['num_kv_heads'])) * int(v['head_size'])]")
_TOPK = "tests/kernels/moe/test_fused_topk.py"
_DEVICE = "'cuda' if torch.cuda.is_available() else 'cpu'"
# what vLLM's platform answers on an H100 (CUDA, fp8 e4m3fn): the reference's only platform queries
_H100 = ("types.SimpleNamespace(is_fp8_fnuz=lambda: False, fp8_dtype=lambda: torch.float8_e4m3fn, "
         "device_type=" + _DEVICE + ")")
_TOPK_TOL = (("topk_weights", (1e-2, 1e-2), f"{_TOPK}:87"), ("topk_indices", (0.0, 0.0), f"{_TOPK}:89"))

# the CUDA platform's answer to the one query GeluAndMul.forward_native makes (activation.py:451)
_NOT_ROCM = "types.SimpleNamespace(is_rocm=lambda: False)"
# (host function, activation.py class, its forward_native's ``self``, bind) of the gated activations that launch
# act_and_mul_kernel (csrc/activation_kernels.cu:299-339, LAUNCH_ACTIVATION_GATE_KERNEL) and the element-wise ones
# that launch activation_kernel (csrc/activation_kernels.cu:1402-1423, LAUNCH_ACTIVATION_KERNEL); the CustomOp's
# forward_cuda calls the host function (activation.py:137-146, 283-298, 436-462, 566-642, 662-672)
_GATED: tuple[tuple[str, str, str, tuple[tuple[str, str], ...]], ...] = (
    ("mul_and_silu", "MulAndSilu", "ns()", ()),
    ("gelu_and_mul", "GeluAndMul", "ns(approximate='none')", (("current_platform", _NOT_ROCM),)),
    ("gelu_tanh_and_mul", "GeluAndMul", "ns(approximate='tanh')", (("current_platform", _NOT_ROCM),)),
)
_ELEMENTWISE: tuple[tuple[str, str], ...] = (
    ("gelu_new", "NewGELU"), ("gelu_fast", "FastGELU"), ("gelu_quick", "QuickGELU"),
    ("relu_squared", "ReLUSquaredActivation"),
)
_ACT_NOTE = ("{cls}.forward_cuda calls torch.ops._C.{op}(out, x); tests/kernels/core/test_activation.py compares the "
             "op against forward_native ({how}): vLLM's per-dtype defaults apply")

_GTK = "vllm/model_executor/layers/fused_moe/router/grouped_topk_router.py"
_TGTK = "tests/kernels/moe/test_grouped_topk.py"
# the environment tests/kernels/moe/test_grouped_topk.py:148-150 runs grouped_topk's native path under: the fused
# kernel off (the torch path), VLLM_BATCH_INVARIANT on (topk sorted=True: the kernel's order); the platform queries
# of its decorator (grouped_topk_router.py:76-80) answered as on CUDA
_GTK_BIND = (("envs", "types.SimpleNamespace(VLLM_USE_FUSED_MOE_GROUPED_TOPK=False, VLLM_BATCH_INVARIANT=True)"),
             ("fused_grouped_topk", "None"))   # the fused path, not taken with the flag off

CUDA_SPECS: tuple[RefSpec, ...] = (
    # ---- recipe examples (host.cu.j2), keyed by kernel and wrapper
    RefSpec(
        kernel="csrc/activation_kernels.cu:act_and_mul_kernel", wrapper="silu_and_mul",
        source="forward_native", file=_ACT, function="SiluAndMul.forward_native",
        args=(("x", "a['input'].view(-1, 2 * v['d'])"),),
        outputs=(Output("out"),), values=("d",),
        note="SiluAndMul.forward_cuda calls torch.ops._C.silu_and_mul(out, x): the kernel's silu_and_mul "
             "instantiation (ACT_FIRST, no clamp)"),
    RefSpec(
        kernel="csrc/activation_kernels.cu:swigluoai_and_mul_kernel", wrapper="swigluoai_and_mul",
        source="forward_native", file=_ACT, function="SwigluOAIAndMul.forward_native",
        args=(("self", "ns(alpha=v['alpha'], limit=v['limit'])"), ("x", "a['input'].view(-1, 2 * v['d'])")),
        outputs=(Output("out"),), values=("d", "alpha", "limit"),
        note="SwigluOAIAndMul.forward_cuda calls torch.ops._C.swigluoai_and_mul(out, x, alpha, limit)"),
    *(RefSpec(
        kernel="csrc/activation_kernels.cu:act_and_mul_kernel", wrapper=op,
        source="forward_native", file=_ACT, function=f"{cls}.forward_native",
        args=(("self", slf), ("x", "a['input'].view(-1, 2 * v['d'])")),
        outputs=(Output("out"),), values=("d",), bind=bind,
        note=_ACT_NOTE.format(cls=cls, op=op, how="at atol=rtol=0, test_activation.py:210"))
      for op, cls, slf, bind in _GATED),
    *(RefSpec(
        kernel="csrc/activation_kernels.cu:activation_kernel", wrapper=op,
        source="forward_native", file=_ACT, function=f"{cls}.forward_native",
        args=(("self", "ns()"), ("x", "a['input'].view(-1, v['d'])")),
        outputs=(Output("out"),), values=("d",),
        note=_ACT_NOTE.format(cls=cls, op=op, how="at the default atol/rtol, test_activation.py:492"))
      for op, cls in _ELEMENTWISE),
    RefSpec(
        kernel="csrc/layernorm_kernels.cu:rms_norm_kernel", wrapper="rms_norm",
        source="ir-native", file="vllm/ir/ops/layernorm.py", function="rms_norm", ir_op="rms_norm",
        args=(("x", "a['input'].view(-1, int(v['hidden_size']))"), ("weight", "a['weight']"),
              ("epsilon", "v['epsilon']")),
        outputs=(Output("out"),), values=("hidden_size", "epsilon"),
        note="the IR op rms_norm, whose CUDA implementation is torch.ops._C.rms_norm (this kernel)"),
    *(RefSpec(
        kernel=f"csrc/layernorm_kernels.cu:fused_add_rms_norm_kernel@{line}", wrapper="fused_add_rms_norm",
        source="ir-native", file="vllm/ir/ops/layernorm.py", function="fused_add_rms_norm", ir_op="fused_add_rms_norm",
        args=(("x", "a['input'].view(-1, int(v['hidden_size']))"),
              ("x_residual", "a['residual'].view(-1, int(v['hidden_size']))"), ("weight", "a['weight']"),
              ("epsilon", "v['epsilon']")),
        outputs=(Output("input", 0, poison=False), Output("residual", 1, poison=False)),
        values=("hidden_size", "epsilon"),
        note="the IR op fused_add_rms_norm (CUDA: torch.ops._C.fused_add_rms_norm, in place on input and "
             "residual: both compared, neither poisoned)") for line in (107, 180)),
    RefSpec(
        kernel="csrc/moe/topk_softmax_kernels.cu:topkGating", wrapper="topk_softmax",
        source="test-reference", file=_TOPK, function="torch_topk",
        args=(("gating_output", "a['gating_output'].view(-1, int(v['num_experts']))"), ("topk", "int(v['topk'])"),
              ("renormalize", "bool(v['renormalize'])"), ("e_score_correction_bias", "None"),
              ("scoring_func", "'softmax'")),
        outputs=tuple(Output(p, i, tol=tol, tol_at=at) for i, (p, tol, at) in enumerate(_TOPK_TOL)),
        values=("num_experts", "topk", "renormalize"),
        note="torch_topk is what tests/kernels/moe/test_fused_topk.py compares fused_topk (topk_softmax) "
             "against; token_expert_indices is not compared"),
    RefSpec(
        kernel="csrc/pos_encoding_kernels.cu:rotary_embedding_kernel", wrapper="rotary_embedding",
        source="forward_native", file=_ROPE, function="RotaryEmbedding.forward_static",
        args=(("positions", "a['positions']"), ("query", _Q.format(x="a['qkv']")), ("key", _K.format(x="a['qkv']")),
              ("head_size", "int(v['head_size'])"), ("rotary_dim", "int(v['rot_dim'])"),
              ("cos_sin_cache", "a['cos_sin_cache'].view(-1, int(v['rot_dim']))"),
              ("is_neox_style", "v['template_args'][2] == 'true'")),
        outputs=(Output("qkv", 0, poison=False, view=_Q.format(x="t")), Output("qkv", 1, poison=False, view=_K.format(x="t"))),
        values=("row", "num_heads", "num_kv_heads", "head_size", "rot_dim"),
        note="RotaryEmbedding.forward_native is forward_static with the layer's attributes; the recipe launches "
             "with rope_dim_offset=0 and inverse=false (the forward rotation forward_static computes), query and "
             "key as views of one qkv row (in place: compared, not poisoned; the value part is not compared); "
             "is_neox_style is the instantiation's third template argument"),
    RefSpec(
        kernel="csrc/quantization/w8a8/fp8/per_token_group_quant.cu:per_token_group_quant_8bit_register_kernel",
        wrapper="per_token_group_quant_8bit", source="test-reference", file=_TQ,
        function="native_per_token_group_quant_fp8",
        args=(("x", "a['input'].view(-1, int(v['hidden_size']))"), ("group_size", "int(v['group_size'])"),
              ("eps", "v['eps']"), ("dtype", "a['output_q'].dtype")),
        outputs=(Output("output_q", 0, tol=(1e-8, 0.15), tol_at=f"{_BF8}:120"),
                 Output("output_s", 1, tol=(1e-8, 1e-5), tol_at=f"{_BF8}:122",
                        view="t.view(int(v['groups_per_row']), -1).t() if v['template_args'][2] == 'true' "
                             "else t.view(-1, int(v['groups_per_row']))")),
        values=("hidden_size", "group_size", "eps", "groups_per_row"),
        requires=(("template_arg3", "false"),),
        bind=(("is_deep_gemm_e8m0_used", "lambda: False"),),
        note="the reference tests/kernels/quantization/test_block_fp8.py compares per_token_group_quant_fp8 against; "
             "the instantiation's SCALE_UE8M0 (4th template argument) is false, so is_deep_gemm_e8m0_used() is "
             "bound to False; output_s is read column-major when IS_COLUMN_MAJOR (3rd) is true"),
    RefSpec(
        kernel="csrc/quantization/w8a8/int8/scaled_quant.cu:dynamic_scaled_int8_quant_kernel",
        wrapper="dynamic_scaled_int8_quant", source="test-reference", file=_TQ, function="ref_dynamic_per_token_quant",
        args=(("x", "a['input'].view(-1, int(v['hidden_size']))"), ("quant_dtype", "torch.int8")),
        outputs=(Output("output", 0, tol=(1.0, 0.0), tol_at=f"{_I8}:60"), Output("scale_out", 1)),
        values=("hidden_size",), bind=(("current_platform", _H100), ("DEVICE", _DEVICE)),
        note="tests/kernels/quantization/test_int8_quant.py:test_dynamic_scaled_int8_quant compares the int8 "
             "output at atol=1 (rounding) and the scales with assert_close's defaults (vLLM's float32 defaults)"),
    *(RefSpec(
        kernel=f"csrc/moe/grouped_topk_kernels.cu:{kernel}", wrapper="invokeNoAuxTc",
        source="forward_native", file=_GTK, function="grouped_topk",
        args=(("hidden_states", "a['scores'].view(-1, int(v['num_experts']))"),
              ("gating_output", "a['scores'].view(-1, int(v['num_experts'])).float()"), ("topk", "int(v['topk'])"),
              ("renormalize", "bool(v['renormalize'])"), ("num_expert_group", "int(v['n_group'])"),
              ("topk_group", "int(v['topk_group'])"), ("scoring_func", "'sigmoid'"),
              ("routed_scaling_factor", "float(v['routed_scaling_factor'])"),
              ("e_score_correction_bias", "a['bias']")),
        outputs=(Output("topk_values", 0, tol=(2e-2, 0.0), tol_at=f"{_TGTK}:180"),
                 Output("topk_indices", 1, tol=(0.0, 0.0), tol_at=f"{_TGTK}:182")),
        values=("num_experts", "topk", "renormalize", "n_group", "topk_group", "routed_scaling_factor"),
        requires=(("template_arg3", "vllm::moe::SCORING_SIGMOID"),), bind=_GTK_BIND,
        note="grouped_topk (GroupedTopk.forward_native's native_impl) is what tests/kernels/moe/test_grouped_topk.py "
             "compares fused_grouped_topk (_moe_C::grouped_topk -> invokeNoAuxTc) against; sigmoid scoring only "
             "(fused_grouped_topk passes raw logits then, grouped_topk_router.py:42-53; with softmax it passes "
             "scores it computed, which the native path would softmax again); the gating tensor stands for "
             "hidden_states too (only its row count is read); the scores are passed upcast to float32, as the "
             "kernel reads them (static_cast<float>, grouped_topk_kernels.cu:690): with bf16 scores the native "
             "path rounds sigmoid(x) to bf16 before adding the float bias, which reorders near-tied experts "
             "(seen on an H200: DeepSeek-V3's 256 experts, bias within +-0.05, ids differed in most rows)")
      # not grouped_topk_fused_kernel (invokeNoAuxTc's general path): on an H200 at DeepSeek-V3's sizes its
      # topk_indices differ from the native path in most rows at SMALL and FULL (weights within 2e-2), so the
      # mapping is not known to hold for it (the order or the set of its ids; not diagnosed)
      for kernel in ("grouped_topk_fused_small_expert_count_kernel",)),
    # ---- wrapper-compiled examples (wrapped.cu.j2), keyed by op
    RefSpec(
        kernel="_C::dynamic_scaled_int8_quant", source="test-reference", file=_TQ,
        function="ref_dynamic_per_token_quant",
        args=(("x", "a['input']"), ("quant_dtype", "torch.int8")),
        outputs=(Output("result", 0, tol=(1.0, 0.0), tol_at=f"{_I8}:60"), Output("scale", 1)),
        requires=(("azp", None),), bind=(("current_platform", _H100), ("DEVICE", _DEVICE)),
        note="symmetric calls only (azp None): tests/kernels/quantization/test_int8_quant.py:"
             "test_dynamic_scaled_int8_quant"),
    RefSpec(
        kernel="_C::rotary_embedding", source="forward_native", file=_ROPE, function="RotaryEmbedding.forward_static",
        args=(("positions", "a['positions']"), ("query", "a['query']"), ("key", "a['key']"),
              ("head_size", "a['head_size']"), ("rotary_dim", "a['cos_sin_cache'].shape[1]"),
              ("cos_sin_cache", "a['cos_sin_cache']"), ("is_neox_style", "a['is_neox']")),
        outputs=(Output("query", 0, poison=False), Output("key", 1, poison=False)),
        requires=(("rope_dim_offset", 0), ("inverse", False)),
        note="RotaryEmbedding.forward_cuda calls ops.rotary_embedding(positions, query, key, head_size, "
             "cos_sin_cache, is_neox) in place (compared, not poisoned)"),
    *(RefSpec(
        kernel=f"_C::{op}", source="forward_native", file=_ACT, function=f"{cls}.forward_native",
        args=(("self", slf), ("x", "a['input']")), outputs=(Output("out"),), bind=bind,
        note=_ACT_NOTE.format(cls=cls, op=op, how="at atol=rtol=0, test_activation.py:210"))
      for op, cls, slf, bind in (("silu_and_mul", "SiluAndMul", "ns()", ()), *_GATED)),
    *(RefSpec(
        kernel=f"_C::{op}", source="forward_native", file=_ACT, function=f"{cls}.forward_native",
        args=(("self", "ns()"), ("x", "a['input']")), outputs=(Output("out"),),
        note=_ACT_NOTE.format(cls=cls, op=op, how="at the default atol/rtol, test_activation.py:492"))
      for op, cls in _ELEMENTWISE),
    RefSpec(
        kernel="_C::fatrelu_and_mul", source="forward_native", file=_ACT, function="FatreluAndMul.forward_native",
        args=(("self", "ns(threshold=a['threshold'])"), ("x", "a['input']")), outputs=(Output("out"),),
        note=_ACT_NOTE.format(cls="FatreluAndMul", op="fatrelu_and_mul(out, x, threshold); its launch is "
                              "act_and_mul_kernel_with_param", how="at atol=rtol=0, test_activation.py:210")),
    RefSpec(
        kernel="_C::swigluoai_and_mul", source="forward_native", file=_ACT, function="SwigluOAIAndMul.forward_native",
        args=(("self", "ns(alpha=a['alpha'], limit=a['limit'])"), ("x", "a['input']")), outputs=(Output("out"),),
        note="SwigluOAIAndMul.forward_cuda calls torch.ops._C.swigluoai_and_mul(out, x, alpha, limit); vLLM's "
             "per-dtype defaults (the test's own rtol table, test_activation.py:193, states no atol)"),
    RefSpec(
        kernel="_C::dynamic_scaled_fp8_quant", source="test-reference", file=_TQ,
        function="ref_dynamic_per_tensor_fp8_quant",
        args=(("x", "a['input']"),), outputs=(Output("result", 0), Output("scale", 1)),
        bind=(("current_platform", _H100), ("DEVICE", _DEVICE)),
        note="tests/kernels/quantization/test_fp8_quant.py compares ops.scaled_fp8_quant against it with "
             "assert_close's defaults (no literal atol/rtol): vLLM's per-dtype defaults apply; current_platform "
             "bound to an H100's answers (fp8 e4m3fn, not fnuz)"),
    RefSpec(
        kernel="_C::dynamic_per_token_scaled_fp8_quant", source="test-reference", file=_TQ,
        function="ref_dynamic_per_token_quant",
        args=(("x", "a['input']"), ("quant_dtype", "a['result'].dtype"), ("scale_ub", "a['scale_ub']")),
        outputs=(Output("result", 0), Output("scale", 1)),
        bind=(("current_platform", _H100), ("DEVICE", _DEVICE)),
        note="tests/kernels/quantization/test_fp8_quant.py compares against it with assert_close's defaults: "
             "vLLM's per-dtype defaults apply; current_platform bound to an H100's answers"),
    RefSpec(
        kernel="_moe_C::topk_softmax", source="test-reference", file=_TOPK, function="torch_topk",
        args=(("gating_output", "a['gating_output']"), ("topk", "a['topk_weights'].shape[-1]"),
              ("renormalize", "a['renormalize']"), ("e_score_correction_bias", "a['bias']"),
              ("scoring_func", "'softmax'")),
        outputs=tuple(Output(p, i, tol=tol, tol_at=at) for i, (p, tol, at) in enumerate(_TOPK_TOL)),
        requires=(("is_padding", None),),
        note="torch_topk is what tests/kernels/moe/test_fused_topk.py compares fused_topk (topk_softmax) "
             "against; token_expert_indices is not compared"),
)

__all__ = ["CUDA_SPECS"]
