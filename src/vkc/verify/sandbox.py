"""``verify --run`` runs an artifact's host code (by design); this is the box it runs in.

When ``bwrap`` (bubblewrap, Debian package ``bubblewrap``) is on PATH and the sandbox is
not switched off (``--no-sandbox``), each program runs as::

    bwrap --ro-bind / / --dev /dev [--dev-bind /dev/nvidia* ...] --proc /proc --tmpfs /tmp
          --bind WORKDIR WORKDIR --unshare-net --unshare-pid --die-with-parent --new-session
          --chdir WORKDIR -- PROGRAM ...

read-only root, a private ``/tmp`` (only vkc's own work folder is writable), no network.
Caches the program would write (Triton's) are pointed into the work folder.
"""
from __future__ import annotations

import glob
import os
import shutil
from pathlib import Path

__all__ = ["BWRAP", "notice", "sandbox_mode", "wrap"]

BWRAP = "bwrap"
MODE_BWRAP = "bwrap"
MODE_OFF = "none (--no-sandbox)"
MODE_MISSING = "none (bwrap not on PATH)"


def sandbox_mode(enabled: bool = True) -> str:
    """What ``wrap`` will do: ``bwrap``, or why there is no sandbox."""
    if not enabled:
        return MODE_OFF
    return MODE_BWRAP if shutil.which(BWRAP) else MODE_MISSING


def notice(mode: str) -> str:
    """The one stderr line ``verify --run`` prints before running anything."""
    where = ("in a bubblewrap sandbox (read-only root, private /tmp, no network)" if mode == MODE_BWRAP
             else f"WITHOUT a sandbox: {mode}")
    return (f"vkc: note: --run executes each artifact's invocation example (host code) {where}; "
            "run only artifacts you trust" + (", or install bubblewrap" if mode == MODE_MISSING else "") + "\n")


def wrap(cmd: list[str], workdir: Path, env: dict[str, str], *, enabled: bool = True) -> tuple[list[str], dict[str, str]]:
    """``cmd`` (and its environment) to run inside the sandbox, or unchanged without one."""
    if sandbox_mode(enabled) != MODE_BWRAP:
        return cmd, env
    wd = str(Path(workdir).resolve())
    env = {**env, "TRITON_CACHE_DIR": os.path.join(wd, ".triton-cache"), "TMPDIR": wd,
           "XDG_CACHE_HOME": os.path.join(wd, ".cache")}
    argv = [shutil.which(BWRAP) or BWRAP, "--ro-bind", "/", "/", "--dev", "/dev"]
    for dev in sorted(glob.glob("/dev/nvidia*")) + sorted(glob.glob("/dev/dri")):
        argv += ["--dev-bind", dev, dev]
    argv += ["--proc", "/proc", "--tmpfs", "/tmp"]
    for keep in _under_tmp(cmd, env):      # the interpreter and its packages, when they live in /tmp
        argv += ["--ro-bind", keep, keep]
    argv += ["--bind", wd, wd, "--unshare-net", "--unshare-pid", "--die-with-parent", "--new-session",
             "--chdir", wd, "--"]
    return argv + cmd, env


def _under_tmp(cmd: list[str], env: dict[str, str]) -> list[str]:
    """Folders under /tmp the program needs read-only inside the private /tmp: the interpreter's
    prefix (a virtual environment in /tmp), its import path and the program's own folder."""
    import sys

    seen = [sys.prefix, sys.base_prefix, os.path.dirname(os.path.dirname(os.path.realpath(cmd[0])))]
    seen += [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p] + [p for p in sys.path if p]
    out: list[str] = []
    for p in sorted({os.path.realpath(p) for p in seen}):
        if (p.startswith("/tmp/") and os.path.isdir(p) and not any(p.startswith(q + "/") for q in out)):
            out.append(p)
    return out
