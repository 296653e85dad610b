"""What a CUDA plan builder (a recipe or the untraced path) sees: :class:`Ctx`."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from vkc.errors import InvocationError
from vkc.invoke.core.dims import ModelDims
from vkc.invoke.cuda.literals import cpp_float, cpp_int
from vkc.invoke.cuda.plan import Stmt
from vkc.invoke.cuda.srcref import origin, relocated
from vkc.records import Extraction, SourceTree

__all__ = ["DECODE_MAX_BATCH", "PREFILL_MAX_TOKENS", "Ctx", "TracedMismatch"]

DECODE_MAX_BATCH = 1024          # decode: a batch of single tokens, at most this many sequences
PREFILL_MAX_TOKENS = 1 << 20     # prefill: cap on the token dimension (very large budgets)


class TracedMismatch(InvocationError):
    """A size of the traced op call disagrees with the value the recipe derives from the model."""


@dataclass(frozen=True)
class Ctx:
    """One kernel x model x workload, and helpers that cite the vLLM wrapper."""

    tree: SourceTree
    extraction: Extraction
    dims: ModelDims
    workload: str
    kernel: str                  # qualified kernel name, "csrc/file.cu:name"
    # model-traced: recipe constant -> (value, "which traced tensor size"); const_int checks against it
    bound: Mapping[str, tuple[int, str]] = field(default_factory=dict)
    # constants whose recipe value is a vkc choice (e.g. fused_moe's BLOCK_SIZE_M): the traced value replaces it
    bound_choices: frozenset[str] = frozenset()
    # a recipe that followed a moved file (vkc.invoke.cuda.moved): (recipe's folder prefix, this tree's)
    moved_prefixes: tuple[str, str] | None = None

    @property
    def dtype(self) -> str:
        return self.dims.dtype

    def w(self, file: str, text: str, code: str | None = None, after: int = 0, note: str = "") -> Stmt:
        """A wrapper statement, copied verbatim (``code`` overrides the emitted text,
        e.g. to drop a torch call, and then ``text`` is only the anchor)."""
        where = self.at(file, text, after)
        if code is None:
            return Stmt(" ".join(text.split()), where, note)
        return Stmt(code, f"binds {where}: {' '.join(text.split())}", note)

    def at(self, file: str, text: str, after: int = 0) -> str:
        """``file:line`` of ``text`` (found verbatim).  Where the file is looked for (issue 14): where a followed
        move puts it (``moved_prefixes``), then as the recipe cites it, then -- only when the tree has no such
        file -- the one file of that trailing path elsewhere in the tree (:func:`~vkc.invoke.cuda.srcref.relocated`)."""
        root = Path(self.tree.root)
        tried: list[str] = []
        if self.moved_prefixes is not None and file.startswith(self.moved_prefixes[0]):
            tried.append(self.moved_prefixes[1] + file[len(self.moved_prefixes[0]):])
        tried.append(file)
        if not (root / file).is_file():
            other = relocated(root, file)
            if other is not None and other not in tried:
                tried.append(other)
        present = [f for f in tried if (root / f).is_file()]
        first: InvocationError | None = None
        for f in present:
            try:
                return origin(self.tree, f, text, after)
            except InvocationError as e:
                first = first or e
        if first is None:
            return origin(self.tree, file, text, after)      # the recipe's own file, missing: its error
        if present == [file]:
            raise first
        raise InvocationError(f"{first.message} (the recipe cites {file}; looked in {', '.join(present)})",
                              hint=first.hint)

    def const_int(self, name: str, value: int | None, why: str, ctype: str = "int",
                  src: tuple[str, str] | None = None) -> Stmt:
        """A constant bound from the model (or a fixed choice), with the wrapper line it replaces.

        Model-traced (``bound`` names it): the traced call's value, which must equal the model's
        (else :class:`TracedMismatch`: the recipe's other choices would not fit the traced call)."""
        if name in self.bound:
            got, where = self.bound[name]
            if got != value and name not in self.bound_choices:
                raise TracedMismatch(f"traced {where} = {got}, but the recipe derives {name} = {value} ({why})")
            rel = "equal" if got == value else f"recipe's choice {value} replaced"
            note = "; ".join(x for x in (f"model: {why} ({rel})", self._replaces(src)) if x)
            return Stmt(f"const {ctype} {name} = {cpp_int(got)};", f"traced: {where}", note)
        return Stmt(f"const {ctype} {name} = {cpp_int(value)};", f"model: {why}", self._replaces(src))

    def const_float(self, name: str, value: float, why: str, ctype: str = "float",
                    src: tuple[str, str] | None = None) -> Stmt:
        return Stmt(f"const {ctype} {name} = {cpp_float(value)};", f"model: {why}", self._replaces(src))

    def _replaces(self, src: tuple[str, str] | None) -> str:
        if src is None:
            return ""
        return f"replaces {self.at(*src)}: {' '.join(src[1].split())}"

    def tokens_max(self) -> str:
        """Cap on the token/batch dimension for the workload."""
        return cpp_int(DECODE_MAX_BATCH if self.workload == "decode" else PREFILL_MAX_TOKENS)
