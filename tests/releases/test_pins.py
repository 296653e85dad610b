"""The torch / Triton pins a release declares (issue 14: toolchain skew said out loud), on fixture trees."""
from __future__ import annotations

from pathlib import Path

from vkc.source.pins import release_pins


def _write(root: Path, rel: str, text: str) -> None:
    (root / rel).parent.mkdir(parents=True, exist_ok=True)
    (root / rel).write_text(text)


def test_cuda_requirements_pin(tmp_path):
    _write(tmp_path, "requirements/cuda.txt", "-r common.txt\nnumba == 0.61.2\ntorch==2.8.0\ntorchaudio==2.8.0\n")
    p = release_pins(tmp_path)
    assert (p.torch, p.triton, p.source) == ("2.8.0", None, "requirements/cuda.txt")
    assert p.describe() == "torch 2.8.0, Triton via torch 2.8.0 (requirements/cuda.txt)"


def test_rocm_local_pins_are_not_cuda_pins_and_pyproject_is_the_fallback(tmp_path):
    _write(tmp_path, "requirements/cuda.txt", "triton==3.7.1+git0263a6a6.rocm7.14.0\n")
    _write(tmp_path, "pyproject.toml", '[build-system]\nrequires = [\n    "torch == 2.14.0",\n]\n')
    p = release_pins(tmp_path)
    assert (p.torch, p.triton, p.source) == ("2.14.0", None, "pyproject.toml")


def test_explicit_triton_pin_and_none(tmp_path):
    _write(tmp_path / "a", "requirements/cuda.txt", "torch==2.11.0\ntriton==3.5.0\n")
    assert release_pins(tmp_path / "a").describe() == "torch 2.11.0, Triton 3.5.0 (requirements/cuda.txt)"
    assert release_pins(tmp_path / "b").describe() == "no torch/Triton pin found"
