"""Recipe base: what a per-wrapper-family recipe gets and the helpers it uses."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from vkc.errors import NotApplicableError
from vkc.invoke.cuda.dims import Dims
from vkc.invoke.cuda.spec import Plan, Stmt, cpp_float, cpp_int
from vkc.invoke.cuda.srcref import origin
from vkc.records import Extraction, SourceTree

# dtype -> C++ type, per dispatch family (survey section 3: read them from the macro)
TORCH_TYPES = {"bfloat16": "c10::BFloat16", "float16": "c10::Half", "float32": "float"}
NATIVE_KV_TYPES = {"bfloat16": "__nv_bfloat16", "float16": "uint16_t", "float32": "float"}  # DISPATCH_BY_KV_CACHE_DTYPE
NATIVE_TYPES = {"bfloat16": "__nv_bfloat16", "float16": "half", "float32": "float"}
SIZEOF = {"c10::BFloat16": 2, "c10::Half": 2, "float": 4, "__nv_bfloat16": 2, "half": 2,
          "uint16_t": 2, "uint8_t": 1, "int8_t": 1, "c10::Float8_e4m3fn": 1, "int32_t": 4,
          "int64_t": 8}
FP8 = "c10::Float8_e4m3fn"       # VLLM_STABLE_DISPATCH_FP8_TYPES on CUDA
DECODE_MAX_BATCH = 1024          # decode: a batch of single tokens, at most this many sequences
PREFILL_MAX_TOKENS = 1 << 20     # prefill: cap on the token dimension (very large budgets)


@dataclass
class Ctx:
    """What a recipe sees."""
    tree: SourceTree
    extraction: Extraction
    dims: Dims
    workload: str
    kernel: str                  # qualified kernel name, "csrc/file.cu:name"

    @property
    def dtype(self) -> str:
        return self.dims.dtype

    def w(self, file: str, text: str, code: str | None = None, after: int = 0, note: str = "") -> Stmt:
        """A wrapper statement, copied verbatim (``code`` overrides the emitted text,
        e.g. to drop a torch call, and then ``text`` is only the anchor)."""
        where = origin(self.tree, file, text, after)
        if code is None:
            return Stmt(" ".join(text.split()), where, note)
        return Stmt(code, f"binds {where}: {' '.join(text.split())}", note)

    def at(self, file: str, text: str, after: int = 0) -> str:
        return origin(self.tree, file, text, after)

    def const_int(self, name: str, value: int, why: str, ctype: str = "int",
                  src: tuple[str, str] | None = None) -> Stmt:
        """A constant bound from the model (or a fixed choice), with the wrapper line it replaces."""
        o = f"model: {why}"
        note = ""
        if src is not None:
            note = f"replaces {src[0]}:{origin(self.tree, *src).split(':')[-1]}: {' '.join(src[1].split())}"
        return Stmt(f"const {ctype} {name} = {cpp_int(value)};", o, note)

    def const_float(self, name: str, value: float, why: str, ctype: str = "float",
                    src: tuple[str, str] | None = None) -> Stmt:
        o = f"model: {why}"
        note = ""
        if src is not None:
            note = f"replaces {src[0]}:{origin(self.tree, *src).split(':')[-1]}: {' '.join(src[1].split())}"
        return Stmt(f"const {ctype} {name} = {cpp_float(value)};", o, note)

    def tokens_max(self) -> str:
        """Cap on the token/batch dimension for the workload."""
        return cpp_int(DECODE_MAX_BATCH if self.workload == "decode" else PREFILL_MAX_TOKENS)


@dataclass(frozen=True)
class Recipe:
    """One wrapper family: builds a Plan for (kernel, model dims, workload)."""
    kernels: tuple[str, ...]                 # "csrc/file.cu:name" keys
    build: Callable[[Ctx], Plan]
    workloads: tuple[str, ...] = ("prefill", "decode")
    default_workload: str = "prefill"
    family: str = ""

    def check_workload(self, kernel: str, workload: str) -> None:
        if workload not in self.workloads:
            raise NotApplicableError(
                f"{kernel} is not used for {workload} in vLLM",
                hint=f"use --workload {' or '.join(self.workloads)}")
