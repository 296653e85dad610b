"""A checkout or virtual environment under /tmp stays visible (read-only) inside the sandbox's
private /tmp, or bwrap cannot even find the interpreter."""
from __future__ import annotations

from pathlib import Path

from vkc.verify.sandbox import _under_tmp


def test_interpreter_and_pythonpath_under_tmp_are_kept(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    src = tmp_path / "checkout" / "src"
    src.mkdir(parents=True)
    kept = _under_tmp([str(venv / "bin" / "python"), "x.py"], {"PYTHONPATH": f"{src}:/usr/lib"})
    assert str(venv.resolve()) in kept and str(src.resolve()) in kept
    assert all(k.startswith("/tmp/") for k in kept)
    assert not any(a != b and a.startswith(b + "/") for a in kept for b in kept)   # no nested duplicates


def test_nothing_outside_tmp() -> None:
    assert all(k.startswith("/tmp/") for k in _under_tmp(["/usr/bin/python3"], {}))
