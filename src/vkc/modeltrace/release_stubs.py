"""Stand-ins a vLLM release's start-up imports need on a machine without its build (issue 14).

Two kinds, both decided from the tree at hand, never from a version table of module paths:

* **compiled extensions**: ``vllm/platforms/cuda.py`` imports vLLM's compiled extensions at module
  level to register their ops (0.33.0: ``vllm._C_stable_libtorch``; 0.20.0 and 0.11.0 also
  ``vllm._C``).  :func:`compiled_extension_imports` reads that file's imports statically and keeps the
  ``vllm._*`` names the tree has no Python source for (so they are built, not shipped); each gets an
  empty module (vkc registers the op schemas itself, :mod:`vkc.modeltrace.opschema`).
* **pure-Python dependencies** a release imports at module level although no traced code calls
  them, listed per release range in :data:`RELEASE_DEPS` (0.11.x: ``vllm/utils/__init__.py:62``
  ``import setproctitle``, ``vllm/multimodal/hasher.py:11`` ``from blake3 import blake3``).  Each
  that is not installed gets an import-only stand-in whose functions do nothing;
  :func:`install_release_stubs` returns their names, which the model-trace worker reports as warnings.

Runs inside the trace workers (before ``vllm.platforms.cuda`` is imported); the scanning functions are
pure and tested on fixture trees (``tests/releases/``).
"""
from __future__ import annotations

import ast
import importlib.machinery
import importlib.util
import re
import sys
import types
from pathlib import Path
from typing import Any

__all__ = ["RELEASE_DEPS", "compiled_extension_imports", "deps_for", "install_release_stubs", "release_kwargs",
           "version_key"]

# (first release, first release past the range, package, where the release imports it)
RELEASE_DEPS: tuple[tuple[str, str, str, str], ...] = (
    ("0.0.0", "0.12.0", "setproctitle", "vllm/utils/__init__.py imports it at module level (names processes only)"),
    ("0.0.0", "0.12.0", "blake3", "vllm/multimodal/hasher.py imports it at module level (multimodal input hashes)"),
    ("0.0.0", "0.21.0", "gguf", ("vllm/transformers_utils/gguf_utils.py:9 imports it at module level (0.20.0; the "
                               "config path reaches it; a non-GGUF model never calls it)")),
)
# submodules a release imports by name (``from gguf.constants import Keys``); their attributes are
# placeholders that raise when called
SUBMODULES: dict[str, tuple[str, ...]] = {"gguf": ("constants", "quants")}
PLATFORM_FILE = "vllm/platforms/cuda.py"
STUBBED: list[str] = []


def version_key(v: str) -> tuple[int, ...]:
    """``0.11.0`` -> (0, 11, 0); a suffix (rc1, .post1, +local) ends it; "local" -> ()."""
    out = []
    for part in v.split("+")[0].split("."):
        m = re.match(r"\d+", part)
        if not m:
            break
        out.append(int(m.group()))
        if m.end() != len(part):
            break
    return tuple(out)


def deps_for(version: str) -> tuple[str, ...]:
    """The packages :data:`RELEASE_DEPS` lists for ``version`` (none for an unknown version)."""
    key = version_key(version)
    if not key:
        return ()
    return tuple(name for lo, hi, name, _why in RELEASE_DEPS if version_key(lo) <= key < version_key(hi))


def compiled_extension_imports(tree_root: Path) -> tuple[str, ...]:
    """``vllm._*`` modules ``vllm/platforms/cuda.py`` imports that the tree has no source for."""
    path = tree_root / PLATFORM_FILE
    try:
        mod = ast.parse(path.read_text(encoding="utf-8", errors="replace"))
    except (OSError, SyntaxError):
        return ()
    names: list[str] = []
    for node in mod.body:      # module level only: these run on import
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module == "vllm" and not node.level:
            names += [f"vllm.{a.name}" for a in node.names]
    out = []
    for n in names:
        parts = n.split(".")
        if len(parts) != 2 or parts[0] != "vllm" or not parts[1].startswith("_"):
            continue
        leaf = tree_root / "vllm" / parts[1]
        if leaf.with_suffix(".py").is_file() or (leaf / "__init__.py").is_file():
            continue
        out.append(n)
    return tuple(dict.fromkeys(out))


