"""The static rubric is linear in the artifact's size (issue 15: the ``__global__`` scan was
quadratic, minutes on a few hundred KB)."""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from vkc.verify.cscan import strip_c
from vkc.verify.rubric import check_artifact, global_names

MB = 1 << 20
# fragments that made a regex rescan the rest of the text once per occurrence
HOSTILE = ["__global__ ", "__launch_bounds__( ", '"\\"']


def _artifact(tmp_path: Path, size: int, fragment: str) -> Path:
    body = fragment * (size // 2 // len(fragment))
    inv = '#include "k.cu"\nint main() { k<<<1, 1>>>(); }\n' + body
    art = {"name": "k", "kernel": {"kernel_type": "cuda", "source_code": "__global__ void k() {}\n" + body,
                                   "invocation_example": inv}}
    path = tmp_path / "k.json"
    path.write_text(json.dumps(art))
    return path


def _seconds(path: Path) -> float:
    t = time.perf_counter()
    check_artifact(path)
    return time.perf_counter() - t


def _budget(seconds: float) -> float:
    """``seconds`` on an idle machine, scaled by how oversubscribed the CPUs are now."""
    load = os.getloadavg()[0] / (os.cpu_count() or 1)
    return seconds * max(1.0, load)


@pytest.mark.parametrize("fragment", HOSTILE)
def test_one_megabyte_artifact_is_fast(tmp_path: Path, fragment: str) -> None:
    path = _artifact(tmp_path, MB, fragment)
    assert _seconds(path) < _budget(2.0)


def test_time_grows_linearly(tmp_path: Path) -> None:
    (tmp_path / "s").mkdir()
    (tmp_path / "b").mkdir()
    small = _seconds(_artifact(tmp_path / "s", MB // 8, "__global__ "))
    big = _seconds(_artifact(tmp_path / "b", MB, "__global__ "))
    assert big < 8 * 3 * max(small, 0.01)   # 8x the input: ~8x the time (quadratic was ~64x)


def test_global_names_same_answers() -> None:
    code = ("__global__ void __launch_bounds__(256) a(int x) {}\n"
            "template <int N> __global__ void b(float* y) {}\n"
            "__global__ __global__ void c() {}\n"
            "extern __global__ void d;\n"       # a statement, not a kernel
            "__global__ void e\n(int) {}\n")
    assert global_names(code, in_order=True) == ["a", "b", "c", "e"]


def test_unterminated_literals_end_at_line_or_file_end() -> None:
    assert strip_c('x = "abc\ny = 1;') == 'x = "   \ny = 1;'
    assert "int y" not in strip_c('R"x(never closed\nint y;')
    assert strip_c("/* c */ int z; // d") == "        int z;     "
