"""One long-lived, output-captured probe process per vkc process, reused for every kernel.

:func:`vkc.invoke.triton.probe.probe_variants` used to start a fresh interpreter per kernel
(``python -m vkc.invoke.triton.probe``): about 1 s each, most of it importing Triton.  Here
:func:`ask` starts one server (``python -m vkc.invoke.triton.probe_server``) lazily on first
use and keeps it for the life of the calling process (a ``collect --all`` worker, or one
``vkc collect``).  The server imports Triton once, lowers a small built-in kernel once (lazy
initialisation, the same for every kernel), and then handles each request in a **forked
child**:

* Isolation: every kernel starts from the same post-import state (its module, anything its
  module-level code changes, Triton's in-memory caches die with the child), so a result does
  not depend on which kernels came before.  Triton's on-disk cache is not touched: the probe
  calls ``ASTSource.make_ir`` only (no ``compile``), which reads and writes no cache files
  (``tests/invoke_triton/test_probe_server.py`` checks an empty ``TRITON_CACHE_DIR`` stays empty).
* Crash or hang: the child's stdout goes to a temporary file and is read with the fresh
  probe's rule (its last line is the JSON verdict), so a child that segfaults or exits early gives
  ``probe failed: IndexError`` / ``JSONDecodeError`` and one that runs past the timeout is
  killed and gives ``probe failed: TimeoutExpired``, as the fresh interpreter did.  The server
  survives both.  Should the server itself die or hang, the client kills it, starts a new one
  and asks once more; a second failure costs that kernel only (``probe failed: ProbeServerDied``).
* Output: the server's fds 1 and 2 are ``/dev/null`` from ``exec``; children write their stdout
  to the capture file only.  Requests and responses are JSON lines on two private pipes.
* Lifetime: the server leads its own session and dies with its parent through
  :func:`vkc.batch.pool.die_with_parent` (``PR_SET_PDEATHSIG`` and a watched pipe only the
  parent holds; its children are in its process group and die with it).  The client restarts
  it when the environment (``TRITON_*`` knobs are read at import), the working directory or the
  process (after a fork) changes.
"""
from __future__ import annotations

import atexit
import contextlib
import json
import os
import select
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, NoReturn

__all__ = ["PROBE_TIMEOUT_S", "ask", "parse_output", "run_probe", "server_pid", "shutdown"]

PROBE_TIMEOUT_S = 120          # one kernel (all its variants), as the fresh interpreter had
START_GRACE_S = 60             # on top, for the server's start-up (importing Triton)
_WARM_SOURCE = '''import triton
import triton.language as tl


@triton.jit
def _vkc_probe_warm(x_ptr, n, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    tl.store(x_ptr + offs, tl.load(x_ptr + offs, mask=offs < n) + 1.0, mask=offs < n)
'''
_WARM_REQ = {"source": _WARM_SOURCE, "kernel_file": "vkc_probe_warm.py", "entry": "_vkc_probe_warm",
             "num_warps": 4, "variants": [{"signature": {"x_ptr": "*fp32", "n": "i32", "BLOCK": "constexpr"},
                                           "constexprs": {"BLOCK": 128}}]}


# --------------------------------------------------------------------------- the verdict


def _message(e: BaseException, depth: int = 0) -> str:
    lines = str(e).strip().splitlines()
    carets = [i for i, ln in enumerate(lines) if ln.strip() == "^"]
    tail = " ".join(x.strip() for x in lines[carets[-1] + 1:]) if carets else (lines[-1] if lines else "")
    cause = e.__cause__ or e.__context__
    if not tail.strip() and cause is not None and depth < 8:
        return _message(cause, depth + 1)
    return f"{type(e).__name__}: {tail}"[:300]


