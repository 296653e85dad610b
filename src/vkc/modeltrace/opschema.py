"""Register vLLM's compiled op schemas (``csrc/**/torch_bindings.cpp``) with ``torch.library``.

Runs inside the model-trace worker before vLLM is imported: the CPU build has no ``_C``, so every
``ops.def("...")`` schema string of the tree is declared here, with a Meta kernel for the ops the
tree gives no ``register_fake`` (outputs: the ``Tensor!`` arguments are written in place; a
returned Tensor is guessed as ``empty_like`` of the first tensor argument and flagged).
Static parsing only (no vLLM import), so the same function lists the schemas for tests.
"""
from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["BINDING_FILES", "binding_files", "faked_ops", "parse_schemas", "register_schemas"]

BINDING_FILES = ("csrc/torch_bindings.cpp", "csrc/moe/torch_bindings.cpp")
# folders whose bindings vLLM's CMake builds only for another platform (CPU, ROCm/HIP)
_PLATFORM_DIRS = ("cpu", "rocm")
_BLOCK = re.compile(r"TORCH_LIBRARY_FRAGMENT\(\s*(\w+)\s*,\s*(\w+)\s*\)\s*\{")
_LIT = re.compile(r'"((?:[^"\\]|\\.)*)"')
_FAKE = re.compile(r'register_fake\(\s*"(\w+)::(\w+)"')


def _block_text(text: str, start: int) -> str:
    depth, i = 1, start
    while i < len(text) and depth:
        c = text[i]
        depth += (c == "{") - (c == "}")
        i += 1
    return text[start:i]


def binding_files(tree_root: str | Path) -> tuple[str, ...]:
    """The CUDA build's ``torch_bindings.cpp`` files of a tree: :data:`BINDING_FILES` first, then every other
    ``csrc/**/torch_bindings.cpp`` outside the CPU/ROCm folders, sorted (0.25.0 - 0.30.0 register the stable-ABI
    ops in ``csrc/libtorch_stable/torch_bindings.cpp`` and ``csrc/libtorch_stable/moe/``; issue 14)."""
    csrc = Path(tree_root) / "csrc"
    found = sorted(p.relative_to(tree_root).as_posix() for p in csrc.rglob("torch_bindings.cpp")
                   if not set(p.relative_to(csrc).parts[:-1]) & set(_PLATFORM_DIRS)) if csrc.is_dir() else []
    return tuple(f for f in BINDING_FILES if f in found) + tuple(f for f in found if f not in BINDING_FILES)


def parse_schemas(tree_root: str | Path, files: tuple[str, ...] | None = None) -> list[tuple[str, str]]:
    """``(namespace, schema)`` for every ``<var>.def("...")`` in the binding files (default: :func:`binding_files`),
    in file order."""
    out: list[tuple[str, str]] = []
    for rel in binding_files(tree_root) if files is None else files:
        path = Path(tree_root) / rel
        if not path.is_file():
            continue
        text = path.read_text(encoding="utf-8")
        for m in _BLOCK.finditer(text):
            ns, var = m.group(1), m.group(2)
            body = _block_text(text, m.end())
            for d in re.finditer(rf"\b{var}\.def\(\s*((?:\"(?:[^\"\\]|\\.)*\"\s*)+)", body):
                # the C++ literals' text: their escapes (\"auto\" in a default) unescaped
                schema = re.sub(r"\\(.)", r"\1", "".join(_LIT.findall(d.group(1))))
                if "(" in schema and "->" in schema:
                    out.append((ns, " ".join(schema.split())))
    return out


def faked_ops(tree_root: str | Path) -> set[str]:
    """``ns::name`` of the ops the tree's Python registers a fake for (``register_fake("ns::name")``)."""
    found: set[str] = set()
    for path in sorted((Path(tree_root) / "vllm").rglob("*.py")):
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        if "register_fake" in text:
            found.update(f"{a}::{b}" for a, b in _FAKE.findall(text))
    return found


_LIBS: list[Any] = []


def register_schemas(tree_root: str | Path, on_guess: Callable[[str], None]) -> dict[str, int]:
    """Define every schema not defined yet; Meta kernels for those without a fake in the tree."""
    import torch

    faked = faked_ops(tree_root)
    libs: dict[str, Any] = {}
    counts = {"defined": 0, "meta_impl": 0, "skipped": 0}
    for ns, schema in parse_schemas(tree_root):
        name = schema.split("(", 1)[0].strip()
        base, _, overload = name.partition(".")
        packet = getattr(getattr(torch.ops, ns), base) if hasattr(getattr(torch.ops, ns), base) else None
        if packet is not None and (overload or "default") in packet.overloads():
            counts["skipped"] += 1    # defined already (an overload like ``scaled_fp4_quant.out`` is its own schema)
            continue
        lib = libs.get(ns)
        if lib is None:
            lib = libs[ns] = torch.library.Library(ns, "FRAGMENT")
            _LIBS.append(lib)
        try:
            lib.define(schema)
        except RuntimeError:
            counts["skipped"] += 1
            continue
        counts["defined"] += 1
        if f"{ns}::{base}" not in faked:
            lib.impl(name, _meta_impl(f"{ns}::{name}", schema, on_guess), "Meta")
            counts["meta_impl"] += 1
    return counts


def _meta_impl(qual: str, schema: str, on_guess: Callable[[str], None]):
    ret = schema.rsplit("->", 1)[1].strip()

    def impl(*args: Any, **kwargs: Any) -> Any:
        import torch

        if ret in ("()", ""):
            return None
        tensors = [a for a in args if isinstance(a, torch.Tensor)]
        n = ret.strip("()").count("Tensor")
        if not tensors or n == 0 or "[]" in ret:
            raise NotImplementedError(f"{qual}: no fake in the tree and its result ({ret}) cannot be guessed")
        on_guess(qual)
        outs = tuple(torch.empty_like(tensors[0]) for _ in range(n))
        return outs[0] if n == 1 and not ret.startswith("(") else outs

    return impl
