"""Recording stand-ins for kernels outside the tree, and import-only stand-ins, without vLLM."""
from __future__ import annotations

import subprocess
import sys

import torch

from vkc.modeltrace import external
from vkc.modeltrace.recorder import RECORDER


def test_flash_attn_varlen_records_an_external_event_with_real_output_shapes():
    q = torch.empty(10, 16, 192, dtype=torch.bfloat16, device="meta")
    k = torch.empty(10, 16, 192, dtype=torch.bfloat16, device="meta")
    v = torch.empty(10, 16, 128, dtype=torch.bfloat16, device="meta")
    cu = torch.empty(3, dtype=torch.int32, device="meta")
    RECORDER.reset_step()
    RECORDER.active = True
    try:
        out, lse = external.flash_attn_varlen_func(q, k, v, max_seqlen_q=8, cu_seqlens_q=cu, max_seqlen_k=8,
                                                   cu_seqlens_k=cu, softmax_scale=0.1, causal=True,
                                                   return_softmax_lse=True)
    finally:
        RECORDER.active = False
    assert out.shape == (10, 16, 128) and out.dtype == torch.bfloat16
    assert lse.shape == (16, 10) and lse.dtype == torch.float32
    ev = RECORDER.events[-1]
    assert ev["kind"] == "external" and ev["name"] == "vllm_flash_attn::flash_attn_varlen_func"
    args = {n: a for n, a in ev["args"]}
    assert args["q"]["shape"] == [10, 16, 192] and args["causal"]["value"] is True
    assert [o["shape"] for o in ev["outputs"]] == [[10, 16, 128], [16, 10]]
    assert "vllm_flash_attn::flash_attn_varlen_func" in external.USED


def test_out_argument_is_written_and_returned():
    q = torch.empty(4, 2, 64, device="meta")
    o = torch.empty(4, 2, 64, device="meta")
    assert external.flash_attn_varlen_func(q, q, q, out=o) is o


def test_import_only_stand_in_for_a_missing_package():
    """A package that is not installed imports; calling anything of it fails loudly; one that is
    installed is left alone."""
    code = (
        "import sys\n"
        "from vkc.modeltrace.external import stand_in_missing_packages\n"
        "made = stand_in_missing_packages(('vkc_no_such_pkg', 'json'))\n"
        "from vkc_no_such_pkg.transforms.v2 import functional as F\n"
        "import importlib.util\n"
        "assert importlib.util.find_spec('vkc_no_such_pkg').origin is None\n"
        "try:\n"
        "    F.resize(1)\n"
        "except RuntimeError as e:\n"
        "    assert 'stand-in' in str(e)\n"
        "else:\n"
        "    raise SystemExit('called through')\n"
        "assert not hasattr(sys.modules['vkc_no_such_pkg'], '__file__')\n"
        "print(made)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "['vkc_no_such_pkg']"
