"""The mapping table: kernel -> vLLM's PyTorch reference, argument mapping, outputs, tolerances.

Data only.  Argument expressions are Python over ``a`` (the kernel's runtime arguments by
parameter name: the wrapper-level tensors of a traced launch, or scalars), ``c`` (its
constexprs), ``ns`` (``types.SimpleNamespace``, the ``self`` of a ``forward_native``) and
``torch``.  A row holds only where its ``requires`` hold in every configuration of the launch.
``REFUSED`` names kernels looked at and refused, with the reason (a reference exists nowhere in
vLLM's own code, or it computes something else than one launch of the kernel).
"""
from __future__ import annotations

from vkc.reference.records import Output, RefSpec

_TQ = "tests/kernels/quant_utils.py"
_CONV = "tests/kernels/mamba/test_causal_conv1d.py"
_DEVICE = "'cuda' if torch.cuda.is_available() else 'cpu'"
_UNIFIED_OFF = ("IS_3D", "USE_FP8", "Q_IS_FP8", "USE_SINKS", "USE_ALIBI_SLOPES", "USE_ALIBI_SQRT", "USE_QQ_BIAS",
                "USE_MM_PREFIX", "USE_R_SWA", "USE_PER_SEQ_CAUSAL", "USE_TD", "USE_TD_QO")

