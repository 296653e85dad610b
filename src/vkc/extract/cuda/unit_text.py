"""The text of a self-contained CUDA unit: its includes, its items inside their namespace and
preprocessor chains, rendered by ``templates/unit.cu.j2``."""
from __future__ import annotations

import re
from pathlib import Path

import vkc
from vkc.errors import ExtractionError
from vkc.extract.cuda.items import Item, Unit
from vkc.records import KernelEntry, SourceTree
from vkc.templating import render
from vkc.toolchain.cutlass import pinned_cutlass

__all__ = ["check_external", "generated_notes", "includes", "render_items", "render_unit"]


_STD = {"algorithm", "array", "cassert", "cfloat", "climits", "cmath", "cstddef", "cstdint", "cstdio",
        "cstdlib", "cstring", "functional", "initializer_list", "iterator", "limits", "memory",
        "numeric", "tuple", "type_traits", "utility", "assert.h", "float.h", "limits.h", "math.h",
        "stdint.h", "stddef.h", "stdio.h", "stdlib.h", "string.h", "cuda/std/", "optional", "atomic",
        "bit", "cfenv", "complex", "variant", "string", "vector", "map", "unordered_map", "set", "sstream",
        "iostream", "numbers"}
_KEEP_PREFIX = ("cuda_", "cuda/", "cub/", "cooperative_groups", "mma.h", "cuda.h", "vector_types.h",
                "torch/headeronly/util/", "torch/headeronly/macros/", "c10/util/", "cutlass/", "cute/",
                "curand", "thrust/", "nv/", "crt/")
_DROP = ("torch/headeronly/core/Dispatch",)
# angle-bracket headers that are host-only or absent from a CUDA toolkit (cuBLAS is absent)
_HOST_ONLY = ("torch/", "ATen/", "c10/", "pybind11", "Python.h", "hip/", "hipcub/", "rocprim",
              "cublas", "cublasLt", "cusparse", "cusolver", "nvml", "nccl", "mpi", "Aten/",
              "iostream", "fstream", "thread", "mutex", "deque", "filesystem", "sys/", "unistd.h",
              "dlfcn.h", "fcntl.h", "c10d/", "torch_utils", "flashinfer/")
_TORCH_TYPES = {"c10::Half": "torch/headeronly/util/Half.h", "c10::BFloat16": "torch/headeronly/util/BFloat16.h",
                "c10::Float8_e4m3fn": "torch/headeronly/util/Float8_e4m3fn.h",
                "c10::Float8_e4m3fnuz": "torch/headeronly/util/Float8_e4m3fnuz.h",
                "c10::Float8_e5m2": "torch/headeronly/util/Float8_e5m2.h",
                "c10::ScalarType": "torch/headeronly/core/ScalarType.h"}
_NS_HEADERS = ((r"\bcub::", "cub/"), (r"\b(cooperative_groups|cg)::", "cooperative_groups"),
               (r"\bcuda::std::", "cuda/std"), (r"\bcuda::ptx::", "cuda/ptx"), (r"\bnvcuda::", "mma.h"),
               (r"\bCUDART_\w+", "math_constants"), (r"\bcuda::(barrier|pipeline|memcpy_async)", "cuda/"),
               (r"\bcutlass::", "cutlass/"), (r"\bcute::", "cute/"))


def check_external(unit: Unit, kept: list[Item], body: str, kernel: KernelEntry) -> None:
    """Refuse a unit that needs headers vLLM's build generates (CUTLASS/CuTe ones are kept as
    external includes: :func:`render_unit` says where they come from)."""
    if unit.missing_includes:
        used_files = {it.file for it in kept}
        miss = sorted({t for t, f in unit.missing_includes if f in used_files})
        if miss and any(re.search(r"\b" + re.escape(Path(m).stem) + r"\b", body) for m in miss) or (
                miss and kernel.file in {f for t, f in unit.missing_includes}):
            raise ExtractionError(
                f"{kernel.qualname} needs headers missing from the source tree ({', '.join(miss)}); "
                "they are generated at build time",
                hint="these headers come from vLLM's build (e.g. generate_kernels.py); pick another kernel")


