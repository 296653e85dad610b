"""KV-cache writes: reshape_and_cache_flash_kernel, concat_and_cache_mla_kernel (kv_cache_dtype=auto)."""
from __future__ import annotations

from vkc.invoke.cuda.literals import cpp_int
from vkc.invoke.cuda.plan import Buffer, Fill, Plan, Scale, Stmt, affine, const, uniform
from vkc.invoke.cuda.recipes.base import (
    NATIVE_KV_TYPES,
    SIZEOF,
    Ctx,
    Family,
    Need,
    cuda_recipe,
)

CK = "csrc/cache_kernels.cu"
BLOCK_SIZE = 16          # vLLM's default KV block size (FlashAttention backend)
MLA_BLOCK_SIZE = 64      # FlashMLA (the default MLA backend on Hopper) uses 64-token pages
DECODE_CTX = 4096        # decode: each sequence owns a cache of min(max_ctx, 4096) tokens


def _slots(c: Ctx, block: int) -> tuple[list[Stmt], Fill, str, str]:
    """(derived statements, slot fill, bytes-per-unit multiplier of one cache token, note)."""
    if c.workload == "prefill":
        derived = [
            Stmt("const int num_tokens = (int)num_tokens_ll;", "vkc: prefill, one token per slot"),
            Stmt("const int64_t num_blocks = (num_tokens + block_size - 1) / block_size;",
                 "vkc: cache holds exactly the prompt tokens"),
        ]
        return derived, affine(1, 0, "num_blocks * block_size"), "1", \
            "prefill: slot_mapping[i] = i (consecutive pages, all inside the cache)"
    ctx = f"std::min<long long>({cpp_int(c.dims.max_ctx)}, {cpp_int(DECODE_CTX)})"
    derived = [
        Stmt("const int num_tokens = (int)num_tokens_ll;", "vkc: decode, one new token per sequence"),
        Stmt(f"const int64_t seq_len = {ctx};", "vkc: context per sequence (min(max_ctx, 4096))"),
        Stmt("const int64_t blocks_per_seq = (seq_len + block_size - 1) / block_size;", "vkc"),
        Stmt("const int64_t num_blocks = (int64_t)num_tokens * blocks_per_seq;", "vkc: each sequence owns its pages"),
    ]
    return derived, affine("blocks_per_seq * block_size", "seq_len - 1", "num_blocks * block_size"), \
        f"((size_t)(std::min<long long>({cpp_int(c.dims.max_ctx)}, {cpp_int(DECODE_CTX)}) + block_size - 1) / block_size * block_size)", \
        "decode: slot_mapping[s] = s*blocks_per_seq*block_size + seq_len-1 (last slot of sequence s)"