SPECS: tuple[RefSpec, ...] = (
    RefSpec(
        kernel="vllm.kernels.triton.activation:_gelu_and_mul_sparse_kernel",
        source="ir-native", file="vllm/ir/ops/activation.py", function="gelu_and_mul_sparse", ir_op="gelu_and_mul_sparse",
        args=(("x", "a['x_ptr']"), ("std_multiplier", "a['std_multiplier']"), ("approximate", "'tanh'")),
        outputs=(Output("output_ptr"),),
        note="the kernel is the IR op's registered 'triton' implementation (approximate='tanh' only)"),
    RefSpec(
        kernel="vllm.model_executor.layers.activation:_swiglustep_and_mul_kernel",
        source="forward_native", file="vllm/model_executor/layers/activation.py",
        function="SwigluStepAndMul.forward_native",
        args=(("self", "ns(limit=c['limit'])"), ("x", "a['x_ptr']")),
        outputs=(Output("o_ptr"),),
        note="SwigluStepAndMul.forward_cuda launches the kernel through swiglustep_and_mul_triton"),
    RefSpec(
        kernel="vllm.v1.attention.ops.triton_merge_attn_states:merge_attn_states_kernel",
        source="test-reference", file="tests/kernels/attention/test_merge_attn_states.py",
        function="merge_attn_states_torch",
        args=(("output", "a['output']"), ("prefix_output", "a['prefix_output']"), ("prefix_lse", "a['prefix_lse']"),
              ("suffix_output", "a['suffix_output']"), ("suffix_lse", "a['suffix_lse']"),
              ("output_lse", "a['output_lse']"),
              ("prefill_tokens_with_context", "a['prefill_tokens_with_context']"), ("output_scale", "None")),
        outputs=(Output("output", 0),),
        requires=(("USE_FP8", False),),
        tolerance=(("bfloat16", 1e-3, 1e-2), ("default", 1e-3, 1e-3)),
        tolerance_at=("tests/kernels/attention/test_merge_attn_states.py:358",
                      "tests/kernels/attention/test_merge_attn_states.py:361"),
        note="output_lse is not compared: the reference's `output_lse[prefill_tokens_with_context:] = ...` "
             "slices the head axis of the [NUM_HEADS, NUM_TOKENS] LSE by a token count (a bug in vLLM's test "
             "reference, seen whenever num_tokens < num_heads; vLLM's test never compares the torch LSE)"),
    RefSpec(
        kernel="vllm.v1.attention.ops.triton_unified_attention:kernel_unified_attention",
        source="test-reference", file="tests/kernels/attention/test_triton_unified_attention.py",
        function="ref_paged_attn",
        args=(("query", "a['query_ptr']"), ("key_cache", "a['key_cache_ptr']"), ("value_cache", "a['value_cache_ptr']"),
              ("query_lens", "torch.diff(a['query_start_len_ptr'][:a['num_seqs'] + 1]).tolist()"),
              ("kv_lens", "a['seq_lens_ptr'][:a['num_seqs']].tolist()"),
              ("block_tables", "a['block_tables_ptr']"), ("scale", "a['scale']"),
              ("sliding_window", "c['SLIDING_WINDOW'] or None"),
              ("soft_cap", "a['softcap'] if c['USE_SOFTCAP'] else None")),
        outputs=(Output("output_ptr"),),
        requires=tuple((k, False) for k in _UNIFIED_OFF) + (("USE_CAUSAL", True), ("KV_QUANT_MODE", 0),
                                                             ("CHUNK_SIZE", -1)),
        tolerance=(("default", 1.5e-2, 1e-2),),
        tolerance_at=("tests/kernels/attention/test_triton_unified_attention.py:787",),
        note="the 2D path only (IS_3D=False): the 3D path writes split-KV partials that reduce_segments merges"),
    RefSpec(
        kernel="vllm.v1.attention.ops.chunked_prefill_paged_decode:kernel_paged_attention_2d",
        source="test-reference", file="tests/kernels/attention/test_triton_unified_attention.py",
        function="ref_paged_attn",
        args=(("query", "a['query_ptr']"),
              ("key_cache", "a['key_cache_ptr'].permute(0, 3, 1, 2, 4).flatten(3).contiguous()"),
              ("value_cache", "a['value_cache_ptr'].permute(0, 3, 1, 2).contiguous()"),
              ("query_lens", "torch.diff(a['query_start_len_ptr']).tolist()"),
              ("kv_lens", "a['seq_lens_ptr'].tolist()"),
              ("block_tables", "a['block_tables_ptr']"), ("scale", "a['scale']"),
              ("sliding_window", "c['SLIDING_WINDOW'] or None"), ("soft_cap", "None")),
        outputs=(Output("output_ptr"),),
        requires=(("USE_ALIBI_SLOPES", False), ("USE_SINKS", False), ("USE_FP8", False),
                  ("INTERLEAVED_V_PACK_FACTOR", 0)),
        tolerance=(("default", 1.5e-2, 1e-2),),
        tolerance_at=("tests/kernels/attention/test_triton_unified_attention.py:787",),
        note="ref_paged_attn is the paged-attention reference of vLLM's unified-attention test; this kernel is the "
             "decode half of chunked_prefill_paged_decode (5-D key cache [blocks, kv_heads, head_size/x, block, x] "
             "and 4-D value cache [blocks, kv_heads, head_size, block] permuted to the reference's layout); with "
             "filter_by_query_len it writes only the rows of query_len 1 sequences"),
    RefSpec(
        kernel="vllm.model_executor.layers.quantization.utils.fp8_utils:_per_token_group_quant_fp8",
        source="test-reference", file=_TQ, function="native_per_token_group_quant_fp8",
        args=(("x", "a['y_ptr']"), ("group_size", "a['group_size']"), ("eps", "a['eps']"),
              ("dtype", "a['y_q_ptr'].dtype")),
        outputs=(Output("y_q_ptr", 0, tol=(1e-8, 0.15), tol_at="tests/kernels/quantization/test_block_fp8.py:120"),
                 Output("y_s_ptr", 1, tol=(1e-8, 1e-5), tol_at="tests/kernels/quantization/test_block_fp8.py:122")),
        requires=(("use_ue8m0", False),),
        bind=(("is_deep_gemm_e8m0_used", "lambda: False"),),
        note="is_deep_gemm_e8m0_used() bound to False: the launch's use_ue8m0 is False"),
    RefSpec(
        kernel="vllm.model_executor.layers.quantization.utils.fp8_utils:_w8a8_triton_block_scaled_mm",
        source="test-reference", file=_TQ, function="native_w8a8_block_matmul",
        args=(("A", "a['A']"), ("B", "a['B']"), ("As", "a['As']"), ("Bs", "a['Bs']"),
              ("block_size", "[a['group_n'], a['group_k']]"), ("output_dtype", "a['C'].dtype")),
        outputs=(Output("C"),),
        note="tests/kernels/quantization/test_block_fp8.py:154 compares by mean relative difference "
             "(< 0.001), no atol/rtol: vLLM's per-dtype defaults apply"),
    RefSpec(
        kernel="vllm.model_executor.layers.quantization.utils.int8_utils:_per_token_quant_int8",
        source="test-reference", file=_TQ, function="ref_dynamic_per_token_quant",
        args=(("x", "a['x_ptr']"), ("quant_dtype", "torch.int8")),
        outputs=(Output("xq_ptr", 0), Output("scale_ptr", 1)),
        bind=(("DEVICE", _DEVICE), ("FP8_DTYPE", "torch.float8_e4m3fn")),
        note="the reference vLLM's tests hold for dynamic per-token int8 quantization "
             "(tests/kernels/quantization/test_int8_quant.py, the CUDA op); int8 tolerance atol=1 from "
             "vllm/ir/tolerances.py"),
    RefSpec(
        kernel="vllm.model_executor.layers.mamba.ops.layernorm_gated:_layer_norm_fwd_1pass_kernel",
        source="test-reference", file="vllm/third_party/flash_linear_attention/ops/layernorm_guard.py",
        function="rms_norm_ref",
        args=(("x", "a['X']"), ("weight", "a['W']"), ("bias", "a['B']"), ("z", "a['Z']"), ("eps", "a['eps']"),
              ("group_size", "None if a['N'] == a['X'].shape[-1] else a['N']"),
              ("norm_before_gate", "c['NORM_BEFORE_GATE']"), ("upcast", "True")),
        outputs=(Output("Y"),),
        requires=(("IS_RMS_NORM", True),),
        tolerance=(("default", 1e-2, 1e-2),),
        tolerance_at=("tests/kernels/fla/test_fla_layernorm_guard.py:501",),
        note="rms_norm_ref is what tests/kernels/fla/test_fla_layernorm_guard.py compares the gated RMSNorm "
             "against (its Triton copy in the FLA ops and RMSNormGated.forward_native); this kernel is the "
             "Mamba2 copy of the same op. Rstd (also written) is not compared"),
    RefSpec(
        kernel="vllm.third_party.flash_linear_attention.ops.layernorm_guard:layer_norm_fwd_kernel",
        source="test-reference", file="vllm/third_party/flash_linear_attention/ops/layernorm_guard.py",
        function="rms_norm_ref",
        args=(("x", "a['X']"), ("weight", "a['W']"), ("bias", "a['B'] if c['HAS_BIAS'] else None"),
              ("z", "a['Z'] if c['HAS_Z'] else None"), ("eps", "a['eps']"),
              ("group_size", "None if c['N'] == a['X'].shape[-1] else c['N']"),
              ("norm_before_gate", "c['NORM_BEFORE_GATE']"), ("upcast", "True")),
        outputs=(Output("Y"),),
        requires=(("IS_RMS_NORM", True), ("ACTIVATION", "silu")),
        tolerance=(("default", 1e-2, 1e-2),),
        tolerance_at=("tests/kernels/fla/test_fla_layernorm_guard.py:501",),
        note="rms_norm_ref (layernorm_guard.py:36, beside the kernel) is what tests/kernels/fla/"
             "test_fla_layernorm_guard.py:491 compares layer_norm_fn (this kernel's launcher, layer_norm_fwd) "
             "against; the gate is silu in rms_norm_ref, so ACTIVATION='silu' only. Rstd (also written) is not "
             "compared"),
    RefSpec(
        kernel="vllm.model_executor.layers.mamba.ops.mamba_ssm:_selective_scan_update_kernel",
        source="test-reference", file="tests/kernels/mamba/utils.py", function="selective_state_update_ref",
        args=(("state", "a['state_ptr'][a['state_batch_indices_ptr'].reshape(-1)[:a['N']].long()]"),
              ("x", "a['x_ptr']"), ("dt", "a['dt_ptr']"), ("A", "a['A_ptr']"), ("B", "a['B_ptr']"),
              ("C", "a['C_ptr']"), ("D", "a['D_ptr']"), ("z", "a['z_ptr']"), ("dt_bias", "a['dt_bias_ptr']"),
              ("dt_softplus", "c['DT_SOFTPLUS']")),
        outputs=(Output("out_ptr"),),
        requires=(("IS_SPEC_DECODING", False), ("IS_VARLEN", False), ("USE_RS_ROUNDING", False),
                  ("HAS_STATE_BATCH_INDICES", True)),
        requires_tensor=("state_batch_indices_ptr",),
        tolerance=(("float32", 1e-3, 3e-4), ("float16", 1e-2, 5e-3), ("bfloat16", 5e-2, 1e-2)),
        tolerance_at=("tests/kernels/mamba/test_mamba_ssm.py:357", "tests/kernels/mamba/test_mamba_ssm.py:357",
                      "tests/kernels/mamba/test_mamba_ssm.py:359"),
        note="the state is gathered by state_batch_indices for the reference; the kernel's in-place state update "
             "(written back at dst_state_batch_indices) is not compared, only out"),
    RefSpec(
        kernel="vllm.model_executor.layers.mamba.ops.causal_conv1d:_causal_conv1d_update_kernel",
        source="test-reference", file=_CONV, function="causal_conv1d_update_ref",
        args=(("x", "a['x_ptr']"),
              ("conv_state", "a['conv_state_ptr'][a['conv_state_indices_ptr'].reshape(-1)[:a['batch']].long()]"),
              ("weight", "a['w_ptr']"), ("bias", "a['bias_ptr'] if c['HAS_BIAS'] else None"),
              ("activation", "'silu' if c['SILU_ACTIVATION'] else None"), ("cache_seqlens", "None")),
        outputs=(Output("o_ptr", poison=False),),
        requires=(("IS_VARLEN", False), ("IS_SPEC_DECODING", False), ("seqlen", 1)),
        requires_tensor=("conv_state_indices_ptr",),
        tolerance=(("float32", 1e-3, 3e-4), ("bfloat16", 5e-2, 1e-2), ("default", 5e-3, 3e-3)),
        tolerance_at=(f"{_CONV}:133", f"{_CONV}:135", f"{_CONV}:133"),
        note="causal_conv1d_update_ref is what tests/kernels/mamba/test_causal_conv1d.py:159 compares "
             "causal_conv1d_update against (decode: one token per sequence, a linear state, cache_seqlens None); "
             "the conv states are gathered by conv_state_indices for the reference (vLLM's batch indices are "
             "never the null block, so the kernel skips no row); the in-place state update is not compared, "
             "only the output, which aliases x in vLLM's call (compared, not poisoned: an unwritten row keeps "
             "x and fails)"),
)

