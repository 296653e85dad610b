// vkc 0.1.0 -- invocation example: CUDA host program for one vLLM kernel
// vLLM: 0.33.0 (sdist vllm-0.33.0.tar.gz, sha256 f4c33c2503d52bb411146afa9618a4f48bed68912f617e6803ac8d76e4c74112)
// KERNEL: vllm::cross_device_reduce_1stage at csrc/custom_all_reduce.cuh:8
// WRAPPER: csrc/custom_all_reduce.cuh:288 (KL macro in CustomAllreduce::allreduce)
// MODEL_NAME: meta-llama/Llama-3.1-70B-Instruct
//   H_q=64 H_kv=8 Dh=128 hidden_size=8192 max_ctx=131072 dtype=bfloat16
//   intermediate_size=28672 num_experts=n/a top_k=n/a moe_intermediate_size=n/a kv_lora_rank=n/a qk_rope_head_dim=n/a rms_norm_eps=1e-05
//   flags: rope_scaling=llama3
//   warning: using vkc's bundled snapshot of meta-llama/Llama-3.1-70B-Instruct's config.json (offline); it may differ from the current hub file
// WORKLOAD: decode (inferred: csrc/custom_all_reduce.cuh:cross_device_reduce_1stage's wrapper runs decode and prefill; decode is its recipe's default)
// invocation: recipe (model-accurate): recipe allreduce: csrc/custom_all_reduce.cuh:288 (KL macro in CustomAllreduce::allreduce)
// INSTANTIATION: vllm::cross_device_reduce_1stage<nv_bfloat16, 2>
//   dispatch: CustomAllreduce::allreduce<nv_bfloat16> -> switch (world_size_) REDUCE_CASE(2|4|6|8) -> KL(ngpus, cross_device_reduce_1stage); the program instantiates ngpus = 2, 4, 6, 8 and picks the runtime world size (marker: the 2-GPU case)
// GRID: min(block_limit=36, (size/d + 511) / 512)  BLOCK: 512  SMEM: 0 bytes
// SIZING: num_tokens = largest num_tokens vLLM sends to the 1-stage kernel by default: bytes < max_size (8 MiB) at world size 2, bytes < 512 KiB at world size 4, < 256 KiB at 6 and 8 (REDUCE_CASE); FULL: ws2=511, ws4=31, ws6=15, ws8=15 tokens x 8192 x 2 B per rank (SMALL_SANITY=1: num_tokens=2)
// CONFIG: https://huggingface.co/meta-llama/Llama-3.1-70B-Instruct/blob/main/config.json
// CONFIG: vkc bundled snapshot snapshots/meta-llama__Llama-3.1-70B-Instruct.json
// COMMAND: vkc collect cross_device_reduce_1stage --model meta-llama/Llama-3.1-70B-Instruct
// BUILD: nvcc -std=c++17 -arch=sm_90 --expt-relaxed-constexpr --expt-extended-lambda -DENABLE_FP8 -I$(python -c 'import torch,os;print(os.path.join(os.path.dirname(torch.__file__),"include"))') -o cross_device_reduce_1stage cross_device_reduce_1stage_main.cu
// RUN: ./cross_device_reduce_1stage   (env: SMALL_SANITY=1 small sizes; VKC_WORLD_SIZE=2|4|6|8 ranks, default the largest that fits the visible GPUs; VKC_ITERS=<n>; exit code 2 with fewer than 2 GPUs)
// PRINTS: RESULT kernel=<name> model=<id> workload=<w> config=FULL|SMALL time_ms=<x> GB/s=<y>
// NOTE: multi-GPU: world size = VKC_WORLD_SIZE, else the largest of 2/4/6/8 <= visible GPUs (max 8); fewer than 2 GPUs: message on stderr, exit code 2, no launch
// NOTE: one process, one host thread looping over the GPUs; vLLM uses one process per GPU and CUDA IPC handles (cudaIpcGetMemHandle/cudaIpcOpenMemHandle). IPC handles cannot be opened in their own process, so each rank gets its peers' raw device pointers after cudaDeviceEnablePeerAccess (UVA) and RankData/RankSignals are built exactly as CustomAllreduce::register_buffer / the constructor do
// NOTE: buffers per rank: input (the registered buffer: vLLM copies inp into buffer_ptrs[rank] or uses a registered cuda-graph buffer), output, the meta buffer sizeof(vllm::Signal) + max_size zeroed (2-stage keeps its reduce-scatter partials after the Signal), one RankData
// NOTE: GB/s is NCCL's bus bandwidth for all-reduce: 2*(n-1)/n * bytes / time, bytes = one rank's input; time_ms = slowest rank's mean per launch
// NOTE: with symmetric memory enabled on sm_90 vLLM lowers max_size to 512 KiB (ws 6) / 256 KiB (ws 8); the program keeps the constructor default 8 MiB
#include "cross_device_reduce_1stage.cu"

