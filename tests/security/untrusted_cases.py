"""A tiny, valid Triton artifact and hostile variants of it (shared by the security tests)."""
from __future__ import annotations

import json
import textwrap
from pathlib import Path

KERNEL = textwrap.dedent('''\
    import triton
    import triton.language as tl


    @triton.jit
    def add_one_kernel(x_ptr, y_ptr, BLOCK: tl.constexpr):
        offs = tl.arange(0, BLOCK)
        tl.store(y_ptr + offs, tl.load(x_ptr + offs) + 1.0)
    ''')

SPEC = {"entry": "add_one_kernel", "signature": {"x_ptr": "*fp32", "y_ptr": "*fp32", "BLOCK": "constexpr"},
        "constexprs": {"BLOCK": 16}, "attrs": {}, "num_warps": 4, "num_stages": 1, "target": ["cuda", 90, 32]}

EXAMPLE = textwrap.dedent('''\
    """Invocation example of add_one_kernel.
    MODEL_NAME: none
    """
    import importlib.util
    import os

    KERNEL_FILE = {kernel_file!r}
    VKC_COMPILE = {spec!r}
    os.environ.setdefault("TRITON_INTERPRET", "1")

    import torch  # noqa: E402
    import triton  # noqa: E402,F401

    here = os.path.dirname(os.path.abspath(__file__))
    spec = importlib.util.spec_from_file_location("k", os.path.join(here, KERNEL_FILE))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    x = torch.ones(16)
    y = torch.empty(16)
    mod.add_one_kernel[(1,)](x, y, BLOCK=16)
    print("RESULT kernel=add_one_kernel ok=" + str(bool((y == 2).all())))
    {extra}
    ''')


def artifact(source: str = KERNEL, kernel_file: object = "add_one_kernel.py", extra: str = "") -> dict:
    return {"name": "add_one_kernel", "kernel": {
        "kernel_type": "triton", "source_code": source,
        "invocation_example": EXAMPLE.format(kernel_file=kernel_file, spec=SPEC, extra=extra)}}


def write(folder: Path, art: dict) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "add_one_kernel.json"
    path.write_text(json.dumps(art, indent=1))
    return path