def reshape_and_cache_flash(c: Ctx) -> Plan:
    d = c.dims
    kv_t = NATIVE_KV_TYPES[c.dtype]
    es = SIZEOF[kv_t]
    derived, slot_fill, per_tok, slot_note = _slots(c, BLOCK_SIZE)
    consts = [
        c.const_int("num_heads", d.h_kv, "H_kv", src=(CK, "int num_heads = key.size(1);")),
        c.const_int("head_size", d.head_dim, "head_dim", src=(CK, "int head_size = key.size(2);")),
        c.const_int("block_size", BLOCK_SIZE, "vLLM default block size 16",
                    src=(CK, "int block_size = key_cache.size(1);")),
        Stmt(f"using KV_T = {kv_t};", f"dispatch: DISPATCH_BY_KV_CACHE_DTYPE({c.dtype}, \"auto\")"),
        Stmt("using CACHE_T = KV_T;", "dispatch: kv_cache_dtype=auto stores the model dtype"),
        c.w(CK, "int64_t key_stride = key.stride(0);", "const int64_t key_stride = (int64_t)num_heads * head_size;"),
        c.w(CK, "int64_t value_stride = value.stride(0);", "const int64_t value_stride = (int64_t)num_heads * head_size;"),
        c.w(CK, "int64_t block_stride = key_cache.stride(0);",
            "const int64_t block_stride = (int64_t)block_size * num_heads * head_size;",
            note="NHD cache [num_blocks, block_size, num_heads, head_size]"),
        c.w(CK, "int64_t page_stride = key_cache.stride(1);", "const int64_t page_stride = (int64_t)num_heads * head_size;"),
        c.w(CK, "int64_t head_stride = key_cache.stride(2);", "const int64_t head_stride = head_size;"),
        c.w(CK, "int kv_scale_stride = (k_scale.numel() > 1) ? 1 : 0;", "const int kv_scale_stride = 0;",
            note="k_scale/v_scale are [1]"),
    ]
    launch = [
        c.w(CK, "dim3 grid(num_tokens);", after=c_line(c, "void reshape_and_cache_flash(")),
        c.w(CK, "dim3 block(std::min(num_heads * head_size, 512));"),
    ]
    return Plan(
        kernel_symbol="vllm::reshape_and_cache_flash_kernel",
        template_args=(kv_t, kv_t, "vllm::Fp8KVCacheDataType::kAuto"),
        consts=tuple(consts),
        scale=Scale("num_tokens_ll", f"2 * (size_t)num_heads * head_size * {es} * (1 + {per_tok}) + 8",
                    small=8, maximum=c.tokens_max(), note=slot_note),
        derived=tuple(derived),
        buffers=(
            Buffer("key", kv_t, "(size_t)num_tokens * num_heads * head_size", uniform(-1.0, 1.0), "in",
                   "[num_tokens, H_kv, Dh]"),
            Buffer("value", kv_t, "(size_t)num_tokens * num_heads * head_size", uniform(-1.0, 1.0), "in",
                   "[num_tokens, H_kv, Dh]"),
            Buffer("key_cache", kv_t, "(size_t)num_blocks * block_stride", const(0.0), "ws",
                   "[num_blocks, block_size, H_kv, Dh]"),
            Buffer("value_cache", kv_t, "(size_t)num_blocks * block_stride", const(0.0), "ws",
                   "[num_blocks, block_size, H_kv, Dh]"),
            Buffer("slot_mapping", "int64_t", "num_tokens", slot_fill, "in", "[num_tokens]"),
            Buffer("k_scale", "float", "1", const(1.0), "in", "[1]"),
            Buffer("v_scale", "float", "1", const(1.0), "in", "[1]"),
        ),
        launch_stmts=tuple(launch), grid="grid", block="block", smem="0",
        args=("key", "value", "key_cache", "value_cache", "slot_mapping", "block_stride", "page_stride",
              "head_stride", "key_stride", "value_stride", "num_heads", "head_size", "block_size", "k_scale",
              "v_scale", "kv_scale_stride"),
        bytes_moved=f"4.0 * num_tokens * num_heads * head_size * {es} + 8.0 * num_tokens",
        bytes_rule="cache write: key/value rows read + the slots written (num_tokens x H_kv x Dh, K and V) + "
                   "slot ids; the rest of the cache is not traffic",
        dispatch=f"DISPATCH_BY_KV_CACHE_DTYPE({c.dtype} -> {kv_t}, auto -> kAuto) via CALL_RESHAPE_AND_CACHE_FLASH",
        wrapper=f"{c.at(CK, 'void reshape_and_cache_flash(')} (reshape_and_cache_flash)",
        grid_expr="dim3 grid(num_tokens)", block_expr="min(num_heads * head_size, 512)", smem_expr="0",
        notes=("GB/s counts key/value read + the written cache rows; the caches are live set, not traffic",),
    )


