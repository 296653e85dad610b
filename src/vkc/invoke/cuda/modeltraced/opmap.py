"""Which CUDA kernels a vLLM custom op launches, read from the tree (not written by hand).

``csrc/**/torch_bindings.cpp`` (and any other ``.cpp``/``.cu`` with a registration block, e.g.
``csrc/quantization/marlin/marlin.cu``) registers each op's CUDA implementation
(``STABLE_TORCH_LIBRARY_IMPL(_C, CUDA, ops) { ops.impl("rms_norm", TORCH_BOX(&rms_norm)); }``,
or the older ``ops.impl("rms_norm", torch::kCUDA, &rms_norm)``); that names the host function.
The kernels are those whose launch sites (vkc's index, :attr:`LaunchSite.wrapper`) lie in that
function, in the host functions it calls (same-file calls first, then a function defined in exactly
one other launch-site file), or in a macro it expands whose body holds a launch, up to
:data:`MAX_DEPTH` calls deep.  An op whose host function the tree does not define, or that reaches
no launch site, has no entry.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from vkc.cxx.model import FileModel, file_model
from vkc.records import KernelIndex

__all__ = ["MACRO_DEPTH", "MAX_DEPTH", "OpKernels", "op_kernel_map", "registrations"]

MAX_DEPTH = 4
_SKIP_DIRS = ("csrc/cpu/", "csrc/rocm/")        # not the CUDA build
_BLOCK = re.compile(r"\b(?:STABLE_)?TORCH_LIBRARY_(?:IMPL|EXPAND|FRAGMENT)?\s*\(\s*([^,]+?)\s*,\s*(?:(\w+)\s*,\s*)?(\w+)\s*\)\s*\{")
_IMPL = re.compile(r"\b(\w+)\s*\.\s*impl\s*\(\s*\"([^\"]+)\"\s*,\s*(?:TORCH_BOX\s*\(\s*&\s*([\w:]+)\s*\)|"
                   r"torch::kCUDA\s*,\s*&\s*([\w:]+))")
_CALL = re.compile(r"(?<![.\w>])([A-Za-z_]\w*)\s*(?:<[^;(){}]*>)?\s*\(")
_LOCAL = re.compile(r"\b([A-Za-z_]\w*)\s*=(?!=)")
_COMMENT = re.compile(r"//[^\n]*|/\*.*?\*/", re.S)
_WORD = re.compile(r"\b[A-Za-z_]\w*\b")
MACRO_DEPTH = 3


@dataclass(frozen=True)
class OpKernels:
    """One op's CUDA implementation and the kernels it launches."""

    op: str                        # "_C::rms_norm"
    host: str                      # the host function, as registered ("rms_norm")
    host_file: str                 # where it is defined
    kernels: tuple[str, ...]       # qualified kernel names, sorted
    via: tuple[str, ...]           # host functions / macros on the way, sorted


def _namespace(expr: str, here: str) -> str:
    """The library namespace a registration block names (``TORCH_EXTENSION_NAME`` -> ``_C`` / ``_moe_C``)."""
    ext = "_moe_C" if here.startswith("csrc/moe/") else "_C"
    expr = " ".join(expr.split())
    m = re.fullmatch(r"CONCAT\(\s*TORCH_EXTENSION_NAME\s*,\s*(\w+)\s*\)", expr)
    if m:
        return ext + m.group(1)
    return ext if expr == "TORCH_EXTENSION_NAME" else expr


def _blocks(text: str) -> Iterable[tuple[str, str | None, int, int]]:
    """(namespace expr, dispatch key or None, body start, body end) of each registration block."""
    for m in _BLOCK.finditer(text):
        depth, i = 1, m.end()
        while i < len(text) and depth:
            depth += {"{": 1, "}": -1}.get(text[i], 0)
            i += 1
        yield m.group(1), m.group(2), m.end(), i


