"""The atomic artifact writer and reader (vkc.write)."""
from __future__ import annotations

import errno
import hashlib
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from vkc.errors import KernelNameError, VerifyError, WriteError
from vkc.write import artifact_schema, read_artifact, write_artifact

SRC = "import triton\n\n\n@triton.jit\ndef k(x_ptr):\n    pass  # µs, ü\n"
INV = "# MODEL_NAME: none\nk[(1,)](x)\n"


def _listing(d: Path) -> list[str]:
    return sorted(p.name for p in d.iterdir())


def test_write_roundtrip(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    res = write_artifact("rms_norm_kernel", "triton", SRC, INV)
    assert res.path == "kernels_out/rms_norm_kernel.json"
    data = (tmp_path / res.path).read_bytes()
    obj = {"name": "rms_norm_kernel", "kernel": {"kernel_type": "triton", "source_code": SRC,
                                                 "invocation_example": INV}}
    assert data == (json.dumps(obj, indent=2, ensure_ascii=False) + "\n").encode("utf-8")
    assert "µs, ü".encode() in data  # not \u-escaped
    assert list(json.loads(data)) == ["name", "kernel"]
    assert list(json.loads(data)["kernel"]) == ["kernel_type", "source_code", "invocation_example"]
    assert res.size == len(data) and res.sha256 == hashlib.sha256(data).hexdigest()
    assert res.line == f"WROTE kernels_out/rms_norm_kernel.json size={len(data)} sha256={res.sha256}"
    assert read_artifact(res.path) == obj
    assert _listing(tmp_path / "kernels_out") == [".rms_norm_kernel.json.lock", "rms_norm_kernel.json"]


def test_byte_identical(tmp_path: Path) -> None:
    a = write_artifact("k", "triton", SRC, INV, tmp_path / "a")
    b = write_artifact("k", "triton", SRC, INV, tmp_path / "b" / "nested")
    again = write_artifact("k", "triton", SRC, INV, tmp_path / "a")
    assert a.sha256 == b.sha256 == again.sha256 and a.size == b.size
    assert (tmp_path / "a/k.json").read_bytes() == (tmp_path / "b/nested/k.json").read_bytes()


def test_qualified_name_and_path_forms(tmp_path: Path) -> None:
    res = write_artifact("csrc/x.cu:k@12", "cuda", "__global__ void k() {}\n", "int main() {}\n",
                         os.fspath(tmp_path) + "/out/")
    assert res.path == f"{tmp_path}/out/csrc.x.cu--k@12.json"
    assert read_artifact(res.path)["name"] == "csrc/x.cu:k@12"


def test_file_mode_follows_umask(tmp_path: Path) -> None:
    res = write_artifact("k", "triton", SRC, INV, tmp_path)
    old = os.umask(0o022)
    os.umask(old)
    assert os.stat(res.path).st_mode & 0o777 == 0o666 & ~old


@pytest.mark.parametrize("name", ["../evil", "/abs/k", "a\x00b", "a\\b", ".."])
def test_path_like_names_touch_nothing(tmp_path: Path, name: str) -> None:
    out = tmp_path / "kernels_out"
    with pytest.raises(KernelNameError):
        write_artifact(name, "triton", SRC, INV, out)
    assert not out.exists() and _listing(tmp_path) == []


def _good(tmp_path: Path) -> tuple[Path, bytes]:
    res = write_artifact("k", "triton", SRC, INV, tmp_path)
    return Path(res.path), Path(res.path).read_bytes()


@pytest.mark.parametrize("kernel_type,source", [("python", SRC), ("triton", ""), ("triton", "  \n"), ("CUDA", SRC)])
def test_schema_failure_keeps_good_file(tmp_path: Path, kernel_type: str, source: str) -> None:
    path, before = _good(tmp_path)
    with pytest.raises(WriteError) as exc:
        write_artifact("k", kernel_type, source, INV, tmp_path)
    assert "schema" in exc.value.message and "\n" not in exc.value.message
    assert path.read_bytes() == before
    assert _listing(tmp_path) == [".k.json.lock", "k.json"]


def test_unencodable_text(tmp_path: Path) -> None:
    path, before = _good(tmp_path)
    with pytest.raises(WriteError, match="UTF-8"):
        write_artifact("k", "triton", SRC + "\ud800", INV, tmp_path)
    assert path.read_bytes() == before


def test_parent_is_a_file(tmp_path: Path) -> None:
    (tmp_path / "plain").write_text("x")
    with pytest.raises(WriteError) as exc:
        write_artifact("k", "triton", SRC, INV, tmp_path / "plain" / "out")
    assert "output folder" in exc.value.message and exc.value.hint
    with pytest.raises(WriteError, match="is not a folder"):
        write_artifact("k", "triton", SRC, INV, tmp_path / "plain")
    assert _listing(tmp_path) == ["plain"]


@pytest.mark.skipif(os.geteuid() == 0, reason="root bypasses directory permissions")
def test_unwritable_folder(tmp_path: Path) -> None:
    path, before = _good(tmp_path / "out")
    os.chmod(tmp_path / "out", 0o500)
    try:
        with pytest.raises(WriteError, match="not writable"):
            write_artifact("k", "triton", SRC.replace("x_ptr", "y_ptr"), INV, tmp_path / "out")
    finally:
        os.chmod(tmp_path / "out", 0o700)
    assert path.read_bytes() == before


def test_target_is_a_folder(tmp_path: Path) -> None:
    (tmp_path / "k.json").mkdir()
    with pytest.raises(WriteError, match="is a folder"):
        write_artifact("k", "triton", SRC, INV, tmp_path)
    assert _listing(tmp_path) == [".k.json.lock", "k.json"]


def test_failed_replace_removes_temp_and_keeps_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path, before = _good(tmp_path)

    def broken_replace(src: str, dst: str) -> None:
        assert Path(src).name.startswith(".k.json.") and Path(src).exists()
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(WriteError, match="cannot write"):
        write_artifact("k", "triton", SRC.replace("x_ptr", "y_ptr"), INV, tmp_path)
    assert path.read_bytes() == before
    assert _listing(tmp_path) == [".k.json.lock", "k.json"]


def test_read_back_mismatch_is_detected(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from vkc.write import writer

    monkeypatch.setattr(writer, "_read_back", lambda final, shown: b"{}")
    with pytest.raises(WriteError, match="read-back differs"):
        write_artifact("k", "triton", SRC, INV, tmp_path)


_WORKER = textwrap.dedent("""
    import sys
    from vkc.write import write_artifact
    out, tag = sys.argv[1], sys.argv[2]
    src = "import triton\\n\\n\\n@triton.jit\\ndef k(x_ptr):\\n    pass  # " + tag * 20000 + "\\n"
    for i in range(40):
        write_artifact("csrc/x.cu:k", "triton", src, "k[(1,)](x)\\n", out)
""")


def test_concurrent_writers(tmp_path: Path) -> None:
    out = tmp_path / "out"
    procs = [subprocess.Popen([sys.executable, "-c", _WORKER, str(out), tag], stderr=subprocess.PIPE, text=True)
             for tag in ("a", "b")]
    errs = [p.communicate(timeout=120)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], errs
    obj = read_artifact(out / "csrc.x.cu--k.json")
    assert obj["kernel"]["source_code"].count("a" * 20000) + obj["kernel"]["source_code"].count("b" * 20000) == 1
    assert _listing(out) == [".csrc.x.cu--k.json.lock", "csrc.x.cu--k.json"]


def test_read_artifact_errors(tmp_path: Path) -> None:
    with pytest.raises(VerifyError, match="no such file"):
        read_artifact(tmp_path / "missing.json")
    with pytest.raises(VerifyError, match="is a folder"):
        read_artifact(tmp_path)
    bad = tmp_path / "bad.json"
    bad.write_text('{"name": "k",')
    with pytest.raises(VerifyError, match=r"not valid JSON: .*line 1"):
        read_artifact(bad)
    bad.write_text('{"name": "k", "kernel": {"kernel_type": "cuda", "source_code": "x"}}')
    with pytest.raises(VerifyError) as exc:
        read_artifact(bad)
    assert "'invocation_example' is a required property (at kernel)" in exc.value.message
    assert "\n" not in exc.value.message


def test_schema_is_shipped_and_strict() -> None:
    schema = artifact_schema()
    assert schema["additionalProperties"] is False
    assert schema["required"] == ["name", "kernel"]
    kernel = schema["properties"]["kernel"]
    assert kernel["additionalProperties"] is False
    assert kernel["properties"]["kernel_type"]["enum"] == ["cuda", "triton"]
