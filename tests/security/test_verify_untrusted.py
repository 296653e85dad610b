"""verify never runs an artifact's module-level Python, never lets an artifact pick where
vkc writes, and runs --run's host code in bubblewrap when it can (issue 15, "High")."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from untrusted_cases import KERNEL, artifact, write

from vkc.batch.verify_many import verify_many
from vkc.verify import sandbox
from vkc.verify.triton_compile import compile_artifact, run_artifact
from vkc.verify.untrusted import artifact_file_name, triton_module_findings


def _hostile(marker: Path) -> dict[str, str]:
    m = str(marker)
    return {
        "os.system": f"import os\nos.system('touch {m}')\n" + KERNEL,
        "side effect": KERNEL + f"\nopen({m!r}, 'w').write('x')\n",
        "default arg": KERNEL.replace("BLOCK: tl.constexpr)", f"BLOCK: tl.constexpr = open({m!r}, 'w'))"),
        "annotation": KERNEL.replace("y_ptr, BLOCK", f"y_ptr: open({m!r}, 'w'), BLOCK"),
        "decorator": KERNEL.replace("@triton.jit", f"@triton.jit\n@(lambda f: open({m!r}, 'w') and f)"),
        "plain def": KERNEL + f"\ndef helper():\n    open({m!r}, 'w')\n",
        "class": KERNEL + f"\nclass C:\n    open({m!r}, 'w')\n",
        "torch in jit body": KERNEL.replace("import triton\n", "import torch\nimport triton\n").replace(
            "offs = tl.arange(0, BLOCK)", f"offs = tl.arange(0, BLOCK)\n    torch.save(1, {m!r})"),
        "builtins in jit body": KERNEL.replace(
            "offs = tl.arange(0, BLOCK)", f"offs = tl.arange(0, BLOCK)\n    __builtins__['open']({m!r}, 'w')"),
        "getattr dunder": KERNEL.replace(
            "offs = tl.arange(0, BLOCK)", "offs = tl.arange(0, BLOCK)\n    g = getattr(tl, '__loader__')"),
        "rebinding triton": KERNEL.replace("import triton.language as tl", "import triton.language as tl\ntl = 3"),
        "huge power": KERNEL + "\nBIG = 10 ** 10 ** 10\n",
        "if block": KERNEL + f"\nif True:\n    open({m!r}, 'w')\n",
        "exec": KERNEL + f"\nexec(\"open({m!r}, 'w')\")\n",
        "star import": "from torch import *\n" + KERNEL,
        "relative import": "from . import evil\n" + KERNEL,
        "not allowed module": "import subprocess\n" + KERNEL,
    }


@pytest.mark.parametrize("case", sorted(_hostile(Path("/m"))))
def test_compile_refuses_module_code_and_runs_nothing(tmp_path: Path, case: str) -> None:
    marker = tmp_path / "marker"
    art = artifact(_hostile(marker)[case])
    [res] = compile_artifact("a.json", art)
    assert not res.ok and res.reason.startswith("refused to import source_code"), res.reason
    assert not marker.exists()


def test_verify_cli_compile_refusal_exits_11(tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    path = write(tmp_path / "arts", artifact(_hostile(marker)["os.system"]))
    p = subprocess.run([sys.executable, "-m", "vkc", "verify", "--compile", "--jobs", "1", str(path)],
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 11, p.stderr
    assert "refused to import source_code" in p.stdout and "import of os" in p.stdout
    assert "Traceback" not in p.stderr and not marker.exists()


def test_real_kernel_shapes_pass_the_static_check() -> None:
    ok = KERNEL.replace("import triton\n", "from __future__ import annotations\n\nimport math\nimport triton\n") + (
        "\nLOG2E: tl.constexpr = tl.constexpr(1.4426950408889634)\nN = 2 ** 10 - 1\n__all__ = ['k2']\n\n"
        "@triton.autotune(configs=[triton.Config({'B': 16}, num_warps=4)], key=['n'])\n"
        "@triton.heuristics({'EVEN': lambda args: args['n'] % args['B'] == 0})\n@triton.jit\n"
        "def k2(x_ptr, n, B: tl.constexpr, EVEN: tl.constexpr, K: tl.constexpr = N):\n"
        "    lib = tl.extra.cuda.libdevice\n    c = math.log2(B) * LOG2E\n"
        "    add_one_kernel(x_ptr, x_ptr, B)\n    v = tl.load(x_ptr + tl.arange(0, B)).to(tl.float32)\n"
        "    tl.store(x_ptr, lib.exp(v) + c + min(n, 2) + triton.cdiv(n, B))\n")
    assert triton_module_findings(ok) == []


def test_compile_writes_under_vkc_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    evil = tmp_path / "evil.py"
    for kernel_file in (str(evil), "../evil.py", "../../tmp/evil.py", "sub/evil.py"):
        [res] = compile_artifact("a.json", artifact(kernel_file=kernel_file))
        assert res.ok, res.reason
    assert list(tmp_path.iterdir()) == [] and not (tmp_path.parent / "evil.py").exists()


@pytest.mark.parametrize("kernel_file", ["/tmp/vkc-evil-abs.py", "../vkc-evil-up.py", "../../vkc-evil.py",
                                         "a/b.py", ".hidden.py", "x.sh", "invoke_example.py", "", 3, ["a.py"]])
def test_run_refuses_kernel_file_escapes(tmp_path: Path, kernel_file: object) -> None:
    [res] = run_artifact("a.json", artifact(kernel_file=kernel_file), small=True)
    assert not res.ok
    assert res.reason.startswith(("refused: KERNEL_FILE", "invocation example has no KERNEL_FILE")), res.reason
    assert not Path("/tmp/vkc-evil-abs.py").exists()
    assert not list(Path("/tmp").glob("vkc-evil*"))


def test_artifact_file_name() -> None:
    assert artifact_file_name({"name": "m.x:k"}, None) == "m.x--k.py"
    assert artifact_file_name({"name": "k"}, "k.py") == "k.py"
    with pytest.raises(ValueError, match="not a safe kernel name"):
        artifact_file_name({"name": "../k"}, None)


needs_bwrap = pytest.mark.skipif(shutil.which("bwrap") is None, reason="bwrap (Debian: bubblewrap) not on PATH")


@needs_bwrap
def test_sandbox_read_only_root_private_tmp_no_network(tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    outside = tmp_path / "outside.txt"
    code = ("import socket, pathlib, sys\n"
            f"pathlib.Path({str(work / 'inside.txt')!r}).write_text('ok')\n"
            "res = []\n"
            f"for p in ({str(outside)!r}, '/usr/vkc-probe'):\n"
            "    try:\n        open(p, 'w'); res.append('wrote ' + p)\n    except OSError:\n        pass\n"
            "try:\n    socket.create_connection(('1.1.1.1', 53), timeout=2); res.append('net')\n"
            "except OSError:\n    pass\n"
            "print(sorted(__import__('os').listdir('/tmp')), res)\n")
    cmd, env = sandbox.wrap([sys.executable, "-c", code], work, {"PATH": "/usr/bin:/bin"})
    assert cmd[0].endswith("bwrap")
    p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert (work / "inside.txt").read_text() == "ok" and not outside.exists()
    # a write to the private /tmp may succeed in the box but never reaches the host
    assert "/usr/vkc-probe" not in p.stdout and "net" not in p.stdout.split("] ")[-1]
    assert not Path("/usr/vkc-probe").exists()


def test_sandbox_off_or_missing(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert sandbox.wrap(["true"], tmp_path, {}, enabled=False) == (["true"], {})
    assert sandbox.sandbox_mode(False) == "none (--no-sandbox)"
    monkeypatch.setattr(shutil, "which", lambda _name: None)
    assert sandbox.sandbox_mode(True) == "none (bwrap not on PATH)"
    assert "WITHOUT a sandbox" in sandbox.notice(sandbox.sandbox_mode(True))


@pytest.mark.slow
@needs_bwrap
def test_verify_run_in_sandbox_records_mode(tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    art = artifact(extra=f"open({str(marker)!r}, 'w')")   # host code writing outside: fails in the box
    path = write(tmp_path / "arts", art)
    import io
    note = io.StringIO()
    res = verify_many([path.parent], run=True, jobs=1, timeout=240, notice=note)
    run = [r for r in res if r.check == "run"]
    assert len(run) == 1 and not run[0].ok and not marker.exists()
    assert note.getvalue().count("\n") == 1 and "bubblewrap sandbox" in note.getvalue()
    data = json.loads((path.parent / "verify_results.json").read_text())
    assert data["options"]["sandbox"] == "bwrap"


def test_errors_print_control_characters_escaped(tmp_path: Path) -> None:
    from vkc.batch.cli_hooks import one_line
    assert one_line("a\x1b[31mb\nc\rd\x00") == "a\\x1b[31mb\\nc\\rd\\x00"
    p = subprocess.run([sys.executable, "-m", "vkc", "verify", str(tmp_path / "no\x1b[31mfile\n")],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 11 and p.stderr.count("\n") == 1 and "\x1b" not in p.stderr


@pytest.mark.parametrize("args", [["collect", "rms_norm_kernel", "--out", ""], ["collect", "--all", "--out", " "]])
def test_empty_out_is_a_usage_error(tmp_path: Path, args: list[str]) -> None:
    p = subprocess.run([sys.executable, "-m", "vkc", *args], capture_output=True, text=True, timeout=300,
                       cwd=tmp_path, env={**__import__("os").environ, "VKC_OFFLINE": "1", "HF_HUB_OFFLINE": "1"})
    assert p.returncode == 2 and "--out" in p.stderr and p.stderr.count("\n") == 1, p.stderr


@pytest.mark.parametrize("model,ok", [("/tmp/cfg/config.json", True), ("./my/config.json", True),
                                      ("meta-llama/Llama-3.1-8B-Instruct", False)])
def test_model_header_local_config_needs_no_hub_url(model: str, ok: bool) -> None:
    from vkc.verify.rubric import _model_header_reason
    assert (_model_header_reason(f"# MODEL_NAME: {model}\nx = 1\n") is None) is ok