def _binding_files(root: Path) -> list[Path]:
    """The files that register CUDA implementations: every ``csrc/**/torch_bindings.cpp`` first (sorted),
    then every other ``.cpp``/``.cu`` source with a registration block (sorted): ops such as
    ``machete_mm`` (csrc/quantization/machete/machete_pytorch.cu) or ``marlin_gemm``
    (csrc/quantization/marlin/marlin.cu) are implemented next to their kernels, not in a bindings file.
    An op registered in two files keeps the first (a bindings file's)."""
    csrc = root / "csrc"
    first = sorted(csrc.rglob("torch_bindings.cpp"))
    rest = sorted(p for ext in ("*.cpp", "*.cu") for p in csrc.rglob(ext)
                  if p.name != "torch_bindings.cpp" and "TORCH_LIBRARY" in p.read_text(encoding="utf-8", errors="replace"))
    return first + rest


def registrations(root: Path) -> dict[str, tuple[str, str]]:
    """``"_C::rms_norm" -> (host function, registering file)`` for every CUDA implementation."""
    out: dict[str, tuple[str, str]] = {}
    for path in _binding_files(root):
        rel = path.relative_to(root).as_posix()
        if rel.startswith(_SKIP_DIRS):
            continue
        text = _COMMENT.sub(" ", path.read_text(encoding="utf-8", errors="replace"))
        for ns_expr, key, start, end in _blocks(text):
            ns = _namespace(ns_expr, rel)
            for m in _IMPL.finditer(text, start, end):
                boxed, legacy = m.group(3), m.group(4)
                if boxed and key != "CUDA":
                    continue
                fn = (boxed or legacy).rsplit("::", 1)[-1]
                out.setdefault(f"{ns}::{m.group(2).split('.', 1)[0]}", (fn, rel))
    return out


def _nearest_definitions(launch_file: str, kernels: set[str]) -> set[str]:
    """Kernels of one launch site, narrowed where two definitions share a name: the index matches a launch
    to every kernel of its name (``Marlin`` is defined in csrc/quantization/marlin/marlin_template.h and
    in csrc/moe/marlin_moe_wna16/marlin_template.h, each included by the ``marlin_mm`` next to it), so
    of same-named kernels keep those defined in the launching file's own directory, when one is."""
    by_name: dict[str, set[str]] = {}
    for q in kernels:
        by_name.setdefault(q.split(":", 1)[-1].split("@", 1)[0], set()).add(q)
    here = launch_file.rsplit("/", 1)[0]
    out: set[str] = set()
    for same in by_name.values():
        near = {q for q in same if q.split(":", 1)[0].rsplit("/", 1)[0] == here}
        out |= near if near and len({q.split(":", 1)[0] for q in same}) > 1 else same
    return out


class _Graph:
    """Host functions and macros of the launch-site files, and what launches where."""

    def __init__(self, root: Path, index: KernelIndex) -> None:
        self.root = str(root)
        self.launch: dict[tuple[str, str], set[str]] = {}     # (file, function or macro) -> kernels
        files: set[str] = set()
        for k in index.kernels:
            if k.lang != "cuda" or k.rocm_only:
                continue
            for s in k.launch_sites:
                # a launch in a macro that another macro expands has no enclosing function (wrapper
                # None): it is still reached through the macro (CALL_CONCAT_AND_CACHE_MLA ->
                # LAUNCH_CONCAT_AND_CACHE_MLA)
                if s.file.startswith(_SKIP_DIRS) or not (s.wrapper or s.form == "macro"):
                    continue
                files.add(s.file)
                if s.wrapper:
                    self.launch.setdefault((s.file, s.wrapper), set()).add(k.qualified)
                if s.form == "macro":
                    macro = self._macro_at(s.file, s.line)
                    if macro:
                        self.launch.setdefault((s.file, macro), set()).add(k.qualified)
        self.launch = {node: _nearest_definitions(node[0], ks) for node, ks in self.launch.items()}
        self.files = sorted(files)
        self.defined: dict[str, list[str]] = {}                 # function name -> files defining it
        for f in self.files:
            for name in sorted({n for _s, _e, n in self.model(f).functions}):
                self.defined.setdefault(name, []).append(f)

    def model(self, rel: str) -> FileModel:
        return file_model(self.root, rel)

    def _macro_at(self, rel: str, line: int) -> str | None:
        for name, (_params, body, mline) in self.model(rel).macros.items():
            if mline <= line <= mline + body.count("\n"):
                return name
        return None

    def body(self, rel: str, fn: str) -> str:
        fm = self.model(rel)
        return "\n".join(fm.text[s:e] for s, e, n in fm.functions if n == fn)

    def callees(self, rel: str, fn: str) -> list[tuple[str, str]]:
        """(file, name) of functions and launch-holding macros ``fn`` names in its body."""
        fm = self.model(rel)
        body = self.body(rel, fn)
        names = set(_CALL.findall(body))                   # name(...) / name<...>(...), not a member call
        # macros it names, called or passed (DISPATCH_BY_KV_CACHE_DTYPE(..., CALL_RESHAPE_AND_CACHE_FLASH)),
        # expanded up to MACRO_DEPTH levels
        macros = set(_WORD.findall(body)) & set(fm.macros)
        for _level in range(MACRO_DEPTH):
            grown = set(macros)
            for m in sorted(macros):
                params, text, _line = fm.macros[m]
                own = set(params or ())                    # a parameter (KERNEL) is not the macro KERNEL
                names |= set(_CALL.findall(text)) - own
                grown |= (set(_WORD.findall(text)) - own) & set(fm.macros)
            if grown == macros:
                break
            macros = grown
        names |= macros
        names.discard(fn)
        local = set(_LOCAL.findall(body))                  # lambdas / variables: never another file's function
        out: list[tuple[str, str]] = []
        for n in sorted(names):
            if (rel, n) in self.launch and n in fm.macros:
                out.append((rel, n))
            where = self.defined.get(n, [])
            if rel in where:
                out.append((rel, n))
            elif len(where) == 1 and n not in local:
                out.append((where[0], n))
        return out


