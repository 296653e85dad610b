# Launches of kernels defined in vllm/ops/defs.py.
import vllm.ops.defs as K
from vllm.ops import reexported_kernel
from vllm.ops.defs import cross_kernel, ctx_kernel, indirect_kernel, relay_kernel
from vllm.ops.launchers import Ctx, launch_autotuned, relay


def forward(x):
    cross_kernel[(1,)](x)
    K.mod_attr_kernel[(1,)](x)
    reexported_kernel[(1,)](x)
    launch_autotuned(indirect_kernel, (1,), x_ptr=x)
    relay(relay_kernel, (1,))
    ctx = Ctx()
    ctx.call_kernel(ctx_kernel, (1,), x)