// VKC_INSTANTIATE: vllm::cross_device_reduce_1stage<nv_bfloat16, 2>

#include <cuda_runtime.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <vector>

#define VKC_CHECK(call)                                                     \
  do {                                                                      \
    cudaError_t vkc_err_ = (call);                                          \
    if (vkc_err_ != cudaSuccess) {                                          \
      std::fprintf(stderr, "CUDA error %s at %s:%d: %s\n",                  \
                   cudaGetErrorName(vkc_err_), __FILE__, __LINE__,          \
                   cudaGetErrorString(vkc_err_));                           \
      std::exit(1);                                                         \
    }                                                                       \
  } while (0)

#define VKC_REQUIRE(cond, msg)                                              \
  do {                                                                      \
    if (!(cond)) {                                                          \
      std::fprintf(stderr, "vkc: check failed: %s (%s)\n", msg, #cond);     \
      std::exit(1);                                                         \
    }                                                                       \
  } while (0)

using vllm::packed_t;

// ---- model constants and wrapper bindings
// dispatch: csrc/custom_all_reduce.cu:106 all_reduce() case bfloat16
using T = nv_bfloat16;
// model: hidden_size (all-reduce of [num_tokens, hidden_size] activations)
const int hidden_size = 8192;
// binds vllm/distributed/device_communicators/custom_all_reduce.py:138: max_size=8192 * 1024,
// CustomAllreduce default; should_custom_ar() needs inp_size < max_size
const long long max_size = 8192LL * 1024;
// binds csrc/custom_collective_common.cuh:39: inline constexpr int defaultBlockLimit = 36;
// defaultBlockLimit (CUDA)
constexpr int block_limit = 36;
// binds csrc/custom_all_reduce.cuh:238: int threads = 512,
// allreduce() default
constexpr int threads = 512;

namespace vkc_host {

// Deterministic fills: a splitmix64 hash of (seed, index).
inline uint64_t mix(uint64_t x) {
  x += 0x9E3779B97F4A7C15ULL;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
  return x ^ (x >> 31);
}

inline float uniform(uint64_t seed, uint64_t i, float lo, float hi) {
  return lo + (hi - lo) * (float)(mix(seed * 0x100000001B3ULL + i) >> 40) * (1.0f / 16777216.0f);
}

inline bool env_flag(const char* name) {
  const char* v = std::getenv(name);
  return v != nullptr && v[0] != '\0' && std::strcmp(v, "0") != 0;
}

inline float to_float(float v) { return v; }
inline float to_float(half v) { return __half2float(v); }
inline float to_float(nv_bfloat16 v) { return __bfloat162float(v); }
template <typename X> X from_float(float v);
template <> inline float from_float<float>(float v) { return v; }
template <> inline half from_float<half>(float v) { return __float2half(v); }
template <> inline nv_bfloat16 from_float<nv_bfloat16>(float v) { return __float2bfloat16(v); }

// One rank of the all-reduce: what vLLM's CustomAllreduce holds for it.
struct Rank {
  int device = 0;
  cudaStream_t stream = nullptr;
  T* input = nullptr;              // the registered buffer (buffer_ptrs[rank] in vLLM)
  T* output = nullptr;             // out
  vllm::Signal* self_sg = nullptr; // meta buffer: sizeof(vllm::Signal) + max_size bytes, zeroed
  vllm::RankData* ptrs = nullptr;  // register_buffer(): RankData copied to the device (rank_data)
  cudaEvent_t start = nullptr, stop = nullptr;
};

// KL(ngpus, name) on every rank, in rank order, from this one host thread.  Each launch
// returns at once; the kernels meet at barrier_at_start through the Signal buffers.
template <int ngpus>
void launch_all(std::vector<Rank>& ranks, const vllm::RankSignals& sg, int blocks, int size) {
  for (int rank = 0; rank < ngpus; ++rank) {
    Rank& r = ranks[rank];
    VKC_CHECK(cudaSetDevice(r.device));
    vllm::RankData* ptrs = r.ptrs;
    vllm::Signal* self_sg = r.self_sg;
    T* output = r.output;
    vllm::cross_device_reduce_1stage<T, ngpus><<<blocks, threads, 0, r.stream>>>(ptrs, sg, self_sg, output, rank, size);
    VKC_CHECK(cudaGetLastError());
  }
}

// switch (world_size_) { REDUCE_CASE(2) REDUCE_CASE(4) REDUCE_CASE(6) REDUCE_CASE(8) }
void launch(int world_size, std::vector<Rank>& ranks, const vllm::RankSignals& sg, int blocks, int size) {
  switch (world_size) {
    case 2: launch_all<2>(ranks, sg, blocks, size); break;
    case 4: launch_all<4>(ranks, sg, blocks, size); break;
    case 6: launch_all<6>(ranks, sg, blocks, size); break;
    case 8: launch_all<8>(ranks, sg, blocks, size); break;
    default:
      std::fprintf(stderr, "vkc: custom allreduce only supports num gpus in (2,4,6,8), got %d\n", world_size);
      std::exit(1);
  }
}

// Wait for every rank's stream; a rank that never reaches the barrier must not hang the program.
void wait_all(std::vector<Rank>& ranks, double timeout_s) {
  const auto t0 = std::chrono::steady_clock::now();
  for (;;) {
    bool done = true;
    for (Rank& r : ranks) {
      VKC_CHECK(cudaSetDevice(r.device));
      cudaError_t e = cudaStreamQuery(r.stream);
      if (e == cudaErrorNotReady) {
        done = false;
      } else {
        VKC_CHECK(e);
      }
    }
    if (done) return;
    const double waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (waited > timeout_s) {
      std::fprintf(stderr, "vkc: the all-reduce did not finish within %.0f s: the ranks never met at the "
                   "kernel's barrier (is peer-to-peer access working?)\n", timeout_s);
      std::_Exit(1);
    }
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
}

}  // namespace vkc_host

int main() {
  const bool small_sanity = vkc_host::env_flag("SMALL_SANITY");

  // ---- GPUs: vLLM runs one rank per GPU of one host; fewer than 2 GPUs cannot run the kernel
  int device_count = 0;
  const cudaError_t count_err = cudaGetDeviceCount(&device_count);
  if (count_err != cudaSuccess) device_count = 0;
  if (device_count < 2) {
    std::fprintf(stderr, "vkc: cross_device_reduce_1stage is a multi-GPU kernel (vLLM custom all-reduce): it needs at "
                 "least 2 GPUs of one host with peer access; found %d%s%s. Nothing was launched.\n",
                 device_count, count_err != cudaSuccess ? " -- " : "",
                 count_err != cudaSuccess ? cudaGetErrorString(count_err) : "");
    return 2;
  }
  int world_size = 0;  // the largest size vLLM supports (2, 4, 6, 8) that fits the visible GPUs
  if (device_count >= 2) world_size = 2;
  if (device_count >= 4) world_size = 4;
  if (device_count >= 6) world_size = 6;
  if (device_count >= 8) world_size = 8;
  if (const char* ws_env = std::getenv("VKC_WORLD_SIZE"); ws_env != nullptr && ws_env[0] != '\0') {
    char* end = nullptr;
    const long v = std::strtol(ws_env, &end, 10);
    if (*end != '\0' || (v != 2 && v != 4 && v != 6 && v != 8)) {
      std::fprintf(stderr, "vkc: VKC_WORLD_SIZE=%s: custom all-reduce supports 2, 4, 6 or 8 GPUs\n", ws_env);
      return 1;
    }
    if (v > device_count) {
      std::fprintf(stderr, "vkc: VKC_WORLD_SIZE=%ld but only %d GPUs are visible. Nothing was launched.\n",
                   v, device_count);
      return 2;
    }
    world_size = (int)v;
  }
  // vLLM disables custom all-reduce without P2P (_can_p2p); the kernel reads peers' memory
  for (int i = 0; i < world_size; ++i) {
    for (int j = 0; j < world_size; ++j) {
      int ok = 1;
      if (i != j) VKC_CHECK(cudaDeviceCanAccessPeer(&ok, i, j));
      if (!ok) {
        std::fprintf(stderr, "vkc: GPU %d cannot access GPU %d's memory (no P2P); vLLM disables custom "
                     "all-reduce then. Nothing was launched.\n", i, j);
        return 2;
      }
    }
  }

  // ---- sizes: num_tokens = largest num_tokens vLLM sends to the 1-stage kernel by default: bytes < max_size (8 MiB) at world size 2, bytes < 512 KiB at world size 4, < 256 KiB at 6 and 8 (REDUCE_CASE); FULL: ws2=511, ws4=31, ws6=15, ws8=15 tokens x 8192 x 2 B per rank
  long long num_tokens = 2;
  if (!small_sanity) {
    long long limit = max_size;  // should_custom_ar(): inp_size < max_size
    // REDUCE_CASE: (world_size_ <= 4 && bytes < 512 * 1024) || (world_size_ <= 8 && bytes < 256 * 1024)
    if (world_size > 2) limit = world_size <= 4 ? 524288 : 262144;
    num_tokens = std::max<long long>(1, (limit - 1) / ((long long)hidden_size * (long long)sizeof(T)));
  }
  const long long numel = num_tokens * hidden_size;  // out.numel(): [num_tokens, hidden_size]
  VKC_REQUIRE(numel * (long long)sizeof(T) % 16 == 0, "should_custom_ar(): input bytes are a multiple of 16");
  VKC_REQUIRE(numel * (long long)sizeof(T) < max_size, "should_custom_ar(): inp_size < max_size");
  int size = (int)numel;

  // ---- launch configuration, as CustomAllreduce::allreduce computes it
  // from csrc/custom_all_reduce.cuh:239
  auto d = packed_t<T>::P::size;
  // from csrc/custom_all_reduce.cuh:266
  size /= d;
  // from csrc/custom_all_reduce.cuh:267
  auto bytes = size * sizeof(typename packed_t<T>::P);
  // from csrc/custom_all_reduce.cuh:268
  int blocks = std::min(block_limit, (size + threads - 1) / threads);
  VKC_REQUIRE(numel % d == 0, "custom allreduce requires input length to be a multiple of 16 / sizeof(T)");
  VKC_REQUIRE(block_limit <= vllm::kMaxBlocks, "max supported block limit is kMaxBlocks");
  {
    const bool default_1stage = world_size == 2 || (world_size <= 4 && bytes < 512 * 1024) ||
                                (world_size <= 8 && bytes < 256 * 1024);
    if (default_1stage != (1 == 1)) {
      std::fprintf(stderr, "vkc: note: at world size %d and %zu bytes vLLM's default algorithm picks "
                   "cross_device_reduce_%dstage; VLLM_CUSTOM_ALLREDUCE_ALGO=1stage forces this kernel\n",
                   world_size, (size_t)bytes, default_1stage ? 1 : 2);
    }
  }

  // ---- per rank: peer access, buffers, streams (vLLM: one process per GPU, buffers shared by IPC)
  std::vector<vkc_host::Rank> ranks(world_size);
  for (int rank = 0; rank < world_size; ++rank) {
    vkc_host::Rank& r = ranks[rank];
    r.device = rank;
    VKC_CHECK(cudaSetDevice(rank));
    for (int peer = 0; peer < world_size; ++peer) {
      if (peer == rank) continue;
      const cudaError_t e = cudaDeviceEnablePeerAccess(peer, 0);
      if (e == cudaErrorPeerAccessAlreadyEnabled) {
        (void)cudaGetLastError();
      } else {
        VKC_CHECK(e);
      }
    }
    VKC_CHECK(cudaStreamCreateWithFlags(&r.stream, cudaStreamNonBlocking));
    VKC_CHECK(cudaEventCreate(&r.start));
    VKC_CHECK(cudaEventCreate(&r.stop));
    VKC_CHECK(cudaMalloc(&r.input, (size_t)numel * sizeof(T)));
    VKC_CHECK(cudaMalloc(&r.output, (size_t)numel * sizeof(T)));
    // meta buffer: create_shared_buffer(ops.meta_size() + max_size), zeroed as allocate_shared_buffer_and_handle
    VKC_CHECK(cudaMalloc(&r.self_sg, sizeof(vllm::Signal) + (size_t)max_size));
    VKC_CHECK(cudaMemset(r.self_sg, 0, sizeof(vllm::Signal) + (size_t)max_size));
    VKC_CHECK(cudaMalloc(&r.ptrs, sizeof(vllm::RankData)));
    VKC_CHECK(cudaMemset(r.output, 0, (size_t)numel * sizeof(T)));
  }

  // ---- inputs: rank r holds uniform [-1, 1) values of seed r + 1; the host sums them in float
  std::vector<float> ref((size_t)numel, 0.0f);
  {
    std::vector<T> h((size_t)numel);
    for (int rank = 0; rank < world_size; ++rank) {
      for (long long i = 0; i < numel; ++i) {
        h[(size_t)i] = vkc_host::from_float<T>(vkc_host::uniform((uint64_t)rank + 1, (uint64_t)i, -1.0f, 1.0f));
        ref[(size_t)i] += vkc_host::to_float(h[(size_t)i]);
      }
      VKC_CHECK(cudaSetDevice(rank));
      VKC_CHECK(cudaMemcpy(ranks[rank].input, h.data(), (size_t)numel * sizeof(T), cudaMemcpyHostToDevice));
    }
  }

  // ---- CustomAllreduce(signals, rank_data, ...): sg_.signals[i] = signals[i]; self_sg_ = signals[rank]
  vllm::RankSignals sg{};
  for (int i = 0; i < world_size; ++i) sg.signals[i] = ranks[i].self_sg;
  // ---- register_buffer(ptrs): RankData data; data.ptrs[i] = ptrs[i]; cudaMemcpy(d_data, &data, ...)
  vllm::RankData data{};
  for (int i = 0; i < world_size; ++i) data.ptrs[i] = ranks[i].input;
  for (int rank = 0; rank < world_size; ++rank) {
    VKC_CHECK(cudaSetDevice(rank));
    VKC_CHECK(cudaMemcpy(ranks[rank].ptrs, &data, sizeof(vllm::RankData), cudaMemcpyHostToDevice));
    VKC_CHECK(cudaDeviceSynchronize());
  }
  const double timeout_s = 120.0;

  // ---- first launch on every rank, checked against the host sum
  vkc_host::launch(world_size, ranks, sg, blocks, size);
  vkc_host::wait_all(ranks, timeout_s);
  {
    std::vector<T> out((size_t)numel);
    double max_err = 0.0;
    for (int rank = 0; rank < world_size; ++rank) {
      VKC_CHECK(cudaSetDevice(rank));
      VKC_CHECK(cudaMemcpy(out.data(), ranks[rank].output, (size_t)numel * sizeof(T), cudaMemcpyDeviceToHost));
      long long bad = 0, first = -1;
      for (long long i = 0; i < numel; ++i) {
        const float want = vkc_host::to_float(vkc_host::from_float<T>(ref[(size_t)i]));
        const float got = vkc_host::to_float(out[(size_t)i]);
        const double err = std::fabs((double)got - (double)want);
        max_err = std::max(max_err, err);
        // bf16 tolerance: fp32 accumulation in another order, one rounding to T
        if (!(err <= 1e-2 + 1e-2 * std::fabs((double)want))) {
          if (first < 0) first = i;
          ++bad;
        }
      }
      if (bad != 0) {
        std::fprintf(stderr, "vkc: rank %d: %lld of %lld elements differ from the host sum (first at %lld: got "
                     "%g, want %g)\n", rank, bad, numel, first,
                     (double)vkc_host::to_float(out[(size_t)first]), (double)ref[(size_t)first]);
        return 1;
      }
    }
    std::fprintf(stderr, "vkc: check passed: world_size=%d num_tokens=%lld hidden_size=%d blocks=%d threads=%d; "
                 "every rank holds the sum of %d inputs (max |err| %.3g)\n",
                 world_size, num_tokens, hidden_size, blocks, threads, world_size, max_err);
  }

  // ---- timing: every rank's stream brackets the launches with events; the slowest rank counts
  // VKC_ITERS=N: N timed launches and no warm-up (e.g. 1 under compute-sanitizer)
  const char* iters_env = std::getenv("VKC_ITERS");
  const int iters = iters_env ? std::max(1, std::atoi(iters_env)) : (small_sanity ? 5 : 20);
  const int warmup = iters_env ? 0 : 3;
  for (int i = 0; i < warmup; ++i) vkc_host::launch(world_size, ranks, sg, blocks, size);
  for (vkc_host::Rank& r : ranks) {
    VKC_CHECK(cudaSetDevice(r.device));
    VKC_CHECK(cudaEventRecord(r.start, r.stream));
  }
  for (int i = 0; i < iters; ++i) vkc_host::launch(world_size, ranks, sg, blocks, size);
  for (vkc_host::Rank& r : ranks) {
    VKC_CHECK(cudaSetDevice(r.device));
    VKC_CHECK(cudaEventRecord(r.stop, r.stream));
  }
  vkc_host::wait_all(ranks, timeout_s);
  float worst_ms = 0.0f;
  for (vkc_host::Rank& r : ranks) {
    float ms = 0.0f;
    VKC_CHECK(cudaSetDevice(r.device));
    VKC_CHECK(cudaEventElapsedTime(&ms, r.start, r.stop));
    worst_ms = std::max(worst_ms, ms);
  }
  const double time_ms = (double)worst_ms / iters;
  // NCCL's bus bandwidth for all-reduce: algbw = bytes / time, busbw = algbw * 2 * (n - 1) / n
  const double data_bytes = (double)numel * sizeof(T);
  const double busbw = data_bytes / (time_ms * 1e-3) * (2.0 * (world_size - 1) / world_size) / 1e9;

  std::printf("RESULT kernel=%s model=%s workload=%s config=%s time_ms=%.6f GB/s=%.3f\n",
              "cross_device_reduce_1stage", "meta-llama/Llama-3.1-70B-Instruct", "decode",
              small_sanity ? "SMALL" : "FULL", time_ms, busbw);

  for (vkc_host::Rank& r : ranks) {
    VKC_CHECK(cudaSetDevice(r.device));
    VKC_CHECK(cudaFree(r.input));
    VKC_CHECK(cudaFree(r.output));
    VKC_CHECK(cudaFree(r.self_sg));
    VKC_CHECK(cudaFree(r.ptrs));
    VKC_CHECK(cudaEventDestroy(r.start));
    VKC_CHECK(cudaEventDestroy(r.stop));
    VKC_CHECK(cudaStreamDestroy(r.stream));
  }
  return 0;
}
