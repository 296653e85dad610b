"""nvcc helpers shared by the CUDA invoker, ``vkc verify`` and ``vkc fidelity``.

The invocation example names the instantiation it launches with one marker line per
instantiation (emit it with :func:`instantiation_line`)::

    // VKC_INSTANTIATE: vllm::rms_norm_kernel<c10::BFloat16, 8, 2, true>

:func:`instantiation_source` turns the markers into lines appended to the unit that force
the template instantiation (and pick the right enable_if overload).
"""
from __future__ import annotations

import re
from pathlib import Path

from vkc.toolchain.cutlass import find_cutlass

__all__ = ["BLACKWELL_ONLY", "MARKER", "first_error", "instantiation_line", "instantiation_source",
           "instantiations", "nvcc_flags", "torch_include"]

MARKER = "// VKC_INSTANTIATE:"
_MARKER_RE = re.compile(r"^\s*//\s*VKC_INSTANTIATE:\s*(.+?)\s*$", re.M)

# ptxas (nvcc's and Triton's) on code only Blackwell has, e.g. fp4 conversions (cvt ... e2m1x2)
BLACKWELL_ONLY = re.compile(r"(?P<kind>Instruction|Feature) '(?P<name>[^']+)' not supported on \.target 'sm_90a?'")


def instantiation_line(qualname: str, args: str | None) -> str:
    """The marker line for ``qualname<args>`` (``args`` None: a non-template kernel)."""
    return f"{MARKER} {qualname}<{args}>" if args is not None else f"{MARKER} {qualname}"


def instantiations(invocation: str) -> list[str]:
    """The instantiation expressions named by the marker lines of an invocation example."""
    return _MARKER_RE.findall(invocation or "")


def instantiation_source(insts: list[str]) -> str:
    """Lines that force each instantiation (and pick the right enable_if overload)."""
    return "".join(f"static void* __vkc_inst_{i} __attribute__((unused)) = (void*)&{expr};\n"
                   for i, expr in enumerate(insts))


def torch_include() -> str | None:
    """Include dir of the installed torch wheel (header-only types), or None.  Found without
    importing torch (an import initialises CUDA, which parallel build workers must not do)."""
    import importlib.util
    try:
        spec = importlib.util.find_spec("torch")
    except (ImportError, ValueError):
        return None
    if spec is None:
        return None
    bases = [Path(p) for p in (spec.submodule_search_locations or [])]
    if spec.origin:
        bases.append(Path(spec.origin).parent)
    for base in bases:
        inc = base / "include"
        if (inc / "torch" / "headeronly").is_dir() or (inc / "c10").is_dir():
            return str(inc)
    return None


def nvcc_flags(arch: str = "sm_90") -> list[str]:
    """vLLM's nvcc flags for CUDA >= 12 (CMakeLists/torch): C++17, relaxed constexpr and
    extended lambdas (torch's CUDA flags; div_ceil/numeric_limits/__device__ lambdas need
    them), -DENABLE_FP8; vLLM removes -D__CUDA_NO_HALF_OPERATORS__ and siblings.  The
    torch include dir gives the header-only c10 types (no libtorch linking)."""
    # an arch-specific target (sm_100a) as one -gencode: -arch=sm_100a also embeds generic
    # compute_100 PTX, which ptxas rejects for arch-specific instructions (fp4 cvt)
    target = (f"-gencode=arch=compute_{arch[3:]},code={arch}" if arch[-1] in "af" else f"-arch={arch}")
    flags = ["-std=c++17", target, "--expt-relaxed-constexpr", "--expt-extended-lambda",
             "-DENABLE_FP8"]
    ti = torch_include()
    if ti:
        flags.append(f"-I{ti}")
    cutlass = find_cutlass()          # only units that include cutlass/ or cute/ headers read it
    if cutlass is not None:
        flags += cutlass.flags
    return flags


def first_error(err: str) -> str:
    """nvcc's first error line, without the (temporary) folder of the file it names."""
    for line in err.splitlines():
        if "error" in line:
            return re.sub(r"^\S*/(?=[^/\s]+\(\d+\)|[^/\s]+, line)", "", line.strip())[:300]
    return (err.strip().splitlines() or ["failed"])[-1][:300]
