"""The extraction cache: one file per (tree, kernel, extractor), keyed by content.

``vkc collect KERNEL``, the ``collect --all`` workers (both through :func:`vkc.pipeline.collect`)
and ``vkc diff`` (:mod:`vkc.diff.units`) read it, so a run that failed or was interrupted after
extracting (an invocation that does not apply, a model trace that timed out, Ctrl-C) does not
extract again when it is retried.

Location: ``cache_dir()/extractions/<group>/<key>.json``.  ``group`` hashes what is the same
for every kernel of a run: the tree (root, version, origin, and the sdist's sha256, or for a local
tree a fingerprint of its files, :func:`vkc.index.cache.tree_fingerprint`, taken once per process)
and the extractor (:func:`extractor_digest`: vkc's version, this format, the source of every vkc
module the extraction imports -- ``vkc.extract``, ``vkc.cxx``, ``vkc.index`` (sibling kernels come
from the index) and the leaves :data:`_LEAVES` -- and the versions of Python and of the packages it
reads: tree-sitter, tree-sitter-cuda, triton, torch).  ``key`` adds the kernel's index entry (every
field, so its qualified name, span and launch sites) and the sha256 of its file's bytes.  A
changed tree, kernel file or extractor misses; an old group is never read again.

A file is a header line ``{"format", "qualified", "sha256"}`` and the body whose sha256 it names
(written atomically, :func:`vkc.atomic.store_cache`).  The body is the record: the extraction's
``kernel_type``, ``source_code``, ``handoff`` and ``facts`` in a tagged JSON form that keeps
tuples, dict order and non-string keys (:func:`_enc`), so it reads back as the very same
:class:`~vkc.records.Extraction` (``==``, with the same types) and artifacts are byte-identical
with and without the cache.  A value the form cannot hold exactly is not cached.  A missing,
truncated, edited or wrong-shaped file is a miss: the kernel is extracted again and the file
rewritten.  A cache that cannot be written (read-only folder) only costs speed.

Failures are cached too: an extraction is a function of what the key holds, so the same inputs
fail the same way (``collect --all`` retried would otherwise extract every kernel that cannot be
made self-contained again; ``vkc diff`` keeps their fallbacks).  What is cached is a
:class:`~vkc.errors.VkcError` of one of :mod:`vkc.errors`' own classes (class, message, hint:
raised again as it was).  Not cached: any other exception (a bug in vkc, or the machine: memory,
recursion; it must show its traceback again under ``--debug``), and nothing -- result or error --
from a process in which the Triton runtime fallback (importing a vLLM module, with a timeout) got
no answer, since a timeout on a loaded machine may not happen again.

``VKC_NO_EXTRACT_CACHE=1`` turns the cache off (nothing read, nothing written), as
``vkc list --no-cache`` does for the index; ``vkc diff --no-cache`` extracts again and rewrites.
"""
from __future__ import annotations

import dataclasses
import hashlib
import importlib.metadata
import json
import math
import os
import sys
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Any

import vkc
from vkc import errors
from vkc.atomic import store_cache
from vkc.errors import VkcError
from vkc.records import Extraction, Handoff, KernelEntry, SourceTree

__all__ = ["CACHE_FORMAT", "ENV_OFF", "ExtractionCache", "digest_files", "enabled", "extractor_digest", "group_key",
           "root"]

CACHE_FORMAT = 2                 # 1: vkc diff's own cache (source code or error only)
ENV_OFF = "VKC_NO_EXTRACT_CACHE"
_PACKAGES = ("extract", "cxx", "index")
_LEAVES = ("records.py", "errors.py", "dtypes.py", "naming.py", "pyliteral.py", "templating.py", "toolchain/cutlass.py",
           "source/fetch.py", "source/manifest.py")   # the generated-sources cache (extract/cuda/generated.py)
_SUFFIXES = (".py", ".j2", ".scm", ".json")
_DISTRIBUTIONS = ("tree-sitter", "tree-sitter-cuda", "triton", "torch")
_LANGS = ("triton", "cuda")
Result = Extraction | VkcError


def enabled() -> bool:
    """False when ``VKC_NO_EXTRACT_CACHE`` is set to anything but "" or "0"."""
    return os.environ.get(ENV_OFF, "") in ("", "0")


def root() -> Path:
    """``cache_dir()/extractions``: one folder per group (tree and extractor)."""
    from vkc.source import cache_dir
    return Path(cache_dir()) / "extractions"


