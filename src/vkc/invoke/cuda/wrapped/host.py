"""vLLM's host function of an op, extracted statically with the repo-local code it needs: :func:`host_code`.

The extractor's unit (:func:`vkc.extract.cuda.unit.build_unit`) of the host function's file lists
every namespace-scope item of the file and of its repo-local headers (vLLM's dispatch macros in
``csrc/dispatch_utils.h``, ``get_current_cuda_stream`` in ``csrc/torch_utils.h``, the other kernels
the op launches, ...).  The host code is the identifier closure of the host function over all of
them -- host-only items and other kernels included, unlike the kernel unit's closure -- minus the
items the kernel unit (``source_code``) already holds (its ``// from FILE:LINE`` markers), rendered
in include order inside their namespaces.  Nothing is rewritten: torch comes from the stand-in.
"""
from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from vkc.cxx.pp import strip_comments
from vkc.cxx.text import split_top
from vkc.errors import InvocationError
from vkc.extract.cuda.items import Item, Unit
from vkc.extract.cuda.unit import build_unit
from vkc.extract.cuda.unit_text import includes, render_items

__all__ = ["HostCode", "NotLaunched", "WrapRefused", "host_code", "unit_items"]

_FROM = re.compile(r"^// from (\S+):(\d+)\s*$", re.M)


class WrapRefused(InvocationError):
    """The op's host function cannot be compiled against the stand-in for this call (the reason is the message)."""


class NotLaunched(WrapRefused):
    """The call takes another branch of the op's dispatch: it does not launch the kernel asked for."""


@dataclass(frozen=True)
class HostCode:
    """The host function and the repo-local code the program inlines for it."""

    function: str                            # "rms_norm"
    qualified: str                           # how the program calls it: "::rms_norm", "::vllm::foo"
    file: str                                # "csrc/layernorm_kernels.cu"
    line: int                                # where its definition starts
    params: tuple[tuple[str, str], ...]      # (C++ type, name), in order
    chunks: tuple[str, ...]                  # rendered items (namespaces opened and closed)
    includes: tuple[str, ...]                # system headers the inlined items need
    text: str                                # every inlined item's text (for the stand-in check)
    inlined: tuple[str, ...]                 # "file:line" of each inlined item

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}"


def unit_items(source: str) -> frozenset[tuple[str, int]]:
    """(file, line) of every item the kernel unit holds (its ``// from`` markers)."""
    return frozenset((m.group(1), int(m.group(2))) for m in _FROM.finditer(source))


@lru_cache(maxsize=32)
def _unit(root: str, rel: str) -> Unit:
    return build_unit(Path(root), rel)


def _is_guard(it: Item) -> bool:
    if it.kind != "preproc_def" or len(it.defines) != 1:
        return False
    name = next(iter(it.defines))
    return bool(re.fullmatch(r"\s*#\s*define\s+" + re.escape(name) + r"\s*(//[^\n]*)?\s*", it.text))


_DEVICE = re.compile(r"\b(__device__|__global__)\b")


def _definitions(unit: Unit, rel: str, function: str) -> list[Item]:
    """Host definitions of ``function`` in ``rel`` (a device function of the same name is not one)."""
    return [it for it in unit.items if it.file == rel and function in it.defines
            and it.kind in ("function_definition", "template_declaration") and "{" in it.text
            and not _DEVICE.search(strip_comments(it.text).split("{", 1)[0])]


def _generated_instantiations(root: Path, rel: str, names: list[str], host_text: str) -> str:
    """``; vLLM's build instantiates ...`` when generated sources next to ``rel`` (:mod:`vkc.extract.cuda.
    generated`) hold explicit instantiations of ``names`` (Marlin's sm80_kernel_*.cu), else ''."""
    from vkc.extract.cuda.generated import generated_files

    here = rel.rsplit("/", 1)[0] + "/"
    pat = re.compile(r"^\s*template\s+[^;]*?\b(" + "|".join(map(re.escape, names)) + r")\s*<", re.M)
    files, count, cmd = [], 0, ""
    for grel, g in sorted(generated_files(root).files.items()):
        if grel.startswith(here) and "/" not in grel[len(here):]:
            n = len(pat.findall(g.path.read_text(encoding="utf-8", errors="replace")))
            if n:
                files.append(grel)
                count += n
                cmd = cmd or g.command.split(" (", 1)[0]
    if not files:
        return ""
    named = len(re.findall(r"\b(?:" + "|".join(map(re.escape, names)) + r")\s*<", strip_comments(host_text)))
    return (f"; vLLM's build instantiates it {count} times in {len(files)} generated files ({files[0]}, ...; "
            f"{cmd}) and the host code names {named} instantiations, so the program would compile them all: "
            "not done")


