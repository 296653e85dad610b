"""Atomic, verified writing (and schema-checked reading) of kernel artifacts.

``write_artifact`` writes ``<out_dir>/<safe_stem(name)>.json``:

1. the name is checked and the object validated against the schema before any file
   is touched;
2. under a per-file lock, the bytes go to a dot-prefixed temp file in the same folder,
   which is fsynced, moved over the target with ``os.replace`` and the folder fsynced;
3. the file is read back, compared byte for byte, parsed and validated again.

A failure before step 2's ``os.replace`` leaves any existing file as it was and no temp
file behind.  The lock is ``<out_dir>/.<stem>.json.lock`` (a dot-file, kept: deleting
a lock file that another process may be waiting on is racy).  It serialises writers of
the same artifact, so two vkc runs for one kernel never interleave their
replace-and-verify steps.
"""
from __future__ import annotations

import errno
import hashlib
import os
from typing import Any

from filelock import FileLock, Timeout

from vkc.atomic import replace_file
from vkc.errors import UsageError, VerifyError, WriteError
from vkc.naming import safe_stem
from vkc.records import WriteResult
from vkc.write.schema import build_artifact, dumps_artifact, loads_artifact, schema_error

LOCK_TIMEOUT_S = 120.0
_NOT_WRITABLE = (errno.EACCES, errno.EPERM, errno.EROFS)


def write_artifact(
    name: str,
    kernel_type: str,
    source_code: str,
    invocation_example: str,
    out_dir: str | os.PathLike[str] = "kernels_out",
) -> WriteResult:
    """Write the artifact for ``name`` atomically; return its path, size and sha256."""
    stem = safe_stem(name)  # KernelNameError before anything is touched
    obj = build_artifact(name, kernel_type, source_code, invocation_example)
    err = schema_error(obj)
    if err:
        raise WriteError(f"artifact for {name} does not match the artifact schema: {err}",
                         hint="this is a vkc bug; please report it with the command line")
    try:
        data = dumps_artifact(obj)
    except UnicodeEncodeError as exc:
        raise WriteError(f"artifact for {name} is not encodable as UTF-8 ({exc.reason})",
                         hint="the generated code contains a lone surrogate; report it") from None

    out = os.fspath(out_dir)
    shown_dir = out.replace(os.sep, "/") if out else "."
    fs_dir = out or "."
    final = os.path.join(fs_dir, stem + ".json")
    shown = os.path.join(out, stem + ".json").replace(os.sep, "/")
    _ensure_dir(fs_dir, shown_dir)
    lock = FileLock(os.path.join(fs_dir, f".{stem}.json.lock"), timeout=LOCK_TIMEOUT_S)
    try:
        lock.acquire()
    except Timeout:
        raise WriteError(f"another process has been writing {shown} for {LOCK_TIMEOUT_S:.0f} s",
                         hint=f"wait for it, or remove a stale {shown_dir}/.{stem}.json.lock") from None
    except OSError as exc:
        raise _os_error(exc, shown, shown_dir) from None
    try:
        _replace_atomically(fs_dir, final, stem, data, shown, shown_dir)
        got = _read_back(final, shown)
    finally:
        lock.release()
    if got != data:
        raise WriteError(f"{shown} changed while it was being written (read-back differs)",
                         hint="make sure no other program writes into the output folder")
    try:
        reloaded = loads_artifact(got)
    except ValueError as exc:  # pragma: no cover - bytes equal what was serialised
        raise WriteError(f"{shown} does not reload as JSON: {exc}", hint="report this vkc bug") from None
    if schema_error(reloaded) or reloaded != obj:  # pragma: no cover - same bytes, same object
        raise WriteError(f"{shown} does not reload to the artifact that was written", hint="report this vkc bug")
    return WriteResult(path=shown, size=len(got), sha256=hashlib.sha256(got).hexdigest())


def read_artifact(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Load an artifact and validate it against the schema; VerifyError if it is not one."""
    shown = os.fspath(path)
    hint = "regenerate it with `vkc KERNEL_NAME`"
    try:
        with open(shown, "rb") as fh:
            data = fh.read()
    except FileNotFoundError:
        raise VerifyError(f"{shown}: no such file", hint="check the path") from None
    except IsADirectoryError:
        raise VerifyError(f"{shown} is a folder, not an artifact file", hint="give a .json file") from None
    except OSError as exc:
        raise VerifyError(f"{shown} cannot be read ({exc.strerror})", hint="check its permissions") from None
    try:
        obj = loads_artifact(data)
    except ValueError as exc:
        raise VerifyError(f"{shown} is not valid JSON: {exc}", hint=hint) from None
    err = schema_error(obj)
    if err:
        raise VerifyError(f"{shown} does not match the artifact schema: {err}", hint=hint)
    return obj


def _ensure_dir(fs_dir: str, shown_dir: str) -> None:
    try:
        os.makedirs(fs_dir, exist_ok=True)
    except FileExistsError:
        raise WriteError(f"output folder {shown_dir} exists but is not a folder",
                         hint="remove that file or choose another --out folder") from None
    except NotADirectoryError:
        raise WriteError(f"output folder {shown_dir} cannot be created: part of its path is a file",
                         hint="choose another --out folder") from None
    except OSError as exc:
        raise _os_error(exc, shown_dir, shown_dir) from None
    if not os.path.isdir(fs_dir):
        raise WriteError(f"output folder {shown_dir} is not a folder", hint="choose another --out folder")


def _replace_atomically(fs_dir: str, final: str, stem: str, data: bytes, shown: str, shown_dir: str) -> None:
    try:
        replace_file(final, data, mode=0o666 & ~_umask())
        _fsync_dir(fs_dir)
    except OSError as exc:
        raise _os_error(exc, shown, shown_dir) from None


def _read_back(final: str, shown: str) -> bytes:
    try:
        with open(final, "rb") as fh:
            return fh.read()
    except OSError as exc:
        raise WriteError(f"{shown} cannot be read back ({exc.strerror})",
                         hint="check the output folder's file system") from None


def _fsync_dir(fs_dir: str) -> None:
    try:
        fd = os.open(fs_dir, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems cannot fsync a directory; the replace itself is atomic
    finally:
        os.close(fd)


def _umask() -> int:
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    old = os.umask(0o022)
    os.umask(old)
    return old


def _os_error(exc: OSError, shown: str, shown_dir: str) -> WriteError:
    if exc.errno in _NOT_WRITABLE:
        return WriteError(f"output folder {shown_dir} is not writable",
                          hint="fix its permissions or choose another --out folder")
    if exc.errno == errno.ENOSPC:
        return WriteError(f"no space left on the device while writing {shown}", hint="free some disk space")
    if exc.errno == errno.EISDIR:
        return WriteError(f"{shown} is a folder", hint="remove it or choose another --out folder")
    return WriteError(f"cannot write {shown} ({exc.strerror or exc})", hint="check the output folder")


def prepare_out_dir(out_dir: str | os.PathLike[str] = "kernels_out") -> None:
    """Fail fast, before any expensive stage runs, when ``out_dir`` cannot take an artifact."""
    shown_dir = str(out_dir).replace(os.sep, "/")
    fs_dir = os.fspath(out_dir)
    if not fs_dir.strip() or "\0" in fs_dir:
        raise UsageError(f"--out {fs_dir!r} is not a folder name", hint="give a folder, e.g. --out kernels_out")
    _ensure_dir(fs_dir, shown_dir)
    if not os.access(fs_dir, os.W_OK | os.X_OK):
        raise WriteError(f"output folder {shown_dir} is not writable", hint="choose another --out folder")
