// vkc 0.1.0 -- invocation example: CUDA host program for one vLLM kernel
// vLLM: 0.33.0 (sdist vllm-0.33.0.tar.gz, sha256 f4c33c2503d52bb411146afa9618a4f48bed68912f617e6803ac8d76e4c74112)
// KERNEL: vllm::moe::grouped_topk_fused_small_expert_count_kernel at csrc/moe/grouped_topk_kernels.cu:639
// WRAPPER: csrc/moe/grouped_topk_kernels.cu:1280 (invokeNoAuxTc, from grouped_topk at csrc/moe/grouped_topk_kernels.cu:1403)
// MODEL_NAME: deepseek-ai/DeepSeek-V3
//   H_q=128 H_kv=128 Dh=192 hidden_size=7168 max_ctx=163840 dtype=bfloat16
//   intermediate_size=18432 num_experts=256 top_k=8 moe_intermediate_size=2048 kv_lora_rank=512 qk_rope_head_dim=64 rms_norm_eps=1e-06
//   flags: rope_scaling=yarn, mla, moe=256x top8
//   warning: using vkc's bundled snapshot of deepseek-ai/DeepSeek-V3's config.json (offline); it may differ from the current hub file
//   warning: weights are quantized (quantization_config.quant_method=fp8); dtype is the unquantized activation dtype
// WORKLOAD: decode (given)
// invocation: recipe (model-accurate): recipe moe_grouped: csrc/moe/grouped_topk_kernels.cu:1280 (invokeNoAuxTc, from grouped_topk at csrc/moe/grouped_topk_kernels.cu:1403)
// INSTANTIATION: vllm::moe::grouped_topk_fused_small_expert_count_kernel<__nv_bfloat16, float, int32_t, vllm::moe::SCORING_SIGMOID, 256, true>
//   dispatch: grouped_topk: scores bfloat16 -> T=__nv_bfloat16, bias float32 -> BiasT=float, IdxT=int32_t, scoring_func=sigmoid -> vllm::moe::SCORING_SIGMOID; vLLM's invokeNoAuxTc path for E=256, n_group=8, topk_group=4, top_k=8: grouped_topk_fused_small_expert_count_kernel<..., 256, true> (is_multi_group) for these sizes
// GRID: num_tokens  BLOCK: NumDeepseekExperts (256)  SMEM: 0 bytes
// SIZING: num_tokens_ll fills ~20% of free GPU memory clamped to [2 GiB, 8 GiB] (SMALL_SANITY=1: 8); router scores [T, E] + topk values/indices [T, k]
// CONFIG: https://huggingface.co/deepseek-ai/DeepSeek-V3/blob/main/config.json
// CONFIG: vkc bundled snapshot snapshots/deepseek-ai__DeepSeek-V3.json
// COMMAND: vkc grouped_topk_fused_small_expert_count_kernel --model deepseek-ai/DeepSeek-V3 --workload decode
// BUILD: nvcc -std=c++17 -arch=sm_90 --expt-relaxed-constexpr --expt-extended-lambda -DENABLE_FP8 -I$(python -c 'import torch,os;print(os.path.join(os.path.dirname(torch.__file__),"include"))') -o grouped_topk_fused_small_expert_count_kernel grouped_topk_fused_small_expert_count_kernel_main.cu
// RUN: ./grouped_topk_fused_small_expert_count_kernel   (env: SMALL_SANITY=1 small shapes; VKC_DUMP_DIR=<dir> dumps buffers + manifest.txt)
// PRINTS: RESULT kernel=<name> model=<id> workload=<w> config=FULL|SMALL time_ms=<x> GB/s=<y>
// NOTE: vLLM launches with cudaLaunchKernelEx + programmatic stream serialization (PDL when num_tokens <= 16); the plain <<<>>> launch has the same grid/block/smem/arguments
#include "grouped_topk_fused_small_expert_count_kernel.cu"

// VKC_INSTANTIATE: vllm::moe::grouped_topk_fused_small_expert_count_kernel<__nv_bfloat16, float, int32_t, vllm::moe::SCORING_SIGMOID, 256, true>
#define VKC_KERNEL vllm::moe::grouped_topk_fused_small_expert_count_kernel<__nv_bfloat16, float, int32_t, vllm::moe::SCORING_SIGMOID, 256, true>

