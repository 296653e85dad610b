# VllmTritonJitKernel launcher classes and kernels held by classes.
from vllm.model_executor.warmup.jit_warmup import kernel_launcher
from vllm.model_executor.warmup.jit_warmup_triton_helper import LaunchSpec, VllmTritonJitKernel
from vllm.triton_utils import tl, triton


@triton.jit
def _alias_target(x_ptr):
    pass


@triton.jit
def _override_kernel(x_ptr):
    pass


@triton.jit
def _self_kernel(x_ptr):
    pass


class NormKernel(VllmTritonJitKernel["NormKernel.CompileKey"]):
    @staticmethod
    @triton.jit
    def kernel(x_ptr, BLOCK: tl.constexpr):
        pass

    @kernel_launcher
    def __call__(self, x) -> LaunchSpec:
        return (1,), dict(x_ptr=x, BLOCK=64)


class AliasKernel(VllmTritonJitKernel["AliasKernel.CompileKey"]):
    kernel = staticmethod(_alias_target)

    @kernel_launcher
    def __call__(self, x, override: bool) -> LaunchSpec:
        return (1,), dict(
            kernel=(_override_kernel if override else _alias_target),
            x_ptr=x,
        )


class SelfLaunch:
    def __init__(self):
        self.fn = _self_kernel

    def run(self, x):
        self.fn[(1,)](x)
