"""Re-record the op-job captures under ``data/`` (runs vLLM's tests in the worker; not a test).

    HF_HUB_OFFLINE=1 .venv/bin/python tests/testtrace_cuda/record_captures.py

Each file is one worker answer (:meth:`vkc.testtrace.Capture.to_json`) at the default model's
dimensions (Llama-3.1-8B-Instruct), taken from the vkc cache when it holds it.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

HERE = Path(__file__).parent / "data"
DIMS = {"dtype": "bfloat16", "h_kv": 8, "h_q": 32, "head_dim": 128, "hidden": 4096, "intermediate": 14336,
        "vocab": 128256}
# name -> (test file, test function, kernel, ops)
JOBS = {
    "rms_norm": ("tests/kernels/core/test_layernorm.py", "test_rms_norm",
                 "csrc/layernorm_kernels.cu:rms_norm_kernel", ("_C::rms_norm",)),
    "act_and_mul": ("tests/kernels/core/test_activation.py", "test_act_and_mul",
                    "csrc/activation_kernels.cu:act_and_mul_kernel",
                    ("_C::gelu_and_mul", "_C::gelu_tanh_and_mul", "_C::mul_and_silu", "_C::silu_and_mul",
                     "_C::silu_and_mul_with_clamp")),
    "reshape_and_cache_flash": ("tests/kernels/attention/test_cache.py", "test_reshape_and_cache_flash",
                                "csrc/cache_kernels.cu:reshape_and_cache_flash_kernel",
                                ("_C_cache_ops::reshape_and_cache_flash",)),
    "noop_input": ("tests/kernels/moe/test_cutlass_moe.py", "test_cutlass_moe_permutation_maps_padding_to_zero",
                   "csrc/moe/moe_permute_unpermute_op.cu:shuffleInputRowsKernel", ("_moe_C::shuffle_rows",)),
    "failed": ("tests/kernels/quantization/test_cpu_fp8_quant.py", "test_dynamic_per_token_fp8_quant",
               "csrc/quantization/w8a8/fp8/common.cu:scaled_fp8_quant_kernel_strided_dynamic",
               ("_C::dynamic_scaled_fp8_quant",)),
}


def main(argv: list[str]) -> int:
    from vkc.source import resolve_source
    from vkc.testtrace import TestJob, VllmTest, capture_tests

    extra = json.loads(argv[0]) if argv else {}          # more: {"name": [file, function, kernel, [ops]]}
    jobs = {**JOBS, **{k: (f, fn, kn, tuple(ops)) for k, (f, fn, kn, ops) in extra.items()}}
    tree = resolve_source()
    todo = [TestJob(VllmTest(f, fn, 1), kernel, None, DIMS, ops=ops) for f, fn, kernel, ops in jobs.values()]
    HERE.mkdir(exist_ok=True)
    for name, cap in zip(jobs, capture_tests(tree, todo)):
        (HERE / f"{name}.json").write_text(json.dumps(cap.to_json(), indent=1, sort_keys=True) + "\n")
        print(name, cap.ok, cap.test_id, cap.reason or "")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
