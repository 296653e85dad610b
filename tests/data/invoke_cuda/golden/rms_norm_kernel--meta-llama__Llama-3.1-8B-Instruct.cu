// vkc 0.1.0 -- invocation example: CUDA host program for one vLLM kernel
// vLLM: 0.33.0 (sdist vllm-0.33.0.tar.gz, sha256 f4c33c2503d52bb411146afa9618a4f48bed68912f617e6803ac8d76e4c74112)
// KERNEL: vllm::rms_norm_kernel at csrc/layernorm_kernels.cu:15
// WRAPPER: csrc/layernorm_kernels.cu:221 (rms_norm)
// MODEL_NAME: meta-llama/Llama-3.1-8B-Instruct
//   H_q=32 H_kv=8 Dh=128 hidden_size=4096 max_ctx=131072 dtype=bfloat16
//   intermediate_size=14336 num_experts=n/a top_k=n/a moe_intermediate_size=n/a kv_lora_rank=n/a qk_rope_head_dim=n/a rms_norm_eps=1e-05
//   flags: rope_scaling=llama3
//   warning: using vkc's bundled snapshot of meta-llama/Llama-3.1-8B-Instruct's config.json (offline); it may differ from the current hub file
// WORKLOAD: prefill (inferred: csrc/layernorm_kernels.cu:rms_norm_kernel's wrapper runs prefill and decode; prefill is its recipe's default)
// invocation: recipe (model-accurate): recipe norm: csrc/layernorm_kernels.cu:221 (rms_norm)
// INSTANTIATION: vllm::rms_norm_kernel<c10::BFloat16, 8, 2, true>
//   dispatch: VLLM_STABLE_DISPATCH_RANK234(2) x FLOATING_TYPES(bfloat16 -> c10::BFloat16) x VEC_SIZE(gcd(16/sizeof, 4096) = 8); has_weight=true
// GRID: dim3 grid(num_tokens)  BLOCK: min(hidden_size / calculated_vec_size, max_block_size)  SMEM: 0 bytes
// SIZING: num_tokens_ll fills ~20% of free GPU memory clamped to [2 GiB, 8 GiB] (SMALL_SANITY=1: 8); input + out: 2 * num_tokens * hidden_size elements
// CONFIG: https://huggingface.co/meta-llama/Llama-3.1-8B-Instruct/blob/main/config.json
// CONFIG: vkc bundled snapshot snapshots/meta-llama__Llama-3.1-8B-Instruct.json
// COMMAND: vkc rms_norm_kernel --model meta-llama/Llama-3.1-8B-Instruct
// BUILD: nvcc -std=c++17 -arch=sm_90 --expt-relaxed-constexpr --expt-extended-lambda -DENABLE_FP8 -I$(python -c 'import torch,os;print(os.path.join(os.path.dirname(torch.__file__),"include"))') -o rms_norm_kernel rms_norm_kernel_main.cu
// RUN: ./rms_norm_kernel   (env: SMALL_SANITY=1 small shapes; VKC_DUMP_DIR=<dir> dumps buffers + manifest.txt)
// PRINTS: RESULT kernel=<name> model=<id> workload=<w> config=FULL|SMALL time_ms=<x> GB/s=<y>
#include "rms_norm_kernel.cu"

// VKC_INSTANTIATE: vllm::rms_norm_kernel<c10::BFloat16, 8, 2, true>
#define VKC_KERNEL vllm::rms_norm_kernel<c10::BFloat16, 8, 2, true>