#include <cuda_runtime.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <numeric>
#include <string>
#include <vector>

// Macros the copied wrapper code uses, as vLLM defines them for CUDA builds.
#ifndef WARP_SIZE
#define WARP_SIZE 32  // csrc/core/cuda_compat.h
#endif
#ifndef CEILDIV
#define CEILDIV(x, y) (((x) + (y) - 1) / (y))  // csrc/moe/moe_align_sum_kernels.cu
#endif

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

namespace vkc_host {

// Deterministic fills: a splitmix64 hash of (seed, index).
__host__ __device__ inline uint64_t mix(uint64_t x) {
  x += 0x9E3779B97F4A7C15ULL;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
  return x ^ (x >> 31);
}

template <typename T>
__global__ void fill_uniform(T* p, size_t n, uint64_t seed, float lo, float hi) {
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
       i += (size_t)gridDim.x * blockDim.x) {
    float u = (float)(mix(seed * 0x100000001B3ULL + i) >> 40) * (1.0f / 16777216.0f);
    p[i] = static_cast<T>(lo + (hi - lo) * u);
  }
}

template <typename T>
__global__ void fill_randint(T* p, size_t n, uint64_t seed, long long lo, long long hi) {
  const unsigned long long span = (unsigned long long)(hi - lo);
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
       i += (size_t)gridDim.x * blockDim.x) {
    p[i] = static_cast<T>(lo + (long long)(mix(seed * 0x100000001B3ULL + i) % span));
  }
}

template <typename T>
__global__ void fill_affine(T* p, size_t n, long long mul, long long add, long long mod) {
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
       i += (size_t)gridDim.x * blockDim.x) {
    p[i] = static_cast<T>(((long long)i * mul + add) % mod);
  }
}

template <typename T>
__global__ void fill_const(T* p, size_t n, float v) {
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
       i += (size_t)gridDim.x * blockDim.x) {
    p[i] = static_cast<T>(v);
  }
}

// Host-side deterministic generator for host-filled buffers.
struct Rng {
  uint64_t state;
  explicit Rng(uint64_t seed) : state(seed) {}
  uint64_t next() { return mix(state++); }
  long long randint(long long lo, long long hi) {
    return lo + (long long)(next() % (unsigned long long)(hi - lo));
  }
  float uniform(float lo, float hi) {
    return lo + (hi - lo) * (float)(next() >> 40) * (1.0f / 16777216.0f);
  }
};

inline unsigned fill_blocks(size_t n) {
  size_t b = (n + 255) / 256;
  return (unsigned)std::max<size_t>(1, std::min<size_t>(b, 65535));
}

inline bool env_flag(const char* name) {
  const char* v = std::getenv(name);
  return v != nullptr && v[0] != '\0' && std::strcmp(v, "0") != 0;
}

template <typename T>
void dump(const char* dir, const char* name, const char* phase, const T* dptr, size_t n) {
  std::vector<unsigned char> h(n * sizeof(T));
  VKC_CHECK(cudaMemcpy(h.data(), dptr, h.size(), cudaMemcpyDeviceToHost));
  std::string path = std::string(dir) + "/" + name + "." + phase + ".bin";
  FILE* f = std::fopen(path.c_str(), "wb");
  VKC_REQUIRE(f != nullptr, "cannot open a file in VKC_DUMP_DIR");
  VKC_REQUIRE(std::fwrite(h.data(), 1, h.size(), f) == h.size(), "short write");
  std::fclose(f);
}

}  // namespace vkc_host