def digest_files() -> list[Path]:
    """The files whose bytes :func:`extractor_digest` hashes, sorted."""
    pkg = Path(__file__).resolve().parent.parent
    files = [pkg / "__init__.py"] + [pkg / leaf for leaf in _LEAVES]
    for sub in _PACKAGES:
        files += [p for p in (pkg / sub).rglob("*") if p.is_file() and "__pycache__" not in p.parts
                  and p.suffix in _SUFFIXES]
    return sorted(files)


@lru_cache(maxsize=1)
def extractor_digest() -> str:
    """vkc's version, the cache format, the extractor's source and the versions it runs with."""
    h = hashlib.sha256(f"vkc {vkc.__version__}\0format {CACHE_FORMAT}\0python {sys.version}\0{sys.executable}\n"
                       .encode())
    for dist in _DISTRIBUTIONS:
        try:
            h.update(f"{dist} {importlib.metadata.version(dist)}\n".encode())
        except importlib.metadata.PackageNotFoundError:
            h.update(f"{dist} -\n".encode())
    pkg = Path(__file__).resolve().parent.parent
    for p in digest_files():
        name = p.relative_to(pkg).as_posix() if p.is_relative_to(pkg) else str(p)
        h.update(name.encode() + b"\0" + p.read_bytes())
    return h.hexdigest()


@lru_cache(maxsize=64)
def group_key(tree: SourceTree, digest: str) -> str:
    """The tree's and the extractor's part of every key.  Once per process and tree: a local tree's
    fingerprint walks it (~0.06 s for vLLM), and the extractor parses a tree once per process anyway
    (a tree edited under a running process is not seen by either; the kernel's file is in every key)."""
    if tree.sha256:
        state = f"sdist:{tree.sha256}"
    else:
        from vkc.index.cache import tree_fingerprint
        state = f"files:{tree_fingerprint(Path(tree.root))}"
    ident = [str(Path(tree.root).resolve()), tree.version, tree.origin, state]
    return hashlib.sha256(json.dumps([ident, digest]).encode()).hexdigest()[:32]


# -- the record's JSON form: every JSON value that is a dict is a tag -------------------------------

class _Unsupported(TypeError):
    pass


def _enc(v: Any) -> Any:
    t = type(v)
    if v is None or t is bool or t is int or t is str:
        return v
    if t is float:
        return v if math.isfinite(v) else {"f": repr(v)}
    if t is list:
        return [_enc(x) for x in v]
    if t is tuple:
        return {"t": [_enc(x) for x in v]}
    if t is dict:
        return {"d": [[_enc(k), _enc(x)] for k, x in v.items()]}
    raise _Unsupported(t.__name__)


def _dec(v: Any) -> Any:
    if isinstance(v, list):
        return [_dec(x) for x in v]
    if not isinstance(v, dict):
        return v
    (tag, body), = v.items()          # ValueError unless exactly one tag
    if tag == "t" and isinstance(body, list):
        return tuple(_dec(x) for x in body)
    if tag == "d" and isinstance(body, list):
        return {_dec(k): _dec(x) for k, x in body}   # ValueError / TypeError on a bad pair or key
    if tag == "f" and body in ("inf", "-inf", "nan"):
        return float(body)
    raise ValueError(f"unknown tag {tag!r}")


_HANDOFF_TYPES: dict[str, tuple[type, ...]] = {
    "leaf_symbols": (tuple,), "arg_order": (tuple,), "grid_expr": (str,), "meta_params": (dict,),
    "guards": (dict,), "smem_formula": (str, type(None)), "stride_semantics": (str,), "notes": (tuple,)}


def _body(result: Result) -> dict[str, Any]:
    if isinstance(result, VkcError):
        return {"error": {"class": type(result).__name__, "message": _enc(result.message),
                          "hint": _enc(result.hint)}}
    handoff = {f.name: _enc(getattr(result.handoff, f.name)) for f in dataclasses.fields(Handoff)}
    return {"kernel_type": result.kernel_type, "source_code": _enc(result.source_code), "handoff": handoff,
            "facts": _enc(result.facts)}


def _error_class(name: object) -> type[VkcError] | None:
    cls = getattr(errors, name, None) if isinstance(name, str) else None
    return cls if isinstance(cls, type) and issubclass(cls, VkcError) and cls is not VkcError else None


