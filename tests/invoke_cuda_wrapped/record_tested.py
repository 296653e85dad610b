"""Re-record the test captures under ``data/tested_*.json`` (runs vLLM's tests in the worker; not a test).

    HF_HUB_OFFLINE=1 .venv/bin/python tests/invoke_cuda_wrapped/record_tested.py

Each file is the first successful worker answer (:meth:`vkc.testtrace.Capture.to_json`) for one CUDA
kernel without a recipe, at the default model's sizes, as ``vkc collect`` asks for it.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

HERE = Path(__file__).parent / "data"
KERNELS = {
    "concat_mla_q": "csrc/concat_mla_q.cuh:ConcatMLAQKernel",
    "vocab_parallel_embedding": "csrc/vocab_parallel_embedding_kernels.cu:vocab_parallel_embedding_kernel",
}


def main() -> int:
    from vkc.invoke.triton.testtraced.attempt import model_dims
    from vkc.modelcfg import load_model
    from vkc.source import resolve_source
    from vkc.testtrace import op_captures

    tree = resolve_source()
    got = op_captures(tree, list(KERNELS.values()), model_dims(load_model("meta-llama/Llama-3.1-8B-Instruct")))
    for name, kernel in KERNELS.items():
        cap = next(c for c in got[kernel] if c.ok and c.op_call is not None)
        (HERE / f"tested_{name}.json").write_text(json.dumps(cap.to_json(), indent=1, sort_keys=True) + "\n")
        print(name, cap.test_id)
    return 0


if __name__ == "__main__":
    sys.exit(main())