def run_probe(req: dict[str, Any]) -> dict[str, Any]:
    """Lower ``req``'s entry under each variant in this process: ``{"ok": index | None, "errors"}``."""
    from triton._C.libtriton import ir
    from triton.backends.compiler import GPUTarget
    from triton.compiler.compiler import make_backend

    from vkc.toolchain.triton import load_entry, make_ast_source

    errors: list[str] = []
    ok = None
    with tempfile.TemporaryDirectory(prefix="vkc-probe-") as tmp:
        src = Path(tmp) / req["kernel_file"]
        src.write_text(req["source"])
        try:
            fn = load_entry(src, req["entry"])
        except Exception as e:  # noqa: BLE001
            return {"ok": None, "errors": [f"load: {type(e).__name__}: {e}"[:300]]}
        target = GPUTarget("cuda", 90, 32)
        backend = make_backend(target)
        for i, v in enumerate(req["variants"]):
            try:
                ast_src = make_ast_source(fn, v["signature"], v["constexprs"], {})
                options = backend.parse_options({"num_warps": req["num_warps"]})
                context = ir.context()
                ir.load_dialects(context)
                backend.load_dialects(context)
                ast_src.make_ir(target, options, backend.get_codegen_implementation(options),
                                backend.get_module_map(), context)
            except Exception as e:  # noqa: BLE001  (the front end's verdict is the result)
                errors.append(_message(e))
                continue
            ok = i
            break
    return {"ok": ok, "errors": errors}


def failed(why: str) -> dict[str, Any]:
    return {"ok": None, "errors": [f"probe failed: {why}"]}


def parse_output(text: str) -> dict[str, Any]:
    """The fresh probe's rule: the last line of the probe's stdout is its JSON verdict."""
    try:
        out = json.loads(text.strip().splitlines()[-1])
    except (json.JSONDecodeError, IndexError) as e:
        return failed(type(e).__name__)
    return out if isinstance(out, dict) else failed("JSONDecodeError")


# --------------------------------------------------------------------------- server side


def _child(req: dict[str, Any], out_fd: int) -> NoReturn:
    code = 1   # an error escaping the probe: no verdict, as an uncaught one in the fresh interpreter
    try:
        with contextlib.suppress(BaseException):
            signal.signal(signal.SIGTERM, signal.SIG_DFL)   # not the server's kill-my-group handler
            os.dup2(out_fd, 1)
            print(json.dumps(run_probe(req)), flush=True)
            code = 0
    finally:
        os._exit(code)