@lru_cache(maxsize=32)
def _host_pass_lines(root: str, rel: str) -> tuple[bool, ...]:
    """Which lines of ``rel`` nvcc's host pass compiles (``__CUDA_ARCH__`` undefined, vkc's CUDA build)."""
    from vkc.cxx.pp import CUDA, BuildConfig, evaluate_conditionals

    cfg = BuildConfig(defines=dict(CUDA.defines), undefined=CUDA.undefined | {"__CUDA_ARCH__"},
                      undefined_patterns=CUDA.undefined_patterns)
    text = (Path(root) / rel).read_text(encoding="utf-8", errors="replace")
    return tuple(evaluate_conditionals(text, cfg)[1])


def params_of(text: str, function: str) -> tuple[tuple[str, str], ...]:
    """(type, name) of each parameter of ``function``'s definition in ``text``."""
    code = strip_comments(text)
    m = re.search(r"\b" + re.escape(function) + r"\s*\(", code)
    if m is None:
        raise WrapRefused(f"cannot find the parameter list of {function}")
    depth, i = 0, m.end() - 1
    for j in range(i, len(code)):
        depth += {"(": 1, ")": -1}.get(code[j], 0)
        if depth == 0:
            inner = code[i + 1:j]
            break
    else:
        raise WrapRefused(f"unbalanced parameter list of {function}")
    out = []
    for p in split_top(inner, angles=True):
        p = " ".join(p.split("=", 1)[0].split())
        if not p or p == "void":
            continue
        pm = re.match(r"^(.*?)([A-Za-z_]\w*)$", p)
        if pm is None or not pm.group(1).strip():
            raise WrapRefused(f"cannot read parameter {p!r} of {function}")
        out.append((pm.group(1).strip(), pm.group(2)))
    return tuple(out)


_NOISE = re.compile(r"//[^\n]*|/\*.*?\*/|\"(?:\\.|[^\"\\\n])*\"|'(?:\\.|[^'\\\n])*'", re.S)
_WORD = re.compile(r"[A-Za-z_]\w*")


@lru_cache(maxsize=4096)
def _refs(text: str) -> tuple[str, ...]:
    """Identifiers of ``text`` outside comments and string literals, found in one pass (a ``//`` inside a
    string does not start a comment: the extractor's item refs can lose the rest of such a function)."""
    return tuple(sorted(set(_WORD.findall(_NOISE.sub(" ", text)))))


def _closure(unit: Unit, roots: list[Item], skip: frozenset[tuple[str, int]]) -> list[Item]:
    by_name: dict[str, list[Item]] = {}
    for it in unit.items:
        if _is_guard(it) or (it.file, it.line) in skip:
            continue
        for d in it.defines:
            by_name.setdefault(d, []).append(it)
    keep = {id(r): r for r in roots}
    work = [n for r in roots for n in _refs(r.text)]
    seen: set[str] = set()
    while work:
        name = work.pop()
        if name in seen:
            continue
        seen.add(name)
        for it in by_name.get(name, ()):
            if id(it) not in keep:
                keep[id(it)] = it
                work.extend(_refs(it.text))
    # ``using namespace vllm::cuda_async;``: kept with the code of that namespace it makes visible
    paths = {p for it in keep.values() for p in _ns_paths(it.chain)}
    for it in unit.items:
        m = re.match(r"using\s+namespace\s+([\w:]+)\s*;", it.text.strip())
        if m and id(it) not in keep and (it.file, it.line) not in skip and m.group(1).lstrip(":") in paths:
            keep[id(it)] = it
    return sorted(keep.values(), key=lambda it: it.order)


_PROTOTYPE = re.compile(r"^[^={;]*?\b([A-Za-z_]\w*)\s*\(")


def _unconditional(text: str) -> str:
    """``text`` without its ``#if``...``#endif`` regions (what the build config may compile out:
    ``#if defined(ENABLE_NVFP4_SM100) && ENABLE_NVFP4_SM100`` around an SM100-only call)."""
    out, depth = [], 0
    for line in text.splitlines():
        d = re.match(r"\s*#\s*(if|ifdef|ifndef|endif)\b", line)
        if d and d.group(1) != "endif":
            depth += 1
        elif d:
            depth = max(0, depth - 1)
        elif depth == 0:
            out.append(line)
    return "\n".join(out)


def _defined_elsewhere(unit: Unit, kept: list[Item]) -> list[str]:
    """Functions the kept code calls (outside preprocessor conditionals) but only declares
    (``void top_k_per_row_decode(...);`` from ``csrc/ops.h``) and the unit never defines: they live in
    another of vLLM's translation units."""
    defined = {d for it in unit.items if "{" in it.text for d in it.defines}
    declared = set()
    for it in kept:
        m = _PROTOTYPE.match(strip_comments(it.text).strip())
        if it.kind in ("declaration", "template_declaration") and "{" not in it.text and m \
                and m.group(1) in it.defines and m.group(1) not in defined:
            declared.add(m.group(1))
    called = {n for it in kept if "{" in it.text for n in _refs(_unconditional(it.text))}
    return sorted(declared & called)


def _ns_paths(chain: tuple[tuple[str, str, str], ...]) -> set[str]:
    parts = [p for key, _o, _c in chain if key.startswith("ns:") and key[3:] and not key[3:].startswith(":")
             for p in key[3:].split("::") if p]
    return {"::".join(parts[:i]) for i in range(1, len(parts) + 1)}


