from vllm.triton_utils import tl, triton


def make(scale):
    @triton.jit
    def entry(x_ptr, N: tl.constexpr):
        offs = tl.arange(0, N)
        tl.store(x_ptr + offs, tl.load(x_ptr + offs) * scale)

    return entry
