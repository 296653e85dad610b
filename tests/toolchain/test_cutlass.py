"""Where the CUTLASS headers come from (vkc.toolchain.cutlass), and --cutlass on the command line."""
from __future__ import annotations

import subprocess
import sys

import pytest

from vkc.toolchain.cutlass import ENV, find_cutlass, pinned_cutlass, uses_cutlass
from vkc.toolchain.nvcc import nvcc_flags


def _checkout(root, version=(4, 7, 1)):
    inc = root / "include" / "cutlass"
    inc.mkdir(parents=True)
    (inc / "cutlass.h").write_text("#pragma once\n")
    (inc / "version.h").write_text("".join(f"#define CUTLASS_{k} {v}\n" for k, v in zip(("MAJOR", "MINOR", "PATCH"),
                                                                                           version)))
    (root / "tools" / "util" / "include" / "cutlass" / "util").mkdir(parents=True)
    return root


def test_an_explicit_checkout_wins(tmp_path, monkeypatch):
    root = _checkout(tmp_path / "cutlass")
    monkeypatch.setenv(ENV, str(root))
    got = find_cutlass()
    assert got is not None and got.source == ENV and got.version == "4.7.1"
    assert got.include == str(root / "include") and got.util == str(root / "tools" / "util" / "include")
    assert f"-I{root / 'include'}" in nvcc_flags() and f"-I{root / 'tools' / 'util' / 'include'}" in nvcc_flags()
    monkeypatch.setenv(ENV, str(root / "include"))            # the include folder itself
    assert find_cutlass().include == str(root / "include")


def test_an_explicit_folder_without_cutlass_is_none(tmp_path, monkeypatch):
    monkeypatch.setenv(ENV, str(tmp_path))
    assert find_cutlass() is None


def test_the_wheel_when_installed(monkeypatch):
    monkeypatch.delenv(ENV, raising=False)
    got = find_cutlass()
    if got is None:
        pytest.skip("nvidia-cutlass is not installed")
    assert got.source == "nvidia-cutlass wheel" and got.include.endswith("cutlass_library/source/include")
    assert got.version.startswith("4.")


def test_pinned_version_and_use(tmp_path):
    (tmp_path / "CMakeLists.txt").write_text('    set(CUTLASS_REVISION "v4.7.1")\n')
    assert pinned_cutlass(tmp_path) == "4.7.1"
    assert pinned_cutlass(tmp_path / "nowhere") is None
    assert uses_cutlass('#include <cute/tensor.hpp>\n') and uses_cutlass('#include "cutlass/array.h"')
    assert not uses_cutlass("#include <cuda_runtime.h>\n// cutlass/ in a comment")


def test_cli_refuses_a_folder_without_cutlass(tmp_path):
    art = tmp_path / "a.json"
    art.write_text("{}")
    r = subprocess.run([sys.executable, "-m", "vkc", "verify", "--compile", "--cutlass", str(tmp_path), str(art)],
                       capture_output=True, text=True)
    assert r.returncode == 2, r.stderr
    assert r.stderr.count("\n") == 1 and "--cutlass" in r.stderr and "Traceback" not in r.stderr
