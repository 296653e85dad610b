"""kernel_paged_attention_2d at gpt-oss-120b decode shapes (sinks + 128-token window) vs torch.

The GPU test runs the FULL configuration (64 seqs x 65536-token contexts); the CPU test runs the
SMALL configuration under TRITON_INTERPRET=1.  Both launch exactly what the generated example
launches (its own build()/make_launch()).
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.sdist
HERE = Path(__file__).parent


def _run(invocation, tmp_path: Path, config: str, env_extra: dict) -> str:
    ex, inv = invocation("kernel_paged_attention_2d", "openai/gpt-oss-120b", None)
    (tmp_path / inv.facts["kernel_file"]).write_text(ex.source_code)
    (tmp_path / "run.py").write_text(inv.code)
    env = dict(os.environ, **env_extra)
    proc = subprocess.run([sys.executable, str(HERE / "paged_reference.py"), str(tmp_path), config],
                          check=False, capture_output=True, text=True, env=env, timeout=900)
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
    return proc.stdout


def test_paged_attention_2d_small_matches_reference_cpu(invocation, tmp_path):
    out = _run(invocation, tmp_path, "SMALL", {"TRITON_INTERPRET": "1", "CUDA_VISIBLE_DEVICES": ""})
    assert "MAXERR" in out and "window=128 sinks=True" in out


@pytest.mark.gpu
def test_paged_attention_2d_full_matches_reference_gpu(invocation, tmp_path):
    out = _run(invocation, tmp_path, "FULL", {})
    assert "MAXERR" in out and "window=128 sinks=True" in out and "(64, 64, 64)" in out