#include <cuda_runtime.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <torch/headeronly/util/BFloat16.h>
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
  // model: hidden_size
  // replaces csrc/layernorm_kernels.cu:243: int hidden_size = input.size(-1);
  const int hidden_size = 4096;
  // model: rms_norm_eps
  const float epsilon = 1e-05f;
  // vkc: VLLM_BATCH_INVARIANT unset
  // vllm::vllm_is_batch_invariant() is false by default
  const bool batch_invariant_launch = false;
  // dispatch: VLLM_STABLE_DISPATCH_FLOATING_TYPES(bfloat16)
  using scalar_t = c10::BFloat16;

  // ---- live-set sizing: ~20% of free memory clamped to [2 GiB, 8 GiB]
  size_t free_bytes = 0, total_bytes = 0;
  VKC_CHECK(cudaMemGetInfo(&free_bytes, &total_bytes));
  const size_t budget_bytes =
      std::min<size_t>(std::max<size_t>(free_bytes / 5, 2ULL << 30), 8ULL << 30);
  // input + out: 2 * num_tokens * hidden_size elements
  const size_t vkc_bytes_per_unit = (size_t)(2 * hidden_size * 2);
  const size_t vkc_fixed_bytes = (size_t)(hidden_size * 2);
  long long num_tokens_ll = 8;
  if (!small_sanity) {
    long long fit = budget_bytes > vkc_fixed_bytes
                        ? (long long)((budget_bytes - vkc_fixed_bytes) / std::max<size_t>(vkc_bytes_per_unit, 1))
                        : 0;
    fit = std::min<long long>(fit, (long long)(1048576));
    fit = fit / 1 * 1;
    num_tokens_ll = std::max<long long>(fit, 1);
  }

  // ---- sizes that follow from num_tokens_ll
  // vkc: [num_tokens, hidden_size] input, 2-D
  const int num_tokens = (int)num_tokens_ll;
  // binds csrc/layernorm_kernels.cu:247: int64_t input_stride_d2 = input.stride(-2);
  // contiguous 2-D input
  const int64_t input_stride_d2 = hidden_size;
  // binds csrc/layernorm_kernels.cu:248: int64_t input_stride_d3 = (num_dims >= 3) ? input.stride(-3) : 0;
  // num_dims == 2
  const int64_t input_stride_d3 = 0, input_stride_d4 = 0, input_shape_d2 = 0, input_shape_d3 = 0;

  // ---- device buffers (deterministic, valid contents)
  // input: c10::BFloat16 [num_tokens, hidden_size]; uniform [-1.0f, 1.0f)
  const size_t n_input = (size_t)((size_t)num_tokens * hidden_size);
  c10::BFloat16* input = nullptr;
  VKC_CHECK(cudaMalloc(&input, std::max<size_t>(n_input, 1) * sizeof(c10::BFloat16)));
  vkc_host::fill_uniform<<<vkc_host::fill_blocks(n_input), 256, 0, stream>>>(input, n_input, 3626513111ULL, -1.0f, 1.0f);
  VKC_CHECK(cudaGetLastError());
  // weight: c10::BFloat16 [hidden_size]; uniform [0.5f, 1.5f)
  const size_t n_weight = (size_t)(hidden_size);
  c10::BFloat16* weight = nullptr;
  VKC_CHECK(cudaMalloc(&weight, std::max<size_t>(n_weight, 1) * sizeof(c10::BFloat16)));
  vkc_host::fill_uniform<<<vkc_host::fill_blocks(n_weight), 256, 0, stream>>>(weight, n_weight, 130897217ULL, 0.5f, 1.5f);
  VKC_CHECK(cudaGetLastError());
  // out: c10::BFloat16 [num_tokens, hidden_size]; constant 0.0f
  const size_t n_out = (size_t)((size_t)num_tokens * hidden_size);
  c10::BFloat16* out = nullptr;
  VKC_CHECK(cudaMalloc(&out, std::max<size_t>(n_out, 1) * sizeof(c10::BFloat16)));
  vkc_host::fill_const<<<vkc_host::fill_blocks(n_out), 256, 0, stream>>>(out, n_out, 0.0f);
  VKC_CHECK(cudaGetLastError());
  VKC_CHECK(cudaStreamSynchronize(stream));

  // ---- launch configuration, as the wrapper computes it
  // from csrc/layernorm_kernels.cu:255
  const int max_block_size = batch_invariant_launch ? 1024 : ((num_tokens < 256) ? 1024 : 256);
  // from csrc/layernorm_kernels.cu:257
  dim3 grid(num_tokens);
  // from csrc/layernorm_kernels.cu:267
  const int calculated_vec_size = std::gcd(16 / sizeof(scalar_t), hidden_size);
  // from csrc/layernorm_kernels.cu:269
  const int block_size = std::min(hidden_size / calculated_vec_size, max_block_size);
  // from csrc/layernorm_kernels.cu:271
  dim3 block(block_size);
  // ---- runtime checks of the chosen instantiation against the wrapper's logic
  VKC_REQUIRE(std::gcd(16 / sizeof(scalar_t), hidden_size) == 8, "VLLM_STABLE_DISPATCH_VEC_SIZE picks vec_size=8");
  const dim3 vkc_grid = grid;
  const dim3 vkc_block = block;
  const size_t vkc_smem = (size_t)(0);

  if (dump_dir != nullptr) {
    vkc_host::dump(dump_dir, "input", "in", input, n_input);
    vkc_host::dump(dump_dir, "weight", "in", weight, n_weight);
    vkc_host::dump(dump_dir, "out", "in", out, n_out);
  }

  // ---- first launch, checked
  VKC_KERNEL<<<vkc_grid, vkc_block, vkc_smem, stream>>>(
      out,
      input,
      input_stride_d2,
      input_stride_d3,
      input_stride_d4,
      input_shape_d2,
      input_shape_d3,
      weight,
      /*weight_stride=*/0,
      epsilon,
      num_tokens,
      hidden_size);
  VKC_CHECK(cudaGetLastError());
  VKC_CHECK(cudaStreamSynchronize(stream));

  if (dump_dir != nullptr) {
    vkc_host::dump(dump_dir, "out", "out", out, n_out);
    std::string mpath = std::string(dump_dir) + "/manifest.txt";
    FILE* mf = std::fopen(mpath.c_str(), "w");
    VKC_REQUIRE(mf != nullptr, "cannot write VKC_DUMP_DIR/manifest.txt");
    std::fprintf(mf, "scale num_tokens_ll %lld\n", (long long)num_tokens_ll);
    std::fprintf(mf, "buffer input in %zu %zu c10::BFloat16\n", sizeof(c10::BFloat16), n_input);
    std::fprintf(mf, "buffer weight in %zu %zu c10::BFloat16\n", sizeof(c10::BFloat16), n_weight);
    std::fprintf(mf, "buffer out out %zu %zu c10::BFloat16\n", sizeof(c10::BFloat16), n_out);
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
    VKC_KERNEL<<<vkc_grid, vkc_block, vkc_smem, stream>>>(out, input, input_stride_d2, input_stride_d3, input_stride_d4, input_shape_d2, input_shape_d3, weight, /*weight_stride=*/0, epsilon, num_tokens, hidden_size);
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
    VKC_KERNEL<<<vkc_grid, vkc_block, vkc_smem, stream>>>(out, input, input_stride_d2, input_stride_d3, input_stride_d4, input_shape_d2, input_shape_d3, weight, /*weight_stride=*/0, epsilon, num_tokens, hidden_size);
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
  const double bytes_moved = (double)(1.0 * n_input * sizeof(c10::BFloat16) + 1.0 * n_weight * sizeof(c10::BFloat16) + 1.0 * n_out * sizeof(c10::BFloat16));
  const double gbps = bytes_moved / (time_ms * 1e-3) / 1e9;
  // dtype: the element type of the largest floating-point buffer (what the rate is quoted for)
  const char* vkc_dtype = "none";
  size_t vkc_dtype_n = 0;
  if (n_input >= vkc_dtype_n) { vkc_dtype_n = n_input; vkc_dtype = "c10::BFloat16"; }
  if (n_weight >= vkc_dtype_n) { vkc_dtype_n = n_weight; vkc_dtype = "c10::BFloat16"; }
  if (n_out >= vkc_dtype_n) { vkc_dtype_n = n_out; vkc_dtype = "c10::BFloat16"; }

  std::printf("RESULT kernel=%s model=%s workload=%s config=%s time_ms=%.6f GB/s=%.3f bytes=%.0f dtype=%s "
              "gpu=%s stat=median warmup=%d reps=%d l2_flush_MiB=%.0f\n",
              "rms_norm_kernel", "meta-llama/Llama-3.1-8B-Instruct", "prefill",
              small_sanity ? "SMALL" : "FULL", time_ms, gbps, bytes_moved, vkc_dtype,
              vkc_gpu.c_str(), warmup, iters, flush_bytes / 1048576.0);

  VKC_CHECK(cudaFree(input));
  VKC_CHECK(cudaFree(weight));
  VKC_CHECK(cudaFree(out));
  VKC_CHECK(cudaStreamDestroy(stream));
  return 0;
}
