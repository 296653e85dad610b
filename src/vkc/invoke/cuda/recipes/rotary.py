"""rotary_embedding_kernel (rotary_embedding on the q/k views of the fused qkv buffer)."""
from __future__ import annotations

from vkc.invoke.core.dims import need_attention
from vkc.invoke.cuda.literals import cpp_int
from vkc.invoke.cuda.plan import Buffer, Plan, Scale, Stmt, affine, randint, uniform
from vkc.invoke.cuda.recipes.base import SIZEOF, TORCH_TYPES, Ctx, Family, cuda_recipe

POS = "csrc/pos_encoding_kernels.cu"
PREFILL_SEQ = 8192
SEPARATE = "separate_qk"   # Ctx.bound key a traced call sets when query and key are separate tensors   # prefill: positions run 0..min(max_ctx, 8192)-1 per prompt


def rotary(c: Ctx) -> Plan:
    d = c.dims
    scalar_t = TORCH_TYPES[c.dtype]
    es = SIZEOF[scalar_t]
    heads: int | None
    kv_heads: int | None
    if d.is_mla:
        # DeepSeek MLA: rope on q_pe [T, H, qk_rope_head_dim] and k_pe [T, 1, qk_rope_head_dim], GPT-J style
        heads, kv_heads, head_size, rot = d.h_q, 1, d.qk_rope_head_dim, d.qk_rope_head_dim
        neox, layout = False, "MLA q_pe/k_pe: query [T, H_q, rope], key [T, 1, rope] in one row"
    else:
        need_attention(c.dims, "rotary_embedding_kernel")
        heads, kv_heads, head_size, rot = d.h_q, d.h_kv, d.head_dim, d.head_dim
        neox, layout = True, "query/key are views of the fused qkv row [T, (H_q + 2*H_kv) * Dh]"
    assert heads and kv_heads and head_size and rot
    # a traced call may pass query and key as separate contiguous tensors (Qwen3 normalises q and k first)
    separate = bool(c.bound.get(SEPARATE, (0, ""))[0])
    if separate:
        layout = "query [T, H_q*Dh] and key [T, H_kv*Dh] are separate contiguous tensors (traced call)"
    consts = [
        c.const_int("num_heads", heads, "H_q", src=(POS, "int num_heads = query_hidden_size / head_size;")),
        c.const_int("num_kv_heads", kv_heads, "H_kv" if not d.is_mla else "1 (MLA k_pe)"),
        c.const_int("head_size", head_size, "head_dim" if not d.is_mla else "qk_rope_head_dim"),
        c.const_int("rot_dim", rot, "rotary dim = head_size (no partial rotary factor in ModelConfig)",
                    src=(POS, "int rot_dim = cos_sin_cache.size(1);")),
        c.const_int("max_position", d.max_ctx, "max_position_embeddings"),
        Stmt(_row_code(d.is_mla, separate), f"vkc: {layout}"),
        c.w(POS, "int64_t query_stride = query.stride(seq_dim_idx);",
            "const int64_t query_stride = (int64_t)num_heads * head_size;" if separate else
            "const int64_t query_stride = row;"),
        c.w(POS, "int64_t key_stride = key.has_value() ? key->stride(seq_dim_idx) : 0;",
            "const int64_t key_stride = (int64_t)num_kv_heads * head_size;" if separate else
            "const int64_t key_stride = row;"),
        c.w(POS, "int64_t head_stride = (query_ndim == positions_ndim + 2) ? query.stride(-2) : head_size;",
            "const int64_t head_stride = head_size;", note="flat [T, heads*head_size] views"),
        Stmt("const int64_t rope_dim_offset = 0;", "vkc: rotary over the whole head"),
        Stmt("const bool inverse = false;", "vkc: forward rotation"),
        Stmt(f"using query_t = {scalar_t};", f"dispatch: FLOATING_TYPES(query {c.dtype})"),
        Stmt(f"using cache_t = {scalar_t};", "dispatch: FLOATING_TYPES(cos_sin_cache; vLLM keeps it in the model dtype)"),
    ]
    if c.workload == "prefill":
        pos_fill = affine(1, 0, f"std::min<long long>(max_position, {cpp_int(PREFILL_SEQ)})")
        pos_note = "prefill: prompts of min(max_ctx, 8192) tokens, positions 0.."
    else:
        pos_fill = randint(0, "max_position")
        pos_note = "decode: one token per sequence at a random position < max_ctx"
    derived = [Stmt("const int64_t num_tokens = num_tokens_ll;", f"vkc: {pos_note}")]
    launch = [
        c.w(POS, "dim3 grid(num_tokens);"),
        c.w(POS, "dim3 block(std::min<int64_t>(num_heads * rot_dim / 2, 512));"),
    ]
    return Plan(
        kernel_symbol="vllm::rotary_embedding_kernel",
        template_args=(scalar_t, scalar_t, "true" if neox else "false"),
        consts=tuple(consts),
        scale=Scale("num_tokens_ll", f"(size_t)row * {es} + 8", small=8, maximum=c.tokens_max(),
                    fixed_bytes=f"(size_t)max_position * rot_dim * {es}",
                    note="qkv rows + positions per token; cos_sin_cache [max_position, rot_dim] fixed"),
        derived=tuple(derived),
        buffers=(
            Buffer("positions", "int64_t", "num_tokens", pos_fill, "in", "[num_tokens]"),
            *_qk_buffers(scalar_t, separate),
            Buffer("cos_sin_cache", scalar_t, "(size_t)max_position * rot_dim", uniform(-1.0, 1.0), "in",
                   "[max_position, rot_dim] (cos | sin halves)"),
        ),
        launch_stmts=tuple(launch),
        grid="grid", block="block", smem="0",
        args=("positions", *(("query", "key") if separate else ("qkv", "qkv + (size_t)num_heads * head_size")),
              "cos_sin_cache", "rot_dim",
              "query_stride", "key_stride", "head_stride", "num_heads", "num_kv_heads", "head_size",
              "rope_dim_offset", "inverse"),
        bytes_moved=f"2.0 * num_tokens * (num_heads + num_kv_heads) * head_size * {es} + 8.0 * num_tokens"
                    f" + 1.0 * num_tokens * rot_dim * {es}",
        bytes_rule="rotary: query/key heads read and written in place + positions + the cos/sin row each "
                   "position selects (not the whole cos_sin_cache)",
        dispatch=f"FLOATING_TYPES(query) x FLOATING_TYPES(cos_sin_cache) = {scalar_t}; is_neox={neox}",
        wrapper=f"{c.at(POS, 'void rotary_embedding(')} (rotary_embedding)",
        grid_expr="dim3 grid(num_tokens)", block_expr="min(num_heads * rot_dim / 2, 512)", smem_expr="0",
        notes=(layout,),
    )


def _row_code(mla: bool, separate: bool) -> str:
    if separate:
        return "const int64_t row = (int64_t)(num_heads + num_kv_heads) * head_size;  // q + k elements per token"
    if mla:
        return "const int64_t row = (int64_t)(num_heads + num_kv_heads) * head_size;"
    return "const int64_t row = (int64_t)(num_heads + 2 * num_kv_heads) * head_size;"


def _qk_buffers(scalar_t: str, separate: bool) -> tuple[Buffer, ...]:
    if separate:
        return (Buffer("query", scalar_t, "(size_t)num_tokens * num_heads * head_size", uniform(-1.0, 1.0), "inout",
                       "[num_tokens, H_q*Dh] contiguous"),
                Buffer("key", scalar_t, "(size_t)num_tokens * num_kv_heads * head_size", uniform(-1.0, 1.0),
                       "inout", "[num_tokens, H_kv*Dh] contiguous"))
    return (Buffer("qkv", scalar_t, "(size_t)num_tokens * row", uniform(-1.0, 1.0), "inout",
                   "[num_tokens, row]; query = qkv, key = qkv + num_heads*head_size"),)


RECIPES = (cuda_recipe((f"{POS}:rotary_embedding_kernel",), rotary, family=Family.ROTARY),)
