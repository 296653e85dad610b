"""merge_attn_states_kernel (merge_attn_states_launcher, no FP8 output, no output_lse)."""
from __future__ import annotations

from vkc.invoke.core.dims import need_attention
from vkc.invoke.cuda.plan import Buffer, Plan, Scale, Stmt, const, uniform
from vkc.invoke.cuda.recipes.base import (
    NATIVE_KV_TYPES,
    SIZEOF,
    Ctx,
    Family,
    cuda_recipe,
)

MA = "csrc/attention/merge_attn_states.cu"


def merge_attn_states(c: Ctx) -> Plan:
    d = c.dims
    scalar_t = NATIVE_KV_TYPES[c.dtype]      # DISPATCH_BY_SCALAR_DTYPE: Half->uint16_t, BF16->__nv_bfloat16
    es = SIZEOF[scalar_t]
    hs: int | None
    if d.is_mla:
        heads, hs, why = d.h_q, 128, "MLA prefill: H_q heads of v_head_dim"
    else:
        need_attention(d, "merge_attn_states_kernel")
        heads, hs, why = d.h_q, d.head_dim, "H_q heads of head_dim"
    consts = [
        Stmt("constexpr uint NUM_THREADS = 128;", c.at(MA, "constexpr uint NUM_THREADS = 128;")),
        c.const_int("num_heads", heads, why, ctype="uint", src=(MA, "const uint num_heads = output.size(1);")),
        c.const_int("head_size", hs, "v_head_dim" if d.is_mla else "head_dim", ctype="uint",
                    src=(MA, "const uint head_size = output.size(2);")),
        Stmt(f"using scalar_t = {scalar_t};", f"dispatch: DISPATCH_BY_SCALAR_DTYPE({c.dtype})"),
    ]
    derived = [
        Stmt("const uint num_tokens = (uint)num_tokens_ll;", "vkc: prefill tokens whose attention was split in two"),
        c.w(MA, "const uint prefix_head_stride = prefix_output.stride(1);", "const uint prefix_head_stride = head_size;"),
        c.w(MA, "const uint output_head_stride = output.stride(1);", "const uint output_head_stride = head_size;"),
        c.w(MA, "const uint prefix_lse_head_stride = prefix_lse.stride(0);",
            "const uint prefix_lse_head_stride = num_tokens;", note="lse [num_heads, num_tokens] contiguous"),
        c.w(MA, "const uint prefix_lse_token_stride = prefix_lse.stride(1);", "const uint prefix_lse_token_stride = 1;"),
        c.w(MA, "const uint suffix_lse_head_stride = suffix_lse.stride(0);", "const uint suffix_lse_head_stride = num_tokens;"),
        c.w(MA, "const uint suffix_lse_token_stride = suffix_lse.stride(1);", "const uint suffix_lse_token_stride = 1;"),
        c.w(MA, "uint output_lse_head_stride = 0;"),
        c.w(MA, "uint output_lse_token_stride = 0;"),
        c.w(MA, "const uint prefix_num_tokens = prefill_tokens_with_context.has_value() ? "
                "static_cast<uint>(prefill_tokens_with_context.value()) : num_tokens;",
            "const uint prefix_num_tokens = num_tokens;", note="prefill_tokens_with_context unset"),
        Stmt("float* output_lse_ptr = nullptr;", c.at(MA, "float* output_lse_ptr = nullptr;"), "output_lse unset"),
        Stmt("float* output_scale_ptr = nullptr;", c.at(MA, "float* output_scale_ptr = nullptr;"), "output_scale unset"),
    ]
    launch = [
        c.w(MA, "const uint pack_size = 16 / sizeof(scalar_t);"),
        c.w(MA, "const uint threads_per_head = head_size / pack_size;", after=int(c.at(MA, "float* output_scale_ptr = nullptr;").rsplit(":", 1)[1])),
        c.w(MA, "const uint total_threads = num_tokens * num_heads * threads_per_head;"),
        c.w(MA, "dim3 block(NUM_THREADS);"),
        c.w(MA, "dim3 grid((total_threads + NUM_THREADS - 1) / NUM_THREADS);"),
    ]
    n = "(size_t)num_tokens * num_heads * head_size"
    return Plan(
        kernel_symbol="vllm::merge_attn_states_kernel",
        template_args=(scalar_t, scalar_t, "128", "false"),
        consts=tuple(consts),
        scale=Scale("num_tokens_ll", f"3 * (size_t)num_heads * head_size * {es} + 2 * 4 * (size_t)num_heads",
                    small=8, maximum=c.tokens_max(), note="output + prefix/suffix outputs [T, H, D] + 2 lse [H, T]"),
        derived=tuple(derived),
        buffers=(
            Buffer("output", scalar_t, n, const(0.0), "out", "[num_tokens, num_heads, head_size]"),
            Buffer("prefix_output", scalar_t, n, uniform(-1.0, 1.0), "in", "[num_tokens, num_heads, head_size]"),
            Buffer("prefix_lse", "float", "(size_t)num_heads * num_tokens", uniform(-2.0, 8.0), "in", "[num_heads, num_tokens]"),
            Buffer("suffix_output", scalar_t, n, uniform(-1.0, 1.0), "in", "[num_tokens, num_heads, head_size]"),
            Buffer("suffix_lse", "float", "(size_t)num_heads * num_tokens", uniform(-2.0, 8.0), "in", "[num_heads, num_tokens]"),
        ),
        launch_stmts=tuple(launch), grid="grid", block="block", smem="0",
        args=("output", "output_lse_ptr", "prefix_output", "prefix_lse", "suffix_output", "suffix_lse",
              "num_tokens", "num_heads", "head_size", "prefix_head_stride", "output_head_stride",
              "prefix_lse_head_stride", "prefix_lse_token_stride", "suffix_lse_head_stride",
              "suffix_lse_token_stride", "output_lse_head_stride", "output_lse_token_stride",
              "prefix_num_tokens", "output_scale_ptr"),
        dispatch=f"DISPATCH_BY_SCALAR_DTYPE({c.dtype} -> {scalar_t}); LAUNCH_MERGE_ATTN_STATES(scalar_t, scalar_t, 128, false)",
        wrapper=f"{c.at(MA, 'void merge_attn_states_launcher(')} (merge_attn_states_launcher)",
        grid_expr="(num_tokens * num_heads * head_size / pack_size + 127) / 128", block_expr="NUM_THREADS = 128",
        smem_expr="0",
        notes=("used by chunked prefill with a cached prefix (cascade/context merge)",),
    )


RECIPES = (cuda_recipe((f"{MA}:merge_attn_states_kernel",), merge_attn_states, workloads=("prefill", "decode"),
                              family=Family.ATTENTION),)
