from vllm.triton_utils import HAS_TRITON, tl, triton

BLOCK = tl.constexpr(64)
SHIFT = tl.constexpr(2**3) if HAS_TRITON else 2**3
SCALE = 1.5
ASM: tl.constexpr = tl.constexpr(f"mov.b32 $0, {8 * 2};")
UNUSED = object()


@triton.jit
def entry(x_ptr):
    offs = tl.arange(0, BLOCK)
    x = tl.load(x_ptr + offs) * SCALE
    tl.store(x_ptr + offs, x << SHIFT)
    tl.inline_asm_elementwise(ASM, "=r,r", [x], dtype=tl.int32, is_pure=True, pack=1)