def _importable(name: str) -> bool:
    if name in sys.modules:
        return True
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def _noop_module(name: str) -> types.ModuleType:
    mod = types.ModuleType(name)
    mod.__spec__ = importlib.machinery.ModuleSpec(name, None)

    def getattr_(attr: str) -> Any:
        if attr.startswith("__"):
            raise AttributeError(attr)
        return lambda *a, **k: None

    mod.__getattr__ = getattr_  # type: ignore[method-assign]
    return mod


def _placeholder_module(name: str) -> types.ModuleType:
    from vkc.modeltrace.external import _module_getattr

    mod = types.ModuleType(name)
    mod.__spec__ = importlib.machinery.ModuleSpec(name, None)
    mod.__getattr__ = _module_getattr(name)  # type: ignore[method-assign]
    return mod


def install_release_stubs(tree_root: Path | None = None, version: str | None = None) -> list[str]:
    """Stub the tree's compiled extensions and the release's missing pure-Python dependencies.

    ``tree_root`` defaults to the folder above the importable ``vllm`` package; ``version`` to that
    tree's version file.  Returns the pure-Python packages stood in for (compiled extensions are
    expected to be missing and are not reported)."""
    if tree_root is None:
        spec = importlib.util.find_spec("vllm")     # does not run vllm/__init__.py
        if spec is None or not spec.submodule_search_locations:
            return []
        tree_root = Path(next(iter(spec.submodule_search_locations))).parent
    for name in (*compiled_extension_imports(tree_root), "vllm._C_stable_libtorch"):
        if not _importable(name):
            sys.modules[name] = types.ModuleType(name)
    made = []
    for name in deps_for(version or _tree_version(tree_root)):
        if not _importable(name):
            # a package whose names are used as values (gguf's ``GGMLQuantizationType.F32``): placeholders
            sys.modules[name] = _placeholder_module(name) if name in SUBMODULES else _noop_module(name)
            for sub in SUBMODULES.get(name, ()):
                mod = _placeholder_module(f"{name}.{sub}")
                sys.modules[mod.__name__] = mod
                setattr(sys.modules[name], sub, mod)
            made.append(name)
    STUBBED[:] = sorted(set(STUBBED) | set(made))
    return made


def _tree_version(root: Path) -> str:
    for rel in ("PKG-INFO", "vllm/_version.py"):
        try:
            text = (root / rel).read_text(errors="replace")
        except OSError:
            continue
        for line in text.splitlines():
            if line.startswith("Version:"):
                return line.split(":", 1)[1].strip()
            if line.startswith(("__version__", "version")) and "=" in line:
                return line.split("=", 1)[1].strip().strip("'\"")
    return "local"


def release_kwargs(cls: Any, known: dict[str, Any]) -> dict[str, Any]:
    """``known`` cut to the parameters ``cls.__init__`` (a class) or ``cls`` (a function, a bound method) takes;
    a required one vkc does not know is a TypeError.

    The serving steps build vLLM's runner objects (``RequestState``, ``Sampler``, ``StructuredOutputsWorker``,
    ``PromptLogprobsWorker``) with the arguments ``GPUModelRunner.load_model`` passes; older releases take fewer
    or other ones (0.30.0 - 0.32.0's structured-output worker a ``num_bonus_tokens``, 0.25.0's prompt-logprob
    worker only ``max_num_reqs``, 0.30.0's ``Sampler.add_request`` a ``prompt_len``), so each call passes what
    the release's class or method takes, by name."""
    import inspect

    fn = getattr(cls, "__init__") if isinstance(cls, type) else cls  # noqa: B009  (mypy: no unsound instance access)
    params = [p for p in inspect.signature(fn).parameters.values() if p.name != "self"]
    name = getattr(cls, "__qualname__", type(cls).__name__)
    missing = [p.name for p in params if p.default is inspect.Parameter.empty and p.name not in known
               and p.kind not in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)]
    if missing:
        raise TypeError(f"{name}{'.__init__' if isinstance(cls, type) else ''} takes {', '.join(missing)}, "
                        "which vkc's serving step does not "
                        "know how to set for this vLLM release")
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        return dict(known)
    return {p.name: known[p.name] for p in params if p.name in known}
