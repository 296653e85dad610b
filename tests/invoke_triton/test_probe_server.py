"""The generic invoker's probe server: one process reused across kernels, each kernel isolated.

Every verdict is compared with the fresh-interpreter probe (``python -m vkc.invoke.triton.probe``),
which is what the server replaces.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

pytest.importorskip("triton")

from vkc.invoke.triton import probe_server as ps

KERNEL = textwrap.dedent('''\
    import triton
    import triton.language as tl


    @triton.jit
    def {name}(x_ptr, n, BLOCK: tl.constexpr):
        offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
        tl.store(x_ptr + offs, tl.load(x_ptr + offs, mask=offs < n) * 2, mask=offs < n)
''')
# variant 0 passes x_ptr as an integer (the front end rejects the load), variant 1 as *fp32
VARIANTS = [{"signature": {"x_ptr": t, "n": "i32", "BLOCK": "constexpr"}, "constexprs": {"BLOCK": 64}}
            for t in ("i32", "*fp32")]


def req(name: str = "k", prelude: str = "") -> dict:
    return {"source": prelude + KERNEL.format(name=name), "kernel_file": "kernel_probe.py", "entry": name,
            "variants": VARIANTS, "num_warps": 4}


def fresh(r: dict) -> dict:
    """The verdict of the fresh-interpreter probe, as ``probe_variants`` used to read it."""
    p = subprocess.run([sys.executable, "-m", "vkc.invoke.triton.probe"], input=json.dumps(r), capture_output=True,
                       text=True, timeout=120, check=False)
    return ps.parse_output(p.stdout)


@pytest.fixture(autouse=True)
def _own_server():
    ps.shutdown()
    yield
    ps.shutdown()


def test_one_server_for_two_kernels_same_verdicts_as_fresh():
    a, b = req("kern_a"), req("kern_b")
    out_a = ps.ask(a)
    pid = ps.server_pid()
    out_b = ps.ask(b)
    assert pid is not None and ps.server_pid() == pid           # reused, not restarted
    assert out_a["ok"] == 1 and len(out_a["errors"]) == 1 and out_a["errors"][0]
    assert out_a == fresh(a) and out_b == fresh(b)


def test_kernels_do_not_see_each_others_state():
    """Module-level code of one kernel (sys.modules, os.environ, triton globals) is gone for the next."""
    dirty = "import os, sys, triton.language as tl\nsys.modules['vkc_leak'] = sys\nos.environ['VKC_LEAK'] = '1'\ntl.vkc_leak = 1\n"
    check = ("import os, sys, triton.language as tl\n"
             "assert 'vkc_leak' not in sys.modules and 'VKC_LEAK' not in os.environ and not hasattr(tl, 'vkc_leak')\n")
    assert ps.ask(req("k1", dirty))["ok"] == 1
    out = ps.ask(req("k2", check))
    assert out == {"ok": 1, "errors": fresh(req("k2", check))["errors"]}


def test_a_crash_or_hang_costs_one_kernel():
    segv = req("k", "import os, signal\nos.kill(os.getpid(), signal.SIGSEGV)\n")
    assert ps.ask(segv) == fresh(segv) == {"ok": None, "errors": ["probe failed: IndexError"]}
    pid = ps.server_pid()
    assert ps.ask(req("k", "import time\ntime.sleep(60)\n"), timeout=1) == {
        "ok": None, "errors": ["probe failed: TimeoutExpired"]}
    assert ps.server_pid() == pid and ps.ask(req())["ok"] == 1   # the server survived both
    assert pid is not None
    os.kill(pid, 9)                                                # the server itself dies
    time.sleep(0.2)
    assert ps.ask(req())["ok"] == 1 and ps.server_pid() not in (None, pid)


def test_env_change_restarts_and_triton_cache_untouched(tmp_path, monkeypatch):
    ps.ask(req())
    pid = ps.server_pid()
    cache = tmp_path / "triton-cache"
    cache.mkdir()
    monkeypatch.setenv("TRITON_CACHE_DIR", str(cache))   # Triton reads its knobs at import: new server
    assert ps.ask(req())["ok"] == 1 and ps.server_pid() != pid
    assert list(cache.iterdir()) == []                    # make_ir reads and writes no cache files


CHILD = """
import json, os, sys, time
from vkc.invoke.triton import probe_server as ps
r = json.loads(sys.argv[1])
out = ps.ask(r)
Path = __import__('pathlib').Path
Path(sys.argv[2]).write_text(json.dumps({"out": out, "pid": ps.server_pid()}))
if sys.argv[3] == "die":
    os.kill(os.getpid(), 9)
"""


def test_no_output_reaches_the_callers_stdout_or_stderr(tmp_path):
    noisy = req("k", "import os\nprint('py noise')\nos.write(1, b'c noise\\n')\nos.write(2, b'err noise\\n')\n")
    res = tmp_path / "res.json"
    p = subprocess.run([sys.executable, "-c", CHILD, json.dumps(noisy), str(res), "stay"], capture_output=True,
                       text=True, timeout=120, check=False)
    assert p.returncode == 0, p.stderr
    assert p.stdout == "" and "noise" not in p.stderr
    assert json.loads(res.read_text())["out"] == fresh(noisy)


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def test_server_dies_with_its_parent(tmp_path):
    res = tmp_path / "res.json"
    p = subprocess.run([sys.executable, "-c", CHILD, json.dumps(req()), str(res), "die"], capture_output=True,
                       text=True, timeout=120, check=False)
    assert p.returncode == -9
    got = json.loads(res.read_text())
    assert got["out"]["ok"] == 1 and got["pid"]
    deadline = time.monotonic() + 10
    while _alive(got["pid"]) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(got["pid"])