REFUSED: dict[str, str] = {
    "vllm.v1.attention.ops.triton_reshape_and_cache_flash:reshape_and_cache_kernel_flash":
        "vLLM's test (tests/kernels/attention/test_cache.py:182 test_reshape_and_cache_flash) builds the expected "
        "cache inline in the test body; there is no reference function to extract",
    "vllm.model_executor.layers.fused_moe.fused_moe:fused_moe_kernel":
        "vLLM's torch MoE references (tests/kernels/utils.py torch_experts/torch_moe) compute the whole MoE layer "
        "(two GEMMs, activation, routing; they reach vllm._custom_ops), not one fused_moe_kernel GEMM launch",
    "vllm.v1.attention.ops.triton_unified_attention:reduce_segments":
        "reduce_segments merges split-KV partials of kernel_unified_attention's 3D path; vLLM's tests check the "
        "pair end to end (ref_paged_attn), no reference for the reduction alone",
    "vllm.v1.attention.ops.prefix_prefill:_fwd_kernel":
        "vLLM's test (tests/kernels/attention/test_prefix_prefill.py) compares against "
        "F.scaled_dot_product_attention on tensors it rebuilds inline; no reference function to extract",
    "vllm.models.common.ops.fused_qk_rmsnorm:FusedQKVRMSNormKernel.kernel":
        "one launch normalises q and kv (two IR rms_norm applications); the table maps one reference call per "
        "kernel",
    "vllm.v1.attention.ops.triton_decode_attention:_fwd_grouped_kernel_stage1":
        "stage 1 of a split-KV decode writes partial outputs and LSEs; vLLM's tests compare after stage 2",
}

__all__ = ["REFUSED", "SPECS"]
