"""A fast subset of bench/fuzz_inputs.py: hostile config.json values and artifact fields
through the CLI give no traceback, no exit 70 and no file outside its folder."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench" / "fuzz_inputs.py"

def test_fuzz_subset_is_clean() -> None:
    p = subprocess.run([sys.executable, str(BENCH), "--seed", "7", "--configs", "6", "--artifacts", "24",
                        "--collect", "0"], capture_output=True, text=True, timeout=900)
    assert "tracebacks=0 exit70=0 outside=0" in p.stdout, p.stdout + p.stderr
    assert p.returncode == 0
    assert "verify-compile:11=1" in p.stdout            # the hostile artifacts fail verification (exit 11)
