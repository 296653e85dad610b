"""The "H100 CUDA platform profile": what vLLM's platform queries answer on the target.

Extraction resolves platform-conditional code for one target: an NVIDIA H100 (SM 9.0,
228 KiB of shared memory per block opt-in = 232448 bytes, 132 SMs) running CUDA with a
Triton 3.x that has a working NVIDIA driver.  Every value the static evaluator uses to
pick a branch or compute a constant that depends on the platform lives here.

* ``current_platform``: ``is_cuda()``/``is_cuda_alike()`` True, ``is_rocm()``/``is_xpu()``/
  ``is_cpu()``/``is_tpu()`` False, ``fp8_dtype()`` = ``torch.float8_e4m3fn`` (so
  ``torch.finfo(...).min/max`` = -448.0/448.0), ``is_device_capability(x)`` /
  ``has_device_capability(x)`` true iff x <= 90, ``get_device_capability()`` = (9, 0).
* ``vllm.triton_utils``: ``HAS_TRITON`` True; ``triton``/``tl``/``tldevice``/``gluon``/``gl``
  are the real Triton modules.
* Environment: every ``os.environ.get`` / ``os.getenv`` / ``envs.X`` answers its default.
* FLA utils (``vllm.third_party.flash_linear_attention.ops.utils``): vendor "nvidia",
  ``is_nvidia_hopper`` True, ``is_amd`` False, ``check_shared_mem(arch)`` compares 232448
  with the FLA ``Backend`` table (ADA 101376, AMPERE 166912, HOPPER 232448, default
  102400), so it is True for every arch on an H100.
"""
from __future__ import annotations

from typing import Any

NAME = "H100 CUDA platform profile"
DEVICE_NAME = "NVIDIA H100 80GB HBM3"
CAPABILITY = (9, 0)
CAPABILITY_INT = 90
MAX_SHARED_MEM = 232448          # bytes per block (opt-in), H100
NUM_SMS = 132
TRITON_VERSION = "3.6.0"          # Triton on the target GPU machine
FP8_DTYPE = "float8_e4m3fn"       # torch dtype name of current_platform.fp8_dtype()
# ptxas answering ``get_ptxas(...).version``: the CUDA 12.8 assembler Triton 3.6 bundles
# (conservative: features gated on a newer ptxas, e.g. cvt bf16x2.e2m1x2 in flint, stay off).
PTXAS_VERSION = "12.8"

# Predicates / queries on ``current_platform`` (method name -> result or callable).
PLATFORM_METHODS: dict[str, Any] = {
    "is_cuda": True,
    "is_cuda_alike": True,
    "is_rocm": False,
    "is_xpu": False,
    "is_cpu": False,
    "is_tpu": False,
    "is_out_of_tree": False,
    "is_unspecified": False,
    "is_zen_cpu": False,
    "is_fp8_fnuz": False,
    "supports_fp8": True,
    "use_custom_allreduce": True,
    "get_device_name": DEVICE_NAME,
    "fp8_dtype": ("ext", "torch." + "float8_e4m3fn"),
    "get_device_capability": ("capability",),
    "device_count": 1,
    "is_device_capability": lambda cap, *a, **k: _cap_int(cap) <= CAPABILITY_INT,
    "has_device_capability": lambda cap, *a, **k: _cap_int(cap) <= CAPABILITY_INT,
    "is_device_capability_family": lambda cap, *a, **k: _cap_int(cap) // 10 == CAPABILITY_INT // 10,
}
PLATFORM_ATTRS: dict[str, Any] = {
    "device_type": "cuda",
    "device_name": "cuda",
    "dispatch_key": "CUDA",
    "ray_device_key": "GPU",
    "simple_compile_backend": "inductor",
}

# Names exported by vLLM modules whose import-time value the profile fixes.
# ``("ext", path)`` is an external module/object path; anything else is a value.
MODULE_OVERRIDES: dict[str, dict[str, Any]] = {
    "vllm.triton_utils": {
        "triton": ("ext", "triton"),
        "tl": ("ext", "triton.language"),
        "tldevice": ("ext", "triton.language.extra.libdevice"),
        "gluon": ("ext", "triton.experimental.gluon"),
        "gl": ("ext", "triton.experimental.gluon.language"),
        "aggregate": ("ext", "triton.language.core._aggregate"),
        "HAS_TRITON": True,
    },
    "vllm.triton_utils.importing": {"HAS_TRITON": True},
    "vllm.platforms": {"current_platform": ("platform",)},
    "vllm.third_party.flash_linear_attention.ops.utils": {
        "device": "cuda",
        "device_platform": "nvidia",
        "is_amd": False,
        "is_intel": False,
        "is_nvidia": True,
        "is_intel_alchemist": False,
        "is_nvidia_hopper": True,
        "use_cuda_graph": False,
        "is_gather_supported": True,
        "is_tma_supported": False,
        "check_shared_mem": ("func", "fla_check_shared_mem"),
        "get_all_max_shared_mem": ("func", "fla_get_all_max_shared_mem"),
    },
}

# FLA ``Backend`` shared-memory table (vllm/third_party/flash_linear_attention/ops/utils.py).
FLA_BACKEND_SMEM = {"ADA": 101376, "AMPERE": 166912, "HOPPER": 232448, "DEFAULT": 102400}


def fla_check_shared_mem(arch: str = "none", tensor_idx: int = 0) -> bool:
    """FLA ``check_shared_mem`` on an H100: max_shared_mem >= Backend[arch]."""
    need = FLA_BACKEND_SMEM.get(str(arch).upper(), FLA_BACKEND_SMEM["DEFAULT"])
    return MAX_SHARED_MEM >= need


def fla_get_all_max_shared_mem() -> list[int]:
    return [MAX_SHARED_MEM]


# Calls into external libraries that ask about the device (dotted path -> result/callable).
EXTERNAL_CALLS: dict[str, Any] = {
    "torch.cuda.is_available": True,
    "torch.cuda.device_count": 1,
    "torch.cuda.get_device_name": DEVICE_NAME,
    "torch.cuda.get_device_capability": CAPABILITY,
    "torch.cuda.current_device": 0,
}
class _Ptxas:
    version = PTXAS_VERSION


EXTERNAL_CALLS["triton.backends.nvidia.compiler.get_ptxas"] = lambda *a, **k: _Ptxas()

# Attribute values of external modules that differ on the target.
EXTERNAL_ATTRS: dict[str, Any] = {
    "triton.__version__": TRITON_VERSION,
    "torch.version.hip": None,
    "torch.version.cuda": "12.8",
}
ENV: dict[str, str] = {}          # the target's environment: nothing set


def _cap_int(cap: Any) -> int:
    if isinstance(cap, tuple):
        return cap[0] * 10 + cap[1]
    return int(cap)
