"""What a CUDA plan builder (a recipe or the untraced path) sees: :class:`Ctx`."""
from __future__ import annotations

from dataclasses import dataclass

from vkc.invoke.core.dims import ModelDims
from vkc.invoke.cuda.literals import cpp_float, cpp_int
from vkc.invoke.cuda.plan import Stmt
from vkc.invoke.cuda.srcref import origin
from vkc.records import Extraction, SourceTree

__all__ = ["DECODE_MAX_BATCH", "PREFILL_MAX_TOKENS", "Ctx"]

DECODE_MAX_BATCH = 1024          # decode: a batch of single tokens, at most this many sequences
PREFILL_MAX_TOKENS = 1 << 20     # prefill: cap on the token dimension (very large budgets)


@dataclass(frozen=True)
class Ctx:
    """One kernel x model x workload, and helpers that cite the vLLM wrapper."""

    tree: SourceTree
    extraction: Extraction
    dims: ModelDims
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

    def const_int(self, name: str, value: int | None, why: str, ctype: str = "int",
                  src: tuple[str, str] | None = None) -> Stmt:
        """A constant bound from the model (or a fixed choice), with the wrapper line it replaces."""
        return Stmt(f"const {ctype} {name} = {cpp_int(value)};", f"model: {why}", self._replaces(src))

    def const_float(self, name: str, value: float, why: str, ctype: str = "float",
                    src: tuple[str, str] | None = None) -> Stmt:
        return Stmt(f"const {ctype} {name} = {cpp_float(value)};", f"model: {why}", self._replaces(src))

    def _replaces(self, src: tuple[str, str] | None) -> str:
        if src is None:
            return ""
        return f"replaces {src[0]}:{origin(self.tree, *src).split(':')[-1]}: {' '.join(src[1].split())}"

    def tokens_max(self) -> str:
        """Cap on the token/batch dimension for the workload."""
        return cpp_int(DECODE_MAX_BATCH if self.workload == "decode" else PREFILL_MAX_TOKENS)
