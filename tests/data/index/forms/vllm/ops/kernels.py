# Launch forms, decorator shapes and roles in one module.
import torch
import triton as tr
from triton import jit
from triton.experimental import gluon
from torch.library import wrap_triton

from vllm.triton_utils import tl, triton
from vllm.triton_utils.dispatcher import triton_kernel_dispatcher_with_warmup


@triton.jit
def helper_fn(x):
    return x + 1


@triton.jit
def grid_kernel(x_ptr, BLOCK: tl.constexpr):
    tl.store(x_ptr, helper_fn(tl.load(x_ptr)))


@triton.jit
def orphan_kernel(x_ptr):
    pass


@triton.jit
def alias_a(x_ptr):
    pass


@triton.jit
def alias_b(x_ptr):
    pass


@triton.jit
def dict_a(x_ptr):
    pass


@triton.jit
def dict_b(x_ptr):
    pass


@triton.jit
def warm_kernel(x_ptr):
    pass


@triton.jit
def wrapped_kernel(x_ptr):
    pass


@triton.jit
def disp_kernel(x_ptr):
    pass


@triton.heuristics({"EVEN": lambda args: args["n"] % 2 == 0})
@triton.autotune(configs=[triton.Config({"BLOCK": 64})], key=["n"])
@triton.jit(do_not_specialize=["n"])
def tuned_kernel(x_ptr, n, BLOCK: tl.constexpr, EVEN: tl.constexpr):
    pass


@jit
def bare_jit_kernel(x_ptr):
    pass


@tr.jit
def aliased_module_kernel(x_ptr):
    pass


@gluon.jit
def gluon_kernel(x_ptr):
    pass


@torch.jit.script
def not_a_triton_kernel(x):
    return x


def _make():
    @triton.jit
    def inner(x_ptr):
        pass

    return inner


_FACTORY_KERNEL = _make()


def launch_grid(x):
    grid_kernel[(x.numel(),)](x, BLOCK=64)


def launch_alias(x, flag):
    kernel = alias_a if flag else alias_b
    kernel[(1,)](x)


def launch_dict(x, w):
    kernel = {1: dict_a, 2: dict_b}.get(w)
    kernel[(1,)](x)


def launch_warmup(x):
    warm_kernel.warmup(x, grid=(1,))


def launch_wrapped(x):
    wrap_triton(wrapped_kernel)[(1,)](x)


def launch_more(x):
    tuned_kernel[(1,)](x, x.numel())
    bare_jit_kernel[(1,)](x)
    aliased_module_kernel[(1,)](x)
    gluon_kernel[(1,)](x)
    _FACTORY_KERNEL[(1,)](x)


@triton_kernel_dispatcher_with_warmup(kernel=disp_kernel, warmup_inputs=None)
def dispatch(x):
    return (1,), dict(x_ptr=x)
