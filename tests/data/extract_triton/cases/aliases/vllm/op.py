import os

from vllm.triton_utils import tl, tldevice

if os.environ.get("FLA_USE_FAST_OPS", "0") == "1":
    exp = tldevice.fast_expf
    log = tldevice.fast_logf
else:
    exp = tl.exp
    log = tl.log
