"""How an invocation example is built: its file name and the nvcc command its header prints (a leaf).

File conventions (the writer/verifier rely on them): kernel unit ``<stem>.cu``, invocation example
``<stem>_main.cu`` (``#include "<stem>.cu"`` is its first include), binary ``<stem>``.
"""
from __future__ import annotations

__all__ = ["NVCC_FLAGS", "TORCH_INCLUDE", "build_command", "main_file_name"]

NVCC_FLAGS = ("-std=c++17 -arch=sm_90 --expt-relaxed-constexpr --expt-extended-lambda -DENABLE_FP8")
TORCH_INCLUDE = ("-I$(python -c 'import torch,os;print(os.path.join(os.path.dirname(torch.__file__),"
                 "\"include\"))')")


def main_file_name(stem: str) -> str:
    """File name of the invocation example for a kernel unit ``<stem>.cu``."""
    return f"{stem}_main.cu"


def build_command(stem: str, include_flags: tuple[str, ...] = ()) -> str:
    extra = "".join(f" {f}" for f in include_flags)
    return f"nvcc {NVCC_FLAGS} {TORCH_INCLUDE}{extra} -o {stem} {main_file_name(stem)}"
