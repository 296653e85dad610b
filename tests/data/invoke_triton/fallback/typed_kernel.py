# A synthetic kernel exercising the static parameter typing of the generic launch.
import triton
import triton.language as tl


@triton.jit
def _store_row(dst, offs, vals, n):
    tl.store(dst + offs, vals, mask=offs < n)


@triton.jit
def typed_kernel(
    x_ptr,            # data, loaded through a local pointer
    Out,              # pointer only through the helper's dst
    idx_ptr,          # its loaded values offset another pointer -> int32
    addrs,            # its loaded values become pointers -> int64
    gate,             # loaded and fed to tl.exp -> a float buffer
    start,            # int scalar added to an offset (not a pointer)
    stride_xm,
    n_cols,
    eps,
    BLOCK: tl.constexpr,
    HAS_GATE: tl.constexpr,
    ACT: tl.constexpr,
    OUT_DTYPE: tl.constexpr,
):
    row = tl.program_id(0)
    offs = start + tl.arange(0, BLOCK)
    src = tl.load(idx_ptr + row)
    x_row = x_ptr + src * stride_xm
    x = tl.load(x_row + offs, mask=offs < n_cols, other=0.0).to(tl.float32)
    if HAS_GATE:
        x = x * tl.exp(tl.load(gate + offs))
    if ACT == "silu":
        x = x * tl.sigmoid(x)
    base = tl.load(addrs + row).to(tl.pointer_type(tl.float32))
    tl.store(base + offs, x)
    _store_row(Out, offs, (x + eps).to(OUT_DTYPE), n_cols)