def concat_and_cache_mla(c: Ctx) -> Plan:
    d = c.dims
    kv_t = NATIVE_KV_TYPES[c.dtype]
    es = SIZEOF[kv_t]
    derived, slot_fill, per_tok, slot_note = _slots(c, MLA_BLOCK_SIZE)
    consts = [
        c.const_int("kv_lora_rank", d.kv_lora_rank, "kv_lora_rank", src=(CK, "int kv_lora_rank = kv_c.size(1);")),
        c.const_int("pe_dim", d.qk_rope_head_dim, "qk_rope_head_dim", src=(CK, "int pe_dim = k_pe.size(1);")),
        c.const_int("block_size", MLA_BLOCK_SIZE, "FlashMLA page size 64", src=(CK, "int block_size = kv_cache.size(1);")),
        Stmt(f"using KV_T = {kv_t};", f"dispatch: DISPATCH_BY_KV_CACHE_DTYPE({c.dtype}, \"auto\")"),
        c.w(CK, "int kv_c_stride = kv_c.stride(0);", "const int kv_c_stride = kv_lora_rank;"),
        c.w(CK, "int k_pe_stride = k_pe.stride(0);", "const int k_pe_stride = pe_dim;"),
        c.w(CK, "int block_stride = kv_cache.stride(0);", "const int block_stride = block_size * (kv_lora_rank + pe_dim);",
            note="cache [num_blocks, block_size, kv_lora_rank + pe_dim]"),
        c.w(CK, "int entry_stride = kv_cache.stride(1);", "const int entry_stride = kv_lora_rank + pe_dim;"),
    ]
    blk = c.w(CK, "dim3 block(std::min(kv_lora_rank, 512));")
    blk_line = int(blk.origin.rsplit(":", 1)[1])
    launch = [c.w(CK, "dim3 grid(num_tokens);", after=blk_line - 1), blk]
    return Plan(
        kernel_symbol="vllm::concat_and_cache_mla_kernel",
        template_args=(kv_t, kv_t, "vllm::Fp8KVCacheDataType::kAuto", "false"),
        consts=tuple(consts),
        scale=Scale("num_tokens_ll", f"(size_t)(kv_lora_rank + pe_dim) * {es} * (1 + {per_tok}) + 8",
                    small=8, maximum=c.tokens_max(), note=slot_note),
        derived=tuple(derived),
        buffers=(
            Buffer("kv_c", kv_t, "(size_t)num_tokens * kv_lora_rank", uniform(-1.0, 1.0), "in", "[num_tokens, kv_lora_rank]"),
            Buffer("k_pe", kv_t, "(size_t)num_tokens * pe_dim", uniform(-1.0, 1.0), "in", "[num_tokens, pe_dim]"),
            Buffer("kv_cache", kv_t, "(size_t)num_blocks * block_stride", const(0.0), "ws",
                   "[num_blocks, block_size, kv_lora_rank + pe_dim]"),
            Buffer("slot_mapping", "int64_t", "num_tokens", slot_fill, "in", "[num_tokens]"),
            Buffer("scale", "float", "1", const(1.0), "in", "[1]"),
        ),
        launch_stmts=tuple(launch), grid="grid", block="block", smem="0",
        args=("kv_c", "k_pe", "kv_cache", "slot_mapping", "block_stride", "entry_stride", "kv_c_stride",
              "k_pe_stride", "kv_lora_rank", "pe_dim", "block_size", "scale"),
        bytes_moved=f"2.0 * num_tokens * (kv_lora_rank + pe_dim) * {es} + 8.0 * num_tokens",
        bytes_rule="cache write: kv_c/k_pe rows read + the slots written (num_tokens x (kv_lora_rank + pe_dim)) "
                   "+ slot ids; the rest of the cache is not traffic",
        dispatch=f"DISPATCH_BY_KV_CACHE_DTYPE({c.dtype} -> {kv_t}, auto -> kAuto); CALL_CONCAT_AND_CACHE_MLA skip_scale=false",
        wrapper=f"{c.at(CK, 'void concat_and_cache_mla(')} (concat_and_cache_mla)",
        grid_expr="dim3 grid(num_tokens)", block_expr="min(kv_lora_rank, 512)", smem_expr="0",
        notes=("kv_c / k_pe are separate contiguous tensors here (in vLLM they may be views of one row)",),
    )


def c_line(c: Ctx, text: str) -> int:
    return int(c.at(CK, text).rsplit(":", 1)[1])


RECIPES = (
    cuda_recipe((f"{CK}:reshape_and_cache_flash_kernel",), reshape_and_cache_flash, family=Family.CACHE,
                needs=(Need.ATTENTION,)),
    cuda_recipe((f"{CK}:concat_and_cache_mla_kernel",), concat_and_cache_mla, family=Family.CACHE, needs=(Need.MLA,)),
)
