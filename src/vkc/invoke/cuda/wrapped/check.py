"""What vkc's Tensor stand-in provides (``templates/standin.cuh.j2``), and a static check of host code against it.

The check runs at collect time (no compiler): host code that names a torch API the stand-in does not
provide, a parameter type the program cannot construct, or a library the program cannot link is
refused with the reason, so the artifact falls back loudly instead of shipping a program that does
not build.  nvcc has the last word (``verify --compile``, ``bench/wrapped_compile.py``); this list
keeps the two in step: a name added to the stand-in is added here.
"""
from __future__ import annotations

import re
from collections.abc import Mapping

from vkc.cxx.pp import strip_comments

__all__ = ["CUBLAS_FORWARDED", "STANDIN_ACCELERATOR", "STANDIN_OPS", "STANDIN_TYPES", "param_problem", "type_aliases",
           "unsupported", "uses_cublas"]

# torch::stable::<name> the stand-in defines
STANDIN_OPS = frozenset({
    "empty", "new_empty", "new_zeros", "empty_like", "fill_", "zero_", "copy_", "clone", "contiguous", "view",
    "reshape", "flatten", "narrow", "select", "transpose", "unsqueeze", "squeeze", "from_blob", "pad",
})
STANDIN_TYPES = frozenset({"Tensor", "Device", "DeviceType", "DeviceIndex", "Layout", "MemoryFormat", "ScalarType",
                           "accelerator"})
STANDIN_ACCELERATOR = frozenset({"DeviceGuard", "DeviceIndex", "StreamId", "getCurrentDeviceIndex"})
# shim functions of torch's C ABI the stand-in implements
STANDIN_SHIM = frozenset({"aoti_torch_get_current_cuda_stream"})
# cuBLAS entry points templates/cublas.cuh.j2 forwards to the library it loads at run time (with the
# handle shim torch_get_current_cuda_blas_handle, csrc/torch_utils.h get_current_cuda_blas_handle): the
# ones vLLM 0.33.0's host code calls (q_gemm.cu gemm_half_q_half_cuda); any other cuBLAS call is refused
CUBLAS_FORWARDED = frozenset({"cublasHgemm"})
CUBLAS_SHIM = frozenset({"torch_get_current_cuda_blas_handle"})
_CUBLAS_CALL = re.compile(r"\b(cublas\w*)\s*\(")

_STABLE = re.compile(r"\btorch::stable::(\w+)(?:::(\w+))?")
_SHIM = re.compile(r"\b(aoti_torch_\w+|torch_get_\w+|torch_call_dispatcher|torch_set_\w+)\b")
# APIs of full torch (ATen, c10's CUDA runtime, libtorch's dispatcher) and libraries the program cannot
# link: each a pattern and the reason
_FOREIGN = (
    (re.compile(r"\bat::(?!Tensor\b|ScalarType\b)\w+"), "ATen (at::...)"),
    (re.compile(r"\bc10::cuda::\w+"), "c10's CUDA runtime (c10::cuda::...)"),
    (re.compile(r"\btorch::(?!stable::|headeronly::)(?!Tensor\b)\w+"), "libtorch (torch::...)"),
    (re.compile(r"\bcusparse\w*\s*\("), "cuSPARSE"),
    (re.compile(r"\bnccl\w*\s*\("), "NCCL"),
    (re.compile(r"\b(cutlass|cute)::"), "CUTLASS (not in the source distribution)"),
    (re.compile(r"\bflashinfer::"), "FlashInfer"),
    (re.compile(r"\bpybind11::"), "pybind11"),
)


