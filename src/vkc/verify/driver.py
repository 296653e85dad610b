"""``vkc verify``: the static rubric over files/folders, plus optional compile/run hooks."""
from __future__ import annotations

import importlib
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from vkc.errors import VerifyError, VkcError
from vkc.verify.result import CheckResult
from vkc.verify.rubric import check_artifact
from vkc.write.names import is_artifact_file
from vkc.write.schema import loads_artifact, schema_error


def expand_paths(paths: Iterable[str | os.PathLike[str]]) -> list[str]:
    """Files as given; folders become their ``*.json`` files (sorted, not recursive)."""
    out: list[str] = []
    for p in paths:
        shown = os.fspath(p)
        if os.path.isdir(shown):
            found = sorted(os.path.join(shown, f) for f in os.listdir(shown)
                           if is_artifact_file(f) and os.path.isfile(os.path.join(shown, f)))
            if not found:
                raise VerifyError(f"folder {shown} holds no *.json artifacts", hint="give artifact files or folders")
            out.extend(f.replace(os.sep, "/") for f in found)
        elif os.path.exists(shown):
            out.append(shown)
        else:
            raise VerifyError(f"{shown}: no such file or folder", hint="give artifact files or folders")
    if not out:
        raise VerifyError("nothing to verify", hint="give artifact files or folders, e.g. kernels_out/")
    return out


def verify_paths(paths: Iterable[str | os.PathLike[str]], *, compile: bool = False,
                 run: bool = False, sanitizer: bool = False) -> list[CheckResult]:
    """Check every artifact; VerifyError only for missing paths / empty folders.

    ``sanitizer`` (with ``run``, on a GPU) also runs each example under compute-sanitizer memcheck
    (CUDA programs once; Triton examples once at SMALL)."""
    results: list[CheckResult] = []
    for path in expand_paths(paths):
        static = check_artifact(path)
        results.extend(static)
        if not (compile or run) or any(r.check in ("json", "schema") and not r.ok for r in static):
            continue
        artifact = loads_artifact(Path(path).read_bytes())
        assert schema_error(artifact) is None
        kernel_type = artifact["kernel"]["kernel_type"]
        if compile:
            results.extend(_hook("compile", kernel_type, path, artifact))
        if run:
            kw = {"sanitizer": True} if sanitizer else {}
            results.extend(_hook("run", kernel_type, path, artifact, **kw))
    return results


def _hook(kind: str, kernel_type: str, path: str, artifact: dict[str, Any], **kw: Any) -> list[CheckResult]:
    """Call ``vkc.verify.<type>_compile.<kind>_artifact(path, artifact)``, imported lazily."""
    modname = f"vkc.verify.{kernel_type}_compile"
    unavailable = f"{kind} check not available for {kernel_type}"
    try:
        mod = importlib.import_module(modname)
    except ModuleNotFoundError as exc:
        why = "" if exc.name == modname else f" (needs Python module {exc.name})"
        return [CheckResult(path, kind, False, unavailable + why)]
    fn = getattr(mod, f"{kind}_artifact", None)
    if not callable(fn):
        return [CheckResult(path, kind, False, unavailable)]
    try:
        out = fn(path, artifact, **kw)
        return [out] if isinstance(out, CheckResult) else list(out)
    except VkcError as exc:
        return [CheckResult(path, kind, False, exc.message)]
    except Exception as exc:  # noqa: BLE001 - a crashing check must not hide the other artifacts' results
        first = (str(exc).splitlines() or [""])[0]
        return [CheckResult(path, kind, False, f"{kind} check crashed: {type(exc).__name__}: {first}")]


def format_results(results: list[CheckResult], *, verbose: bool = False) -> str:
    """One line per failed check (every check when verbose), then ``N artifacts, M checks failed``."""
    lines = [r.line() for r in results if verbose or not r.ok]
    artifacts = len(dict.fromkeys(r.artifact for r in results))
    failed = sum(not r.ok for r in results)
    lines.append(f"{artifacts} artifacts, {failed} checks failed")
    return "\n".join(lines) + "\n"


def all_ok(results: list[CheckResult]) -> bool:
    """True when no check failed (the CLI's exit status: 0 if so, VerifyError.exit_code if not)."""
    return all(r.ok for r in results)