def generated_notes(unit: Unit, kept: list[Item]) -> list[str]:
    """One note per header vLLM's build generates that the unit's files include: whether the kept code
    holds its text, and the generator command that wrote it."""
    ids, files = {id(it) for it in kept}, {it.file for it in kept}
    out = []
    for rel, cmd in sorted(unit.generated.items()):
        used = rel in files or bool(unit.generated_in.get(rel, set()) & ids)
        out.append(f"{rel} is generated at build time ({'inlined here' if used else 'not needed by this kernel'}); "
                   f"vkc generated it with vLLM's own generator: {cmd}")
    return out


def render_items(kept: list[Item]) -> list[str]:
    chunks: list[str] = []
    stack: list[tuple[str, str, str]] = []
    for it in kept:
        chain = list(it.chain)
        common = 0
        while common < min(len(stack), len(chain)) and stack[common][0] == chain[common][0]:
            common += 1
        while len(stack) > common:
            chunks.append(stack.pop()[2])
        for c in chain[common:]:
            chunks.append(c[1])
            stack.append(c)
        chunks.append(f"// from {it.file}:{it.line}\n{_dedent(it.text)}")
    while stack:
        chunks.append(stack.pop()[2])
    return chunks


def _dedent(text: str) -> str:
    return text.rstrip()


def includes(unit: Unit, body: str, used_files: set[str]) -> list[str]:
    out: list[str] = []

    def add(h: str):
        if h not in out:
            out.append(h)

    add("cuda_runtime.h")
    add("cstdint")
    if re.search(r"\b(half2?|__half2?)\b", body):
        add("cuda_fp16.h")
    if re.search(r"\b(__nv_bfloat162?|nv_bfloat162?)\b", body):
        add("cuda_bf16.h")
    if re.search(r"\b__nv_fp8\w*", body):
        add("cuda_fp8.h")
    uses_torch = bool(re.search(r"\b(c10|torch|at)::", body))
    for h, f in unit.system_includes:
        if f not in used_files or h.startswith(_DROP):
            continue
        if h.startswith(("torch/", "c10/")):
            if uses_torch and (h in _TORCH_TYPES.values() or h.startswith("torch/headeronly/macros/")):
                add(h)
            continue
        if h.startswith(_KEEP_PREFIX) or h in _STD or not h.startswith(_HOST_ONLY):
            add(h)
    # headers of a library the kept code uses, even when the file that included it
    # contributed no item (e.g. <cub/cub.cuh> via cub_helpers.h)
    for pat, prefix in _NS_HEADERS:
        if re.search(pat, body):
            for h, _f in unit.system_includes:
                if h.startswith(prefix):
                    add(h)
    if re.search(r"\bprintf\s*\(", body):
        add("cstdio")
    for ty, h in _TORCH_TYPES.items():
        short = ty.split("::")[-1]
        if re.search(r"\b(c10|torch::headeronly|at)::" + re.escape(short) + r"\b", body):
            add(h)
    return out


def render_unit(tree: SourceTree, kernel: KernelEntry, unit: Unit, kept: list[Item],
                body_text: str) -> tuple[str, list[str]]:
    """(unit text, extra nvcc flags) for the kept items."""
    chunks = render_items(kept)
    incs = includes(unit, body_text, {it.file for it in kept})
    flags = ["-I$TORCH_INCLUDE"] if any(i.startswith(("torch/", "c10/")) for i in incs) else []
    notes: list[str] = []
    if any(i.startswith(("cutlass/", "cute/")) for i in incs) or re.search(r"\b(cutlass|cute)::", body_text):
        flags.append("-I$CUTLASS_INCLUDE")
        pin = pinned_cutlass(tree.root)
        notes.append(f"CUTLASS/CuTe headers: vLLM's CMake fetches CUTLASS {'v' + pin if pin else '(pin not found)'} at "
                     "build time; $CUTLASS_INCLUDE is a folder holding cutlass/cutlass.h (vkc verify: --cutlass "
                     "PATH, else the nvidia-cutlass wheel's cutlass_library/source/include)")
    notes += generated_notes(unit, kept)
    unit_text = render("vkc.extract.cuda/unit.cu.j2", notes=notes,
        vkc_version=vkc.__version__, vllm_label=tree.label, qualname=kernel.qualname,
        kernel_file=kernel.file, kernel_line=kernel.line, flags_text="".join(" " + f for f in flags), includes=incs,
        chunks=chunks, unit_file_hint="<stem>.cu (stem = vkc.write.names.safe_stem(name))")
    return re.sub(r"\n{3,}", "\n\n", unit_text), flags
