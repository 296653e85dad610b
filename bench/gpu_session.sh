#!/usr/bin/env bash
# One device call of the GPU issue: `bash bench/gpu_session.sh allused|tree|new|sized|bench` on the H200 machine
# (wheels the machine lacks are carried in .whl/, artifacts in gpu_in/; results go to $OUT).
set -uo pipefail
pip install -q --no-deps --target /tmp/site .whl/*.whl >/dev/null 2>&1
export PYTHONPATH=/tmp/site:$PWD/src HF_HUB_OFFLINE=1 VKC_MODEL_TRACE=0 VKC_TEST_TRACE=0
OUT=${OUT:-/tmp/out}
case "$1" in
  allused)
    # `allused [WORKLOAD]`: the --all-used folders gpu_in/au_<model>_<workload>/ (all, or one workload's)
    tag=${2:-all}
    dirs=$(ls -d gpu_in/au_*/ | grep -e "_${2:-}" )
    timeout 560 python -m vkc verify --run --sanitizer --jobs 16 --results "$OUT/verify_run_allused_${tag}_h200.json" $dirs \
      > "$OUT/verify_run_allused_${tag}_h200.log" 2>&1
    tail -4 "$OUT/verify_run_allused_${tag}_h200.log" ;;
  tree)
    # the whole tree's model-accurate and vllm-sized artifacts (collect --all, no model; gpu_in/tree/<mode>/):
    # FULL, then SMALL under memcheck, 4 at a time (correctness only: FULL recipe examples size their
    # live set to ~20% of GPU memory, so 4 fit); then every artifact that failed once more, alone
    timeout ${TREE_TIMEOUT:-400} python -m vkc verify --run --sanitizer --jobs 16 --run-jobs ${RUN_JOBS:-4} --results "$OUT/verify_run_tree_h200.json" \
      gpu_in/tree > "$OUT/verify_run_tree_h200.log" 2>&1
    tail -2 "$OUT/verify_run_tree_h200.log"
    python - "$OUT/verify_run_tree_h200.json" > /tmp/failed.txt <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
for a in d["artifacts"]:
    if any(not c["ok"] for c in a["checks"]):
        print(a["artifact"])
PY
    if [ -s /tmp/failed.txt ]; then
      timeout ${ALONE_TIMEOUT:-160} python -m vkc verify --run --sanitizer --jobs 16 --results "$OUT/verify_run_tree_alone_h200.json" \
        $(cat /tmp/failed.txt) > "$OUT/verify_run_tree_alone_h200.log" 2>&1
      tail -2 "$OUT/verify_run_tree_alone_h200.log"
    fi ;;
  new)
    # artifacts new or changed since the last GPU run (gpu_in/new): FULL, then SMALL under memcheck
    timeout 570 python -m vkc verify --run --sanitizer --jobs 16 --results "$OUT/verify_run_new_h200.json" gpu_in/new \
      > "$OUT/verify_run_new_h200.log" 2>&1
    tail -4 "$OUT/verify_run_new_h200.log" ;;
  sized)
    # the whole tree's vllm-sized artifacts (a vLLM test's own launch at its own sizes): FULL, then SMALL under memcheck
    timeout 570 python -m vkc verify --run --sanitizer --jobs 16 --results "$OUT/verify_run_sized_h200.json" gpu_in/sized \
      > "$OUT/verify_run_sized_h200.log" 2>&1
    tail -4 "$OUT/verify_run_sized_h200.log" ;;
  refs)
    # the artifacts that carry a reference (gpu_in/refs): the check at FULL too (VKC_CHECK=1), one at a time
    VKC_CHECK=1 timeout ${REFS_TIMEOUT:-200} python -m vkc verify --run --jobs 16 --results "$OUT/verify_run_refs_full_h200.json" \
      gpu_in/refs > "$OUT/verify_run_refs_full_h200.log" 2>&1
    tail -3 "$OUT/verify_run_refs_full_h200.log" ;;
  bench)
    [ "${2:-all}" = rest ] || python - > "$OUT/peaks_h200.txt" 2>&1 <<'PY'
import torch, time
x = torch.empty(4 * 2**30 // 2, dtype=torch.bfloat16, device="cuda"); y = torch.empty_like(x)
for _ in range(3): y.copy_(x)
torch.cuda.synchronize(); t = time.perf_counter(); n = 20
for _ in range(n): y.copy_(x)
torch.cuda.synchronize(); dt = (time.perf_counter() - t) / n
print(f"copy: {2 * x.numel() * 2 / dt / 1e12:.3f} TB/s (read+write of 4 GiB, torch copy_)")
a = torch.randn(8192, 8192, dtype=torch.bfloat16, device="cuda"); b = torch.randn_like(a)
for _ in range(3): a @ b
torch.cuda.synchronize(); t = time.perf_counter(); n = 50
for _ in range(n): a @ b
torch.cuda.synchronize(); dt = (time.perf_counter() - t) / n
print(f"bf16 matmul 8192^3: {2 * 8192**3 / dt / 1e12:.1f} TFLOP/s")
print(torch.cuda.get_device_name(), torch.__version__)
PY
    [ "${2:-all}" = rest ] || cat "$OUT/peaks_h200.txt"
    # the bench kernels at every one of the three bench models that applies (bench_set.py one
    # --every-model --dir gpu_in/bench3): one at a time, timed; BENCH_SUBSET: only these model folders
    timeout ${BENCH_TIMEOUT:-420} python -m vkc verify --run --jobs 16 --results "$OUT/verify_run_bench3_${2:-all}_h200.json" \
      ${BENCH_SUBSET:-gpu_in/bench3} > "$OUT/verify_run_bench3_${2:-all}_h200.log" 2>&1
    tail -3 "$OUT/verify_run_bench3_${2:-all}_h200.log"
    [ "${2:-all}" = rest ] || timeout 120 python -m pytest -q -m gpu tests/gpu -p no:cacheprovider 2>&1 | tail -3 ;;
esac