def _wait(pid: int, timeout: float) -> bool:
    """Reap ``pid``; False (after killing it) when it runs past ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    try:
        pidfd: int | None = os.pidfd_open(pid)
    except (AttributeError, OSError):
        pidfd = None
    try:
        while True:
            if os.waitpid(pid, os.WNOHANG)[0]:
                return True
            left = deadline - time.monotonic()
            if left <= 0:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                return False
            if pidfd is not None:
                select.select([pidfd], [], [], left)
            else:
                time.sleep(min(left, 0.005))
    finally:
        if pidfd is not None:
            os.close(pidfd)


def handle(req: dict[str, Any], timeout: float) -> dict[str, Any]:
    """One request in a forked child, its stdout captured."""
    with tempfile.TemporaryFile() as cap:
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            _child(req, cap.fileno())
        if not _wait(pid, timeout):
            return failed("TimeoutExpired")
        cap.seek(0)
        return parse_output(cap.read().decode("utf-8", "replace"))


def serve(parent_pid: int, watch_fd: int, resp_fd: int) -> int:
    from multiprocessing.connection import Connection

    from vkc.batch.pool import die_with_parent

    die_with_parent(parent_pid, Connection(watch_fd, writable=False))
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    with contextlib.suppress(Exception):   # each request then reports its own failure
        run_probe(_WARM_REQ)    # imports and lazy set-up, once; every child starts from here
    with os.fdopen(resp_fd, "w", encoding="utf-8") as resp:
        for line in sys.stdin:
            msg = json.loads(line)
            resp.write(json.dumps(handle(msg["req"], float(msg["timeout"]))) + "\n")
            resp.flush()
    return 0


# --------------------------------------------------------------------------- client side


class _Server:
    def __init__(self, env: dict[str, str]):
        self.env, self.cwd, self.owner = env, os.getcwd(), os.getpid()
        watch_r, self._watch_w = os.pipe()      # we never write: the server sees EOF when we are gone
        self._resp_r, resp_w = os.pipe()
        try:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "vkc.invoke.triton.probe_server", str(os.getpid()), str(watch_r), str(resp_w)],
                stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                pass_fds=(watch_r, resp_w), start_new_session=True, env=env)
        except BaseException:
            os.close(self._watch_w)
            os.close(self._resp_r)
            raise
        finally:
            os.close(watch_r)
            os.close(resp_w)
        self._buf = b""

    def fits(self, env: dict[str, str]) -> bool:
        return (self.owner == os.getpid() and self.env == env and self.cwd == os.getcwd()
                and self.proc.poll() is None)

    def ask(self, req: dict[str, Any], timeout: float) -> dict[str, Any] | None:
        """The server's answer, or None when it died or hung (it is killed then)."""
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write((json.dumps({"req": req, "timeout": timeout}) + "\n").encode())
            self.proc.stdin.flush()
        except (OSError, ValueError):
            return None
        deadline = time.monotonic() + timeout + START_GRACE_S
        while b"\n" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._resp_r], [], [], left)[0]:
                return None
            chunk = os.read(self._resp_r, 1 << 16)
            if not chunk:
                return None
            self._buf += chunk
        line, self._buf = self._buf.split(b"\n", 1)
        out = json.loads(line)
        return out if isinstance(out, dict) else None

    def close(self) -> None:
        if self.owner != os.getpid():   # a forked copy: the server belongs to the original process
            return
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)   # the server and any child it is running
        except (ProcessLookupError, PermissionError):
            pass
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            pass
        for f in (self._watch_w, self._resp_r):
            try:
                os.close(f)
            except OSError:
                pass
        if self.proc.stdin is not None:
            try:
                self.proc.stdin.close()
            except OSError:
                pass


_server: _Server | None = None
_stop_at_exit: list[int] = []     # the pid whose exit hooks are registered


def _register_exit() -> None:
    """Stop (and reap) the server when this process exits: ``atexit`` and, in a multiprocessing
    worker (which skips ``atexit``), a multiprocessing finalizer.  Reaping counts the server's CPU
    time in this process's children; without either, its parent-death hooks still end it."""
    if _stop_at_exit != [os.getpid()]:
        _stop_at_exit[:] = [os.getpid()]
        atexit.register(shutdown)
        from multiprocessing import util

        util.Finalize(None, shutdown, exitpriority=10)


def _probe_env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("TRITON_INTERPRET", None)
    env.setdefault("TRITON_DEFAULT_FP_FUSION", "1")
    return env


def ask(req: dict[str, Any], timeout: float = PROBE_TIMEOUT_S) -> dict[str, Any]:
    """``run_probe(req)`` in this process's probe server (started or restarted as needed)."""
    global _server
    env = _probe_env()
    for _attempt in range(2):
        if _server is not None and not _server.fits(env):
            shutdown()
        if _server is None:
            _register_exit()
            try:
                _server = _Server(env)
            except OSError as e:
                return failed(type(e).__name__)
        out = _server.ask(req, timeout)
        if out is not None:
            return out
        shutdown()                     # died or hung: a fresh server gets one more try
    return failed("ProbeServerDied")


def server_pid() -> int | None:
    """The running server's process id (tests), or None."""
    return _server.proc.pid if _server is not None and _server.proc.poll() is None else None


def shutdown() -> None:
    """Stop this process's probe server (if any); the next :func:`ask` starts a new one."""
    global _server
    if _server is not None:
        _server.close()
        _server = None



if __name__ == "__main__":
    sys.exit(serve(int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])))
