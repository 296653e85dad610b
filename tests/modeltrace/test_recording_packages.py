"""Recording stand-ins for whole packages (flashinfer), without vLLM."""
from __future__ import annotations

import subprocess
import sys

import torch

from vkc.modeltrace.recorder import RECORDER
from vkc.modeltrace.recording_packages import Recorded


def test_a_call_is_an_external_event_and_a_function_returns_none():
    x = torch.empty(4, 8, dtype=torch.bfloat16, device="meta")
    o = torch.empty(4, 8, dtype=torch.bfloat16, device="meta")
    RECORDER.reset_step()
    RECORDER.active = True
    try:
        assert Recorded("pkg.sub.kernel")(x, 3, out=o, mode="fast") is None
    finally:
        RECORDER.active = False
    ev = RECORDER.events[-1]
    assert ev["kind"] == "external" and ev["name"] == "pkg.sub.kernel"
    args = {n: a for n, a in ev["args"]}
    assert args["arg0"]["shape"] == [4, 8] and args["arg1"]["value"] == 3 and args["mode"]["value"] == "fast"
    assert [d["shape"] for d in ev["outputs"]] == [[4, 8]]


def test_a_class_returns_an_instance_whose_methods_record():
    RECORDER.reset_step()
    RECORDER.active = True
    try:
        w = Recorded("pkg.Wrapper")(torch.empty(16, dtype=torch.uint8, device="meta"), "NHD")
        assert isinstance(w, Recorded)
        assert w.run(torch.empty(2, 2, device="meta")) is None
    finally:
        RECORDER.active = False
    assert [e["name"] for e in RECORDER.events[-2:]] == ["pkg.Wrapper", "pkg.Wrapper().run"]


def test_install_caches_the_availability_check_before_the_stand_in_exists():
    """The package imports (by submodule too); the availability check ran while it was absent."""
    code = (
        "import sys, types\n"
        "calls = []\n"
        "chk = types.ModuleType('vkc_fake_check')\n"
        "import importlib.util\n"
        "chk.has = lambda: calls.append(importlib.util.find_spec('vkc_no_such_lib') is None)\n"
        "sys.modules['vkc_fake_check'] = chk\n"
        "from vkc.modeltrace import recording_packages as rp\n"
        "rp.PACKAGES['vkc_no_such_lib'] = (('attn',), 'vkc_fake_check:has')\n"
        "assert rp.install_recording_packages(('vkc_no_such_lib', 'json')) == ['vkc_no_such_lib']\n"
        "from vkc_no_such_lib.attn import paged_logits\n"
        "from vkc_no_such_lib import Planner\n"
        "assert calls == [True], calls\n"
        "print(paged_logits)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "<recording stand-in vkc_no_such_lib.attn.paged_logits>"


def test_a_documented_out_of_place_entry_point_returns_a_tensor_like_its_input():
    """flashinfer's norms (MiniMax-M3): the result is shaped like the input and recorded as the output;
    the fused-add form writes its first two arguments in place."""
    x = torch.empty(4, 8, dtype=torch.bfloat16, device="meta")
    r = torch.empty(4, 8, dtype=torch.bfloat16, device="meta")
    w = torch.empty(8, dtype=torch.bfloat16, device="meta")
    RECORDER.reset_step()
    RECORDER.active = True
    try:
        y = Recorded("flashinfer.norm.gemma_rmsnorm")(x, w, 1e-6)
        assert Recorded("flashinfer.norm.gemma_fused_add_rmsnorm")(x, r, w, 1e-6) is None
    finally:
        RECORDER.active = False
    assert y.shape == (4, 8) and y.dtype == torch.bfloat16 and y is not x
    norm, fused = RECORDER.events[-2:]
    assert [o["shape"] for o in norm["outputs"]] == [[4, 8]]
    assert len(fused["outputs"]) == 2


def test_worker_reads_the_fields_of_a_slotted_metadata_object():
    """Step5's builder returns a slotted metadata class: the worker names its tensors all the same."""
    from vkc.modeltrace.worker import _fields

    class Base:
        __slots__ = ("a",)

    class Meta(Base):
        __slots__ = ("b", "unset")

    m = Meta()
    m.a, m.b = 1, 2
    assert _fields(m) == [("a", 1), ("b", 2)]

    class Plain:
        def __init__(self) -> None:
            self.z, self.y = 3, 4

    assert _fields(Plain()) == [("y", 4), ("z", 3)]