def _reach(g: _Graph, rel: str, host: str) -> tuple[set[str], set[str]]:
    kernels: set[str] = set()
    via: set[str] = set()
    seen = {(rel, host)}
    frontier = [(rel, host)]
    for _depth in range(MAX_DEPTH + 1):
        nxt: list[tuple[str, str]] = []
        for node in frontier:
            found = g.launch.get(node, set())
            if found and node != (rel, host):
                via.add(node[1])
            kernels |= found
            for c in g.callees(*node):
                if c not in seen:
                    seen.add(c)
                    nxt.append(c)
        frontier = nxt
    return kernels, via


_CACHE: dict[str, Mapping[str, OpKernels]] = {}


def _build(root: str, index: KernelIndex) -> Mapping[str, OpKernels]:
    g = _Graph(Path(root), index)
    out: dict[str, OpKernels] = {}
    for op, (host, bind_file) in sorted(registrations(Path(root)).items()):
        homes = g.defined.get(host, [])
        if not homes:
            continue
        kernels: set[str] = set()
        via: set[str] = set()
        for rel in homes:
            k, v = _reach(g, rel, host)
            kernels |= k
            via |= v
        if kernels:
            out[op] = OpKernels(op, host, homes[0] if len(homes) == 1 else ", ".join(homes),
                                tuple(sorted(kernels)), tuple(sorted(via)))
    return out


def _disk_path(index: KernelIndex) -> Path:
    from vkc.index.cache import cache_key
    from vkc.source import cache_dir

    h = hashlib.sha256((cache_key(index.tree) + Path(__file__).read_text(encoding="utf-8")).encode()).hexdigest()
    return cache_dir() / "opmap" / f"{h[:32]}.json"


def op_kernel_map(index: KernelIndex) -> Mapping[str, OpKernels]:
    """``op -> OpKernels`` for every CUDA op of ``index.tree`` that reaches a launch site.

    Cached in memory and on disk (``$VKC_CACHE_DIR/opmap/``, keyed by the index cache key and
    this module's source): building it parses every launch-site file (~10 s)."""
    key = f"{index.tree.root}|{index.tree.sha256}|{len(index.kernels)}"
    if key in _CACHE:
        return _CACHE[key]
    path = _disk_path(index)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        got: Mapping[str, OpKernels] = {k: OpKernels(v["op"], v["host"], v["host_file"], tuple(v["kernels"]),
                                                     tuple(v["via"])) for k, v in data.items()}
    except (OSError, ValueError, KeyError, TypeError):
        got = _build(str(index.tree.root), index)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(json.dumps({k: dataclasses.asdict(v) for k, v in sorted(got.items())}, sort_keys=True),
                           encoding="utf-8")
            os.replace(tmp, path)
        except OSError:
            pass                                   # a read-only cache only costs the rebuild
    _CACHE[key] = got
    return got
