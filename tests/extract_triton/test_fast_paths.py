"""The extractor's speed paths: static torch dtype facts, the on-disk runtime-fallback
cache and the cached ``source_segment`` must answer exactly what the slow paths answer."""
from __future__ import annotations

import ast
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from vkc.extract.triton import runtime_fallback, torchinfo
from vkc.extract.triton.modinfo import _segment_lines, source_segment
from vkc.extract.triton.values import Unresolved, to_literal


def test_torch_table_matches_torch():
    torch = pytest.importorskip("torch")
    names = [n for n in dir(torch) if isinstance(getattr(torch, n), torch.dtype)]
    assert len(names) > 40
    for n in names:
        real, fake = getattr(torch, n), torchinfo.lookup(n)
        assert fake is not None, n
        assert str(fake) == repr(fake) == str(real)
        assert fake == real and fake is torchinfo.lookup(str(real)[len("torch."):])
        for attr in ("is_floating_point", "is_complex", "itemsize"):
            assert getattr(fake, attr) == getattr(real, attr), (n, attr)
        try:
            fi = torch.finfo(real)
            repr(fi)
        except (TypeError, RuntimeError):
            fi = None
        assert (fake.name in torchinfo.FINFO) == (fi is not None), n
        if fi is not None:
            got = torchinfo.torch_finfo(fake)
            for attr in ("bits", "eps", "max", "min", "resolution", "smallest_normal", "tiny", "dtype"):
                assert getattr(got, attr) == getattr(fi, attr), (n, attr)
            assert repr(got) == repr(fi)
        try:
            ii = torch.iinfo(real)
            want = (ii.bits, ii.max, ii.min, ii.dtype, repr(ii))
        except (TypeError, RuntimeError):
            want = None
        assert (fake.name in torchinfo.IINFO) == (want is not None), n
        if want is not None:
            got = torchinfo.torch_iinfo(fake)
            assert (got.bits, got.max, got.min, got.dtype, repr(got)) == want
    assert torchinfo.lookup("float") == torch.float32 and torchinfo.lookup("not_a_dtype") is None
    assert to_literal(torchinfo.lookup("half")) == "torch.float16"


def test_static_eval_does_not_import_torch(tmp_path):
    """torch.finfo/iinfo/dtype comparisons/hasattr(torch, dtype) resolve without torch."""
    (tmp_path / "m.py").write_text(textwrap.dedent("""\
        import torch
        FP8 = torch.float8_e4m3fn
        MAX = torch.finfo(FP8).max
        MIN = torch.finfo(torch.float8_e4m3fn).min
        IMIN = torch.iinfo(torch.int32).min
        SAME = torch.float16 == torch.half
        SIZE = torch.bfloat16.itemsize * 1
        HAS = hasattr(torch, "float8_e8m0fnu")
        NAME = f"{torch.float}"
        """))
    code = textwrap.dedent(f"""\
        import json, sys
        from vkc.extract.triton.evaluator import Program
        from vkc.extract.triton.values import to_literal
        p = Program({str(tmp_path)!r})
        out = {{n: to_literal(p.lookup("m", n)[0]) for n in
               ("FP8", "MAX", "MIN", "IMIN", "SAME", "SIZE", "HAS", "NAME")}}
        out["torch_imported"] = "torch" in sys.modules
        print(json.dumps(out))
        """)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    got = json.loads(r.stdout)
    assert got == {"FP8": "torch.float8_e4m3fn", "MAX": "448.0", "MIN": "-448.0", "IMIN": "-2147483648",
                   "SAME": "True", "SIZE": "2", "HAS": "True", "NAME": "'torch.float32'",
                   "torch_imported": False}


def _tree(tmp_path: Path) -> Path:
    root = tmp_path / "tree"
    root.mkdir()
    (root / "good.py").write_text("X = 6 * 7\n")
    (root / "bad.py").write_text("raise RuntimeError('no import on CPU')\n")
    return root


def test_runtime_fallback_disk_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("VKC_CACHE_DIR", str(tmp_path / "cache"))
    root = _tree(tmp_path)
    fb = runtime_fallback.RuntimeFallback(root, sha256="abc")
    assert fb("good", "X") == 42
    with pytest.raises(Unresolved):
        fb("bad", "X")
    files = sorted((tmp_path / "cache" / "runtime_fallback").glob("*.json"))
    assert len(files) == 3          # good:X, bad:X and bad's failed import

    def no_subprocess(*a, **k):
        raise AssertionError("a warm cache must not start a subprocess")

    monkeypatch.setattr(runtime_fallback.subprocess, "run", no_subprocess)
    warm = runtime_fallback.RuntimeFallback(root, sha256="abc")
    assert warm("good", "X") == 42
    with pytest.raises(Unresolved):
        warm("bad", "X")
    with pytest.raises(Unresolved):  # another query of a module whose import failed: no subprocess
        warm("bad", "Y")
    # another sdist sha is another key: not served from the cache
    with pytest.raises(AssertionError):
        runtime_fallback.RuntimeFallback(root, sha256="other")("good", "X")


def test_runtime_fallback_timeout_not_cached(tmp_path, monkeypatch):
    monkeypatch.setenv("VKC_CACHE_DIR", str(tmp_path / "cache"))
    root = _tree(tmp_path)

    def timeout(*a, **k):
        raise subprocess.TimeoutExpired("python", 1)

    monkeypatch.setattr(runtime_fallback.subprocess, "run", timeout)
    with pytest.raises(Unresolved):
        runtime_fallback.RuntimeFallback(root)("good", "X")
    assert not list((tmp_path / "cache").rglob("*.json"))


def test_source_segment_matches_ast(vllm_tree):
    for t in ("a\rb\r\nc\n\nd", "", "x", "x\n", "\r\r\n\n", "a\x0cb\nc\u2028d\n"):
        assert _segment_lines(t) == ast._splitlines_no_ff(t)
    text = (Path(vllm_tree.root) / "vllm" / "v1" / "attention" / "ops" / "triton_reshape_and_cache_flash.py").read_text()
    nodes = [n for n in ast.walk(ast.parse(text)) if isinstance(n, (ast.expr, ast.stmt))]
    assert len(nodes) > 500
    for node in nodes[::5]:      # ast.get_source_segment re-splits the module per call: sample
        assert source_segment(text, node) == ast.get_source_segment(text, node)
