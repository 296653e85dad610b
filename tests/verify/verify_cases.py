"""Builds tests/data/verify/{good,bad} from the handwritten sources in tests/data/verify/src.

good/<stem>.json                 valid artifacts (one Triton, one CUDA)
bad/<rule>/<case>/<file>.json     each violates exactly the rule <rule>

The JSON files are committed; test_verify_cases.py checks they match this builder
(rewrite them with ``VKC_UPDATE_GOLDEN=1``).
"""
from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path

from vkc.write.schema import build_artifact, dumps_artifact

DATA = Path(__file__).resolve().parents[1] / "data" / "verify"
SRC = DATA / "src"
TRITON = "rms_norm_kernel"
CUDA = "silu_and_mul_kernel"


def good() -> dict[str, dict]:
    return {
        TRITON: build_artifact(TRITON, "triton", (SRC / f"{TRITON}.py").read_text(),
                               (SRC / f"{TRITON}.invoke.py").read_text()),
        CUDA: build_artifact(CUDA, "cuda", (SRC / f"{CUDA}.cu").read_text(),
                             (SRC / f"{CUDA}.invoke.cu").read_text()),
    }


def _edit(stem: str, field: str, old: str, new: str, count: int = 1) -> Callable[[], bytes]:
    """An artifact that is the good one with ``old`` replaced by ``new`` in one field."""
    def build() -> bytes:
        obj = copy.deepcopy(good()[stem])
        text = obj["kernel"][field]
        assert text.count(old) >= 1, (stem, field, old)
        obj["kernel"][field] = text.replace(old, new, count)
        return dumps_artifact(obj)
    return build


def _obj(stem: str, change: Callable[[dict], None]) -> Callable[[], bytes]:
    def build() -> bytes:
        obj = copy.deepcopy(good()[stem])
        change(obj)
        return json.dumps(obj, indent=2, ensure_ascii=False).encode() + b"\n"
    return build


def _raw(stem: str, change: Callable[[bytes], bytes]) -> Callable[[], bytes]:
    return lambda: change(dumps_artifact(good()[stem]))


_LAUNCH_PY = "rms_norm_kernel[(1,)](x, w, o, 1, 1, 8, 1e-6, BLOCK_SIZE=8)\n"
_HOST_CU = ("\nvoid launch(__nv_bfloat16* o, const __nv_bfloat16* i, int d, int n) {\n"
            "  vllm::silu_and_mul_kernel<__nv_bfloat16><<<n, 256>>>(o, i, d);\n}\n")

