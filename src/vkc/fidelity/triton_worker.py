"""Subprocess: compile one Triton kernel for sm_90 on CPU and print its TTIR as JSON on stdout.

Request (JSON on stdin): ``{"mode": "extracted"|"original", "compile": VKC_COMPILE,
"src_path": extracted file (extracted), "tree_root", "module", "qualname" (original),
"profile": H100 platform profile}``.  The original is imported from the vLLM tree with
``CUDA_VISIBLE_DEVICES=""`` (vLLM keeps real Triton) under vkc's fake-H100 platform, the same
platform the extractor evaluated module-level values under.
"""
from __future__ import annotations

import importlib
import json
import os
import sys
import traceback
from pathlib import Path
from typing import Any


def _unwrap(obj: Any) -> Any:
    from triton.runtime.autotuner import Autotuner, Heuristics

    while isinstance(obj, (Autotuner, Heuristics)):
        obj = obj.fn
    return obj


def _resolve(mod: Any, qualname: str) -> Any:
    obj = mod
    for part in qualname.split("."):
        obj = getattr(obj, part)
    return _unwrap(obj)


def _compile(fn: Any, spec: dict[str, Any]) -> str:
    import triton
    from triton.backends.compiler import GPUTarget

    from vkc.toolchain.triton import make_ast_source

    src = make_ast_source(fn, spec["signature"], spec["constexprs"], spec.get("attrs", {}))
    ck = triton.compile(src, target=GPUTarget(*spec.get("target", ("cuda", 90, 32))),
                        options={"num_warps": spec["num_warps"], "num_stages": spec["num_stages"]})
    return ck.asm["ttir"]


def run(req: dict[str, Any]) -> dict[str, Any]:
    spec = req["compile"]
    if req["mode"] == "extracted":
        from vkc.toolchain.triton import load_entry

        fn = load_entry(Path(req["src_path"]), spec["entry"])
        return {"ok": True, "ttir": _compile(fn, spec), "fn_name": fn.__name__, "module": fn.__module__}
    os.environ.setdefault("VLLM_LOGGING_LEVEL", "WARNING")
    sys.path.insert(0, req["tree_root"])
    from vkc.invoke.triton.traced.platform import install_fake_h100

    install_fake_h100(req["profile"])
    mod, stubbed = _import_with_stubs(req["module"])
    fn = _resolve(mod, req["qualname"])
    return {"ok": True, "ttir": _compile(fn, spec), "fn_name": fn.__name__, "module": fn.__module__,
            "stubbed": stubbed}


class _AnyMeta(type):
    def __getattr__(cls, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return _Any

    def __call__(cls, *a: Any, **k: Any) -> Any:
        if len(a) == 1 and callable(a[0]) and not k:   # used as a decorator: keep the function
            return a[0]
        return super().__call__(*a, **k)


class _Any(metaclass=_AnyMeta):
    """Stands in for anything a missing third-party package would have provided."""

    def __init__(self, *a: Any, **k: Any) -> None:
        pass

    def __call__(self, *a: Any, **k: Any) -> Any:
        return a[0] if len(a) == 1 and callable(a[0]) and not k else _Any()

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return _Any()


def _stub_attr(attr: str) -> Any:
    if attr.startswith("__"):
        raise AttributeError(attr)
    return _Any


def _stub_module(name: str) -> None:
    import types

    for i in range(1, name.count(".") + 2):
        part = ".".join(name.split(".")[:i])
        if part in sys.modules:
            continue
        m = types.ModuleType(part, "vkc fidelity stub for a package that is not installed")
        m.__path__ = []                                  # a package: submodules can be stubbed too
        m.__getattr__ = _stub_attr  # type: ignore[method-assign]
        sys.modules[part] = m


def _import_with_stubs(module: str, tries: int = 16) -> tuple[Any, list[str]]:
    """Import the original kernel's module; a third-party package that is not installed here
    (deep_ep, compressed_tensors, ...) is replaced by a stub and the import retried.  The
    stubbed names are reported; vLLM's own modules are never stubbed."""
    stubbed: list[str] = []
    for _ in range(tries):
        try:
            return importlib.import_module(module), stubbed
        except ModuleNotFoundError as e:
            missing = e.name or ""
            if not missing or missing.split(".")[0] == "vllm" or missing in stubbed:
                raise
            _stub_module(missing)
            stubbed.append(missing)
    return importlib.import_module(module), stubbed


def main() -> int:
    req = json.load(sys.stdin)
    real_stdout, sys.stdout = sys.stdout, sys.stderr   # imported code may print
    try:
        resp = run(req)
    except Exception as e:  # noqa: BLE001  (reported to the parent)
        lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
        msg = f"{lines[0]} ... {lines[-1]}" if len(lines) > 2 else " ".join(lines)  # CompilationError: at L:C + why
        resp = {"ok": False, "error": f"{type(e).__name__}: {msg[:400]}",
                "traceback": traceback.format_exc(limit=6)}
    real_stdout.write(json.dumps(resp))
    real_stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