def unsupported(text: str) -> list[str]:
    """Why host code ``text`` cannot be compiled against the stand-in (empty: nothing found)."""
    code = strip_comments(text)
    code = re.sub(r'"(?:\\.|[^"\\])*"', '""', code)
    out: list[str] = []
    for m in _STABLE.finditer(code):
        name, sub = m.group(1), m.group(2)
        if name == "accelerator":
            if sub and sub not in STANDIN_ACCELERATOR:
                out.append(f"torch::stable::accelerator::{sub}")
        elif name == "detail" or (name not in STANDIN_OPS and name not in STANDIN_TYPES):
            out.append(f"torch::stable::{name}" + (f"::{sub}" if sub and name == "detail" else ""))
    out += [m.group(1) for m in _SHIM.finditer(code) if m.group(1) not in STANDIN_SHIM | CUBLAS_SHIM]
    out += [f"cuBLAS: {m.group(1)}" for m in _CUBLAS_CALL.finditer(code) if m.group(1) not in CUBLAS_FORWARDED]
    for pat, what in _FOREIGN:
        hit = pat.search(code)
        if hit:
            out.append(f"{what}: {hit.group(0).strip()}")
    return sorted(dict.fromkeys(out))


def uses_cublas(text: str) -> bool:
    """Whether host code ``text`` calls cuBLAS (the program then includes templates/cublas.cuh.j2)."""
    code = strip_comments(text)
    return bool(_CUBLAS_CALL.search(code)) or "torch_get_current_cuda_blas_handle" in code


_SCALARS = ("int64_t", "int", "int32_t", "double", "float", "bool", "long", "size_t", "uint64_t", "uint32_t",
            "std::string", "c10::string_view", "std::string_view", "torch::headeronly::ScalarType",
            "c10::ScalarType", "at::ScalarType", "torch::stable::Tensor", "at::Tensor",
            "torch::headeronly::IntHeaderOnlyArrayRef", "torch::headeronly::HeaderOnlyArrayRef<int64_t>",
            "std::vector<int64_t>", "std::vector<double>", "std::vector<torch::stable::Tensor>",
            "torch::headeronly::HeaderOnlyArrayRef<torch::stable::Tensor>")


_ALIAS = re.compile(r"\busing\s+([A-Za-z_]\w*)\s*=\s*([A-Za-z_][\w:]*)\s*;")


def type_aliases(text: str) -> dict[str, str]:
    """``using NAME = TYPE;`` declarations of ``text`` by unqualified name (a name aliased to two different
    types is left out: which one a parameter means would need C++ name lookup)."""
    seen: dict[str, set[str]] = {}
    for m in _ALIAS.finditer(text):
        seen.setdefault(m.group(1), set()).add(m.group(2))
    return {n: next(iter(ts)) for n, ts in seen.items() if len(ts) == 1}


def _resolve(base: str, aliases: Mapping[str, str]) -> str:
    """``vllm::ScalarTypeId`` -> ``ScalarType::Id`` -> ``int64_t`` through ``aliases`` (last name component)."""
    for _ in range(8):
        if base in _SCALARS:
            return base
        nxt = aliases.get(base.rsplit("::", 1)[-1])
        if nxt is None or nxt == base:
            return base
        base = nxt
    return base


def param_problem(ctype: str, schema_type: str, aliases: Mapping[str, str] | None = None) -> str | None:
    """Why the program cannot pass a ``schema_type`` argument to a parameter of type ``ctype`` (None: it can).

    ``aliases`` (:func:`type_aliases` of the inlined code) resolves a parameter type that names a
    scalar through ``using`` declarations (marlin_gemm's ``vllm::ScalarTypeId const&``: ``int64_t``)."""
    t = " ".join(ctype.replace("&", " ").split())
    t = re.sub(r"^const\s+|\s+const$", "", t).replace("const ", "").strip()
    inner = re.fullmatch(r"std::optional\s*<\s*(.+?)\s*>", t)
    base = _resolve(inner.group(1) if inner else t, aliases or {})
    if base not in _SCALARS:
        return f"parameter type {ctype} ({schema_type}) is not one the program can construct"
    tensor_param = "Tensor" in base
    if tensor_param != schema_type.startswith("Tensor"):
        return f"parameter type {ctype} does not take a schema {schema_type}"
    return None