# (rule, case, file name) -> bytes builder
BAD: dict[tuple[str, str, str], Callable[[], bytes]] = {
    ("json", "truncated", f"{TRITON}.json"): _raw(TRITON, lambda b: b[: len(b) // 2]),
    ("json", "duplicate_key", f"{TRITON}.json"):
        _raw(TRITON, lambda b: b.replace(b'{\n  "name"', b'{\n  "name": "other",\n  "name"', 1)),
    ("json", "not_utf8", f"{TRITON}.json"): _raw(TRITON, lambda b: b.replace(b"one program", b"one \xff program")),
    ("schema", "bad_kernel_type", f"{TRITON}.json"): _obj(TRITON, lambda o: o["kernel"].update(kernel_type="python")),
    ("schema", "extra_property", f"{TRITON}.json"): _obj(TRITON, lambda o: o.update(handoff={"grid_expr": "(M,)"})),
    ("schema", "missing_invocation", f"{TRITON}.json"): _obj(TRITON, lambda o: o["kernel"].pop("invocation_example")),
    ("schema", "blank_source", f"{CUDA}.json"): _obj(CUDA, lambda o: o["kernel"].update(source_code="  \n")),
    ("name", "stem_mismatch", "layer_norm_kernel.json"): lambda: dumps_artifact(good()[TRITON]),
    ("name", "path_like", "evil.json"): _obj(TRITON, lambda o: o.update(name="../evil")),
    ("kernel-type", "triton_without_jit", f"{TRITON}.json"): _edit(TRITON, "source_code", "@triton.jit\n", ""),
    ("kernel-type", "cuda_without_global", f"{CUDA}.json"):
        _edit(CUDA, "source_code", "__global__ void", "__device__ void"),
    ("kernel-type", "triton_holding_cuda", f"{CUDA}.json"):
        _obj(CUDA, lambda o: o["kernel"].update(kernel_type="triton",
             invocation_example=good()[TRITON]["kernel"]["invocation_example"])),
    ("no-host-code", "triton_print", f"{TRITON}.json"):
        _edit(TRITON, "source_code", "    tl.store(", "    print(row)\n    tl.store("),
    ("no-host-code", "triton_main_guard", f"{TRITON}.json"):
        _edit(TRITON, "source_code", "mask=mask)\n", "mask=mask)\n\n\nif __name__ == \"__main__\":\n    pass\n"),
    ("no-host-code", "triton_launch", f"{TRITON}.json"):
        _edit(TRITON, "source_code", "mask=mask)\n", "mask=mask)\n\n\ndef go(x, w, o):\n    " + _LAUNCH_PY),
    ("no-host-code", "triton_module_alloc", f"{TRITON}.json"):
        _edit(TRITON, "source_code", "import triton\n", "import torch\nimport triton\n\nBUF = torch.empty(16)\n"),
    ("no-host-code", "cuda_main", f"{CUDA}.json"):
        _edit(CUDA, "source_code", "}  // namespace vllm\n", "}  // namespace vllm\n\nint main() { return 0; }\n"),
    ("no-host-code", "cuda_chevron_launch", f"{CUDA}.json"):
        _edit(CUDA, "source_code", "}  // namespace vllm\n", "}  // namespace vllm\n" + _HOST_CU),
    ("no-host-code", "cuda_torch_check", f"{CUDA}.json"):
        _edit(CUDA, "source_code", "}  // namespace vllm\n",
              '}  // namespace vllm\n\nvoid check(int d) { TORCH_CHECK(d % 2 == 0, "d must be even"); }\n'),
    ("cuda-headers", "bf16_without_cuda_bf16", f"{CUDA}.json"):
        _edit(CUDA, "source_code", "#include <cuda_bf16.h>", "#include <cuda_fp16.h>"),
    ("cuda-headers", "fp8_without_cuda_fp8", f"{CUDA}.json"):
        _edit(CUDA, "source_code", "}  // namespace vllm\n",
              "__device__ __forceinline__ float fp8_to_float(__nv_fp8_e4m3 v) { return float(v); }\n\n"
              "}  // namespace vllm\n"),
    ("cuda-headers", "half_without_any_header", f"{CUDA}.json"):
        _edit(CUDA, "source_code", "#include <cuda_bf16.h>\n", ""),
    ("triton-imports", "vllm_triton_utils", f"{TRITON}.json"):
        _edit(TRITON, "source_code", "import triton\nimport triton.language as tl\n",
              "from vllm.triton_utils import tl, triton\n"),
    ("triton-imports", "unused_torch", f"{TRITON}.json"):
        _edit(TRITON, "source_code", "import triton\n", "import torch\nimport triton\n"),
    ("triton-imports", "numpy", f"{TRITON}.json"):
        _edit(TRITON, "source_code", "import triton\n", "import numpy as np\nimport triton\n"),
    ("invocation-parses", "triton_syntax_error", f"{TRITON}.json"):
        _edit(TRITON, "invocation_example", "grid = (num_tokens,)", "grid = (num_tokens,"),
    ("invocation-parses", "cuda_without_include", f"{CUDA}.json"):
        _edit(CUDA, "invocation_example", '#include "silu_and_mul_kernel.cu"\n', ""),
    ("invocation-parses", "cuda_without_main", f"{CUDA}.json"):
        _edit(CUDA, "invocation_example", "int main() {", "int run_example() {"),
    ("model-header", "triton_without_url", f"{TRITON}.json"):
        _edit(TRITON, "invocation_example",
              "# sources: https://huggingface.co/Qwen/Qwen3-8B/blob/main/config.json\n", ""),
    ("model-header", "cuda_without_url", f"{CUDA}.json"):
        _edit(CUDA, "invocation_example", "// MODEL_NAME: none", "// MODEL_NAME: meta-llama/Llama-3.1-8B"),
    ("invocation-launch", "triton_no_launch", f"{TRITON}.json"):
        _edit(TRITON, "invocation_example", "rms_norm_kernel[grid](", "print(grid, "),
    ("invocation-launch", "triton_launches_another_kernel", f"{TRITON}.json"):
        _edit(TRITON, "invocation_example", "rms_norm_kernel", "layer_norm_kernel", -1),
    ("invocation-launch", "cuda_launches_another_kernel", f"{CUDA}.json"):
        _edit(CUDA, "invocation_example", "vllm::silu_and_mul_kernel<__nv_bfloat16><<<grid, block, 0>>>(out, input, d)",
              "fill_zero<<<grid, block, 0>>>(out, d)"),
    ("invocation-launch", "cuda_no_launch", f"{CUDA}.json"):
        _edit(CUDA, "invocation_example", "<<<grid, block, 0>>>", ""),
}


def build_all(root: Path) -> dict[Path, bytes]:
    """Every data file, relative to ``root``."""
    out = {root / "good" / f"{stem}.json": dumps_artifact(obj) for stem, obj in good().items()}
    for (rule, case, fname), build in BAD.items():
        out[root / "bad" / rule / case / fname] = build()
    return out


def bad_cases(root: Path = DATA) -> list[tuple[str, Path]]:
    """(rule, file) for each committed bad case."""
    return [(p.parent.parent.name, p) for p in sorted((root / "bad").glob("*/*/*.json"))]