int main() {
  const bool small_sanity = vkc_host::env_flag("SMALL_SANITY");
  const char* dump_dir = std::getenv("VKC_DUMP_DIR");
  cudaStream_t stream;
  VKC_CHECK(cudaStreamCreate(&stream));

  // ---- model constants and wrapper bindings
  // model: n_routed_experts
  // replaces csrc/moe/grouped_topk_kernels.cu:1411: const int64_t num_experts = scores.size(1);
  const int64_t num_experts = 256;
  // model: config.json n_group / topk_group
  const int64_t n_group = 8;
  // model: config.json n_group / topk_group
  const int64_t topk_group = 4;
  // model: num_experts_per_tok
  const int64_t topk = 8;
  // model: norm_topk_prob
  const bool renormalize = true;
  // vkc: DeepseekV2MoE passes apply_routed_scale_to_output=True on CUDA
  // the router gets 1.0; routed_scaling_factor is applied to the MoE output
  const double routed_scaling_factor = 1.0;
  // dispatch: scores bfloat16 (router logits in the model dtype) -> __nv_bfloat16
  using T = __nv_bfloat16;
  // dispatch: e_score_correction_bias is float32 -> float
  using BiasT = float;
  // dispatch: LAUNCH_KERNEL(T, int32_t)
  using IdxT = int32_t;

  // ---- live-set sizing: ~20% of free memory clamped to [2 GiB, 8 GiB]
  size_t free_bytes = 0, total_bytes = 0;
  VKC_CHECK(cudaMemGetInfo(&free_bytes, &total_bytes));
  const size_t budget_bytes =
      std::min<size_t>(std::max<size_t>(free_bytes / 5, 2ULL << 30), 8ULL << 30);
  // router scores [T, E] + topk values/indices [T, k]
  const size_t vkc_bytes_per_unit = (size_t)((size_t)num_experts * sizeof(T) + (size_t)topk * 8);
  const size_t vkc_fixed_bytes = (size_t)((size_t)num_experts * 4);
  long long num_tokens_ll = 8;
  if (!small_sanity) {
    long long fit = budget_bytes > vkc_fixed_bytes
                        ? (long long)((budget_bytes - vkc_fixed_bytes) / std::max<size_t>(vkc_bytes_per_unit, 1))
                        : 0;
    fit = std::min<long long>(fit, (long long)(1024));
    fit = fit / 1 * 1;
    num_tokens_ll = std::max<long long>(fit, 1);
  }

  // ---- sizes that follow from num_tokens_ll
  // vkc: one router row per token
  const int64_t num_tokens = num_tokens_ll;
  // from csrc/moe/grouped_topk_kernels.cu:1308
  int64_t const experts_per_group = num_experts / n_group;

  // ---- device buffers (deterministic, valid contents)
  // scores: T [T, E] raw router logits; uniform [-4.0f, 4.0f)
  const size_t n_scores = (size_t)((size_t)num_tokens * num_experts);
  T* scores = nullptr;
  VKC_CHECK(cudaMalloc(&scores, std::max<size_t>(n_scores, 1) * sizeof(T)));
  vkc_host::fill_uniform<<<vkc_host::fill_blocks(n_scores), 256, 0, stream>>>(scores, n_scores, 122697566ULL, -4.0f, 4.0f);
  VKC_CHECK(cudaGetLastError());
  // bias: BiasT [E] e_score_correction_bias; uniform [-0.05f, 0.05f)
  const size_t n_bias = (size_t)(num_experts);
  BiasT* bias = nullptr;
  VKC_CHECK(cudaMalloc(&bias, std::max<size_t>(n_bias, 1) * sizeof(BiasT)));
  vkc_host::fill_uniform<<<vkc_host::fill_blocks(n_bias), 256, 0, stream>>>(bias, n_bias, 1116170843ULL, -0.05f, 0.05f);
  VKC_CHECK(cudaGetLastError());
  // topk_values: float [T, k] fp32; zeros
  const size_t n_topk_values = (size_t)((size_t)num_tokens * topk);
  float* topk_values = nullptr;
  VKC_CHECK(cudaMalloc(&topk_values, std::max<size_t>(n_topk_values, 1) * sizeof(float)));
  VKC_CHECK(cudaMemsetAsync(topk_values, 0, n_topk_values * sizeof(float), stream));
  VKC_CHECK(cudaGetLastError());
  // topk_indices: IdxT [T, k] int32; zeros
  const size_t n_topk_indices = (size_t)((size_t)num_tokens * topk);
  IdxT* topk_indices = nullptr;
  VKC_CHECK(cudaMalloc(&topk_indices, std::max<size_t>(n_topk_indices, 1) * sizeof(IdxT)));
  VKC_CHECK(cudaMemsetAsync(topk_indices, 0, n_topk_indices * sizeof(IdxT), stream));
  VKC_CHECK(cudaGetLastError());
  VKC_CHECK(cudaStreamSynchronize(stream));

  // ---- launch configuration, as the wrapper computes it
  // binds csrc/moe/grouped_topk_kernels.cu:1319: int num_threads = NumDeepseekExperts;
  // NumDeepseekExperts = 256 (csrc/moe/grouped_topk_kernels.cu); multi-group: no single-group case
  const int num_threads = 256;
  // ---- runtime checks of the chosen instantiation against the wrapper's logic
  VKC_REQUIRE(num_experts % n_group == 0, "num_experts should be divisible by n_group");
  VKC_REQUIRE(n_group <= 32, "n_group should be smaller than or equal to 32 for now");
  VKC_REQUIRE(topk <= 32, "topk should be smaller than or equal to 32 for now");
  VKC_REQUIRE(topk_group <= n_group, "topk_group must be <= n_group");
  VKC_REQUIRE(topk <= topk_group * (num_experts / n_group), "topk must be <= topk_group * (num_experts / n_group)");
  VKC_REQUIRE(n_group > 1 && num_experts <= 256 && experts_per_group <= 32 && experts_per_group * topk_group <= 128 && topk <= 8 && topk_group <= 4, "invokeNoAuxTc's is_multi_group holds");
  const dim3 vkc_grid = dim3(static_cast<uint32_t>(num_tokens));
  const dim3 vkc_block = dim3(num_threads);
  const size_t vkc_smem = (size_t)(0);

  if (dump_dir != nullptr) {
    vkc_host::dump(dump_dir, "scores", "in", scores, n_scores);
    vkc_host::dump(dump_dir, "bias", "in", bias, n_bias);
    vkc_host::dump(dump_dir, "topk_values", "in", topk_values, n_topk_values);
    vkc_host::dump(dump_dir, "topk_indices", "in", topk_indices, n_topk_indices);
  }

  // ---- first launch, checked
  VKC_KERNEL<<<vkc_grid, vkc_block, vkc_smem, stream>>>(
      scores,
      topk_values,
      topk_indices,
      bias,
      num_tokens,
      n_group,
      topk_group,
      topk,
      num_experts,
      experts_per_group,
      renormalize,
      routed_scaling_factor);
  VKC_CHECK(cudaGetLastError());
  VKC_CHECK(cudaStreamSynchronize(stream));

  if (dump_dir != nullptr) {
    vkc_host::dump(dump_dir, "topk_values", "out", topk_values, n_topk_values);
    vkc_host::dump(dump_dir, "topk_indices", "out", topk_indices, n_topk_indices);
    std::string mpath = std::string(dump_dir) + "/manifest.txt";
    FILE* mf = std::fopen(mpath.c_str(), "w");
    VKC_REQUIRE(mf != nullptr, "cannot write VKC_DUMP_DIR/manifest.txt");
    std::fprintf(mf, "scale num_tokens_ll %lld\n", (long long)num_tokens_ll);
    std::fprintf(mf, "buffer scores in %zu %zu T\n", sizeof(T), n_scores);
    std::fprintf(mf, "buffer bias in %zu %zu BiasT\n", sizeof(BiasT), n_bias);
    std::fprintf(mf, "buffer topk_values out %zu %zu float\n", sizeof(float), n_topk_values);
    std::fprintf(mf, "buffer topk_indices out %zu %zu IdxT\n", sizeof(IdxT), n_topk_indices);
    std::fclose(mf);
  }

  // ---- timing (as vLLM's benchmarks/kernels record it): fixed warm-up and repetitions, the L2
  // cache flushed before every timed repetition (a write of twice the device's L2), one event pair
  // per repetition, the median; no CUDA graphs.  VKC_ITERS=N: N repetitions and no warm-up (e.g. 1
  // under compute-sanitizer).
  const char* iters_env = std::getenv("VKC_ITERS");
  const int iters = iters_env ? std::max(1, std::atoi(iters_env)) : (small_sanity ? 5 : 100);
  const int warmup = iters_env ? 0 : (small_sanity ? 1 : 10);
  int vkc_dev = 0;
  VKC_CHECK(cudaGetDevice(&vkc_dev));
  cudaDeviceProp vkc_prop;
  VKC_CHECK(cudaGetDeviceProperties(&vkc_prop, vkc_dev));
  std::string vkc_gpu(vkc_prop.name);
  std::replace(vkc_gpu.begin(), vkc_gpu.end(), ' ', '_');
  const size_t flush_bytes = 2 * (size_t)std::max(vkc_prop.l2CacheSize, 1 << 20);
  void* vkc_flush = nullptr;
  VKC_CHECK(cudaMalloc(&vkc_flush, flush_bytes));
  for (int i = 0; i < warmup; ++i) {
    VKC_KERNEL<<<vkc_grid, vkc_block, vkc_smem, stream>>>(scores, topk_values, topk_indices, bias, num_tokens, n_group, topk_group, topk, num_experts, experts_per_group, renormalize, routed_scaling_factor);
  }
  VKC_CHECK(cudaGetLastError());
  std::vector<cudaEvent_t> ev_start(iters), ev_stop(iters);
  for (int i = 0; i < iters; ++i) {
    VKC_CHECK(cudaEventCreate(&ev_start[i]));
    VKC_CHECK(cudaEventCreate(&ev_stop[i]));
  }
  for (int i = 0; i < iters; ++i) {
    VKC_CHECK(cudaMemsetAsync(vkc_flush, i & 0xff, flush_bytes, stream));
    VKC_CHECK(cudaEventRecord(ev_start[i], stream));
    VKC_KERNEL<<<vkc_grid, vkc_block, vkc_smem, stream>>>(scores, topk_values, topk_indices, bias, num_tokens, n_group, topk_group, topk, num_experts, experts_per_group, renormalize, routed_scaling_factor);
    VKC_CHECK(cudaEventRecord(ev_stop[i], stream));
  }
  VKC_CHECK(cudaGetLastError());
  VKC_CHECK(cudaStreamSynchronize(stream));
  std::vector<float> times(iters);
  for (int i = 0; i < iters; ++i) {
    VKC_CHECK(cudaEventElapsedTime(&times[i], ev_start[i], ev_stop[i]));
    VKC_CHECK(cudaEventDestroy(ev_start[i]));
    VKC_CHECK(cudaEventDestroy(ev_stop[i]));
  }
  std::sort(times.begin(), times.end());
  const double time_ms = 0.5 * ((double)times[(iters - 1) / 2] + (double)times[iters / 2]);
  VKC_CHECK(cudaFree(vkc_flush));
  const double bytes_moved = (double)(1.0 * n_scores * sizeof(T) + 1.0 * n_bias * sizeof(BiasT) + 1.0 * n_topk_values * sizeof(float) + 1.0 * n_topk_indices * sizeof(IdxT));
  const double gbps = bytes_moved / (time_ms * 1e-3) / 1e9;
  // dtype: the element type of the largest floating-point buffer (what the rate is quoted for)
  const char* vkc_dtype = "none";
  size_t vkc_dtype_n = 0;
  if (n_topk_values >= vkc_dtype_n) { vkc_dtype_n = n_topk_values; vkc_dtype = "float"; }

  std::printf("RESULT kernel=%s model=%s workload=%s config=%s time_ms=%.6f GB/s=%.3f bytes=%.0f dtype=%s "
              "gpu=%s stat=median warmup=%d reps=%d l2_flush_MiB=%.0f\n",
              "grouped_topk_fused_small_expert_count_kernel", "deepseek-ai/DeepSeek-V3", "decode",
              small_sanity ? "SMALL" : "FULL", time_ms, gbps, bytes_moved, vkc_dtype,
              vkc_gpu.c_str(), warmup, iters, flush_bytes / 1048576.0);

  VKC_CHECK(cudaFree(scores));
  VKC_CHECK(cudaFree(bias));
  VKC_CHECK(cudaFree(topk_values));
  VKC_CHECK(cudaFree(topk_indices));
  VKC_CHECK(cudaStreamDestroy(stream));
  return 0;
}