_NS_OPEN = re.compile(r"\bnamespace\s*([\w:]*)\s*$")


@lru_cache(maxsize=64)
def _namespaces_by_line(root: str, rel: str) -> tuple[tuple[str, ...] | None, ...]:
    """The namespaces open at the start of each line of ``rel`` (as the unit evaluates it), None inside
    any other brace: what an item's chain should say when tree-sitter's error recovery lost it."""
    from vkc.cxx import pp

    raw = (Path(root) / rel).read_text(encoding="utf-8", errors="replace")
    text, _ = pp.evaluate_conditionals(raw, pp.CUDA)
    code = re.sub(r"//[^\n]*|/\*.*?\*/|\"(?:\\.|[^\"\\\n])*\"|'(?:\\.|[^'\\\n])*'",
                  lambda m: re.sub(r"[^\n]", " ", m.group(0)), text, flags=re.S)
    code = re.sub(r"^[ \t]*#.*(?:\\\n.*)*$", lambda m: re.sub(r"[^\n]", " ", m.group(0)), code, flags=re.M)
    stack: list[str | None] = []
    out: list[tuple[str, ...] | None] = [()]
    last = 0
    for i, ch in enumerate(code):
        if ch == "\n":
            out.append(None if any(s is None for s in stack) else tuple(s for s in stack if s is not None))
        elif ch == "{":
            m = _NS_OPEN.search(code[last:i])
            stack.append(m.group(1) if m else None)
            last = i + 1
        elif ch == "}":
            if stack:
                stack.pop()
            last = i + 1
        elif ch == ";":
            last = i + 1
    return tuple(out)


def _with_namespaces(root: str, it: Item) -> Item:
    """``it`` with the namespace chain its position in the file has, when the parse lost it."""
    lines = _namespaces_by_line(root, it.file)
    scanned = lines[it.line - 1] if 0 < it.line <= len(lines) else None
    have = tuple(key[3:] for key, _o, _c in it.chain if key.startswith("ns:"))
    if scanned is None or have or not scanned:
        return it
    names = [n for n in scanned if n]       # an anonymous namespace cannot be reopened by name: dropped
    chain = tuple((f"ns:{n}", f"namespace {n} {{", f"}}  // namespace {n}") for n in names)
    return dataclasses.replace(it, chain=chain + it.chain)


def host_code(root: str, rel: str, function: str, unit_source: str, nargs: int | None = None) -> HostCode:
    """The host function ``function`` of ``rel`` and its closure, without what ``unit_source`` holds.

    ``nargs`` picks the overload with that many parameters when the file defines several."""
    if not (Path(root) / rel).is_file():
        raise WrapRefused(f"{rel} (the file defining {function}) is not in the tree")
    unit = _unit(str(root), rel)
    defs = _definitions(unit, rel, function)
    if nargs is not None and len(defs) > 1:
        defs = [d for d in defs if len(params_of(d.text, function)) == nargs]
    if len(defs) > 1:      # marlin.cu's ``#if __CUDA_ARCH__ < 750`` stub: not what the host pass compiles
        live = _host_pass_lines(str(root), rel)
        defs = [d for d in defs if 0 < d.line <= len(live) and live[d.line - 1]]
    if len(defs) != 1:
        raise WrapRefused(f"{rel} defines {len(defs)} host functions named {function}"
                          + (f" with {nargs} parameters" if nargs is not None else ""))
    params = params_of(defs[0].text, function)
    kept = [_with_namespaces(str(root), it) for it in _closure(unit, [defs[0]], unit_items(unit_source))]
    elsewhere = _defined_elsewhere(unit, kept)
    if elsewhere:
        raise WrapRefused(f"{function} calls {', '.join(elsewhere)}, which vLLM defines in another translation "
                          "unit (the program holds one: the host function's file and its headers)"
                          + _generated_instantiations(Path(root), rel, elsewhere, "\n".join(it.text for it in kept)))
    host = next(it for it in kept if it.file == defs[0].file and it.line == defs[0].line)
    text = "\n".join(it.text for it in kept)
    used = {it.file for it in kept}
    have = set(re.findall(r"^#include <([^>]+)>", unit_source, re.M))
    # the extractor's device-side choice, plus the C++ standard headers host code needs (<deque>, <mutex>)
    std = [h for h, f in unit.system_includes if f in used and re.fullmatch(r"[a-z_]+", h)]
    incs = tuple(dict.fromkeys(h for h in (*includes(unit, text, used), *std) if h not in have))
    ns = [key[3:] for key, _o, _c in host.chain if key.startswith("ns:") and key[3:] and not key[3:].startswith(":")]
    return HostCode(function, "".join(f"::{n}" for n in ns) + f"::{function}", rel, host.line, params, tuple(render_items(kept)), incs, text,
                    tuple(f"{it.file}:{it.line}" for it in kept))