def _from_body(kernel: KernelEntry, body: Any) -> Result:
    """The record back; ValueError / TypeError / KeyError for anything vkc did not write."""
    if "error" in body:
        err = body["error"]
        cls = _error_class(err["class"])
        message, hint = _dec(err["message"]), _dec(err["hint"])
        if cls is None or not isinstance(message, str) or not isinstance(hint, (str, type(None))):
            raise ValueError("bad error record")
        return cls(message, hint=hint)
    handoff = {k: _dec(v) for k, v in body["handoff"].items()}
    if set(handoff) != set(_HANDOFF_TYPES) or not all(isinstance(handoff[k], t) for k, t in _HANDOFF_TYPES.items()):
        raise ValueError("bad handoff")
    facts, source = _dec(body["facts"]), _dec(body["source_code"])
    kind = body["kernel_type"]
    if kind not in _LANGS or not isinstance(source, str) or not isinstance(facts, dict):
        raise ValueError("bad extraction")
    return Extraction(kernel=kernel, kernel_type=kind, source_code=source, handoff=Handoff(**handoff), facts=facts)


def _runtime_fallback_failed(tree: SourceTree) -> bool:
    """Did the Triton runtime fallback of this process get no answer (a failed import or a timeout)?"""
    extractor = sys.modules.get("vkc.extract.triton.extractor")
    prog = getattr(extractor, "_PROGRAMS", {}).get(str(tree.root))
    answers = getattr(getattr(prog, "fallback", None), "cache", None)
    return isinstance(answers, dict) and any(v is None for v in answers.values())


class ExtractionCache:
    """The cache for the kernels of one tree (what the keys share is computed once).

    ``read=False`` extracts again and rewrites (``vkc diff --no-cache``); with
    ``VKC_NO_EXTRACT_CACHE=1`` nothing is read or written.  Picklable (pool workers get it)."""

    def __init__(self, tree: SourceTree, *, read: bool = True) -> None:
        self.tree = tree
        self.on = enabled()
        self.read = read and self.on
        self.group = group_key(tree, extractor_digest()) if self.on else ""

    def key(self, kernel: KernelEntry) -> str:
        try:
            data = (Path(self.tree.root) / kernel.file).read_bytes()
        except OSError:
            data = b"\0missing"
        blob = json.dumps([self.group, dataclasses.asdict(kernel), hashlib.sha256(data).hexdigest()],
                          sort_keys=True, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()[:40]

    def path(self, kernel: KernelEntry) -> Path:
        return root() / self.group / f"{self.key(kernel)}.json"

    def load(self, kernel: KernelEntry) -> Result | None:
        """The cached extraction or error of ``kernel``; None when missing or not sound."""
        if not self.read:
            return None
        try:
            head_text, sep, body_text = self.path(kernel).read_text(encoding="utf-8").partition("\n")
            head = json.loads(head_text)
            if not sep or head != {"format": CACHE_FORMAT, "qualified": kernel.qualified,
                                   "sha256": hashlib.sha256(body_text.encode()).hexdigest()}:
                return None
            return _from_body(kernel, json.loads(body_text))
        except (OSError, ValueError, TypeError, KeyError, AttributeError, RecursionError):
            return None

    def store(self, kernel: KernelEntry, result: Result) -> bool:
        """Write ``result`` for ``kernel``; False when it is not cached (see the module docstring)."""
        if not self.on or _runtime_fallback_failed(self.tree):
            return False
        if isinstance(result, VkcError):
            if _error_class(type(result).__name__) is not type(result):
                return False
        elif result.kernel != kernel:
            return False
        try:
            body_text = json.dumps(_body(result), separators=(",", ":"))
        except (_Unsupported, RecursionError):
            return False
        head = {"format": CACHE_FORMAT, "qualified": kernel.qualified,
                "sha256": hashlib.sha256(body_text.encode()).hexdigest()}
        return store_cache(self.path(kernel), json.dumps(head, sort_keys=True) + "\n" + body_text)

    def extract(self, kernel: KernelEntry, run: Callable[[SourceTree, KernelEntry], Extraction]) -> Extraction:
        """``run(tree, kernel)`` unless cached; a cached error is raised again."""
        got = self.load(kernel)
        if got is None:
            try:
                got = run(self.tree, kernel)
            except VkcError as exc:
                self.store(kernel, exc)
                raise
            self.store(kernel, got)
        if isinstance(got, VkcError):
            raise got
        return got
