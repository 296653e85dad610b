// vkc 0.1.0 -- invocation example: CUDA host program for one vLLM kernel
// vLLM: 0.33.0 (sdist vllm-0.33.0.tar.gz, sha256 f4c33c2503d52bb411146afa9618a4f48bed68912f617e6803ac8d76e4c74112)
// KERNEL: vllm::concat_and_cache_mla_kernel at csrc/cache_kernels.cu:425
// WRAPPER: csrc/cache_kernels.cu:946 (concat_and_cache_mla)
// MODEL_NAME: deepseek-ai/DeepSeek-V3
//   H_q=128 H_kv=128 Dh=192 hidden_size=7168 max_ctx=163840 dtype=bfloat16
//   intermediate_size=18432 num_experts=256 top_k=8 moe_intermediate_size=2048 kv_lora_rank=512 qk_rope_head_dim=64 rms_norm_eps=1e-06
//   flags: rope_scaling=yarn, mla, moe=256x top8
//   warning: using vkc's bundled snapshot of deepseek-ai/DeepSeek-V3's config.json (offline); it may differ from the current hub file
//   warning: weights are quantized (quantization_config.quant_method=fp8); dtype is the unquantized activation dtype
// WORKLOAD: prefill (inferred: csrc/cache_kernels.cu:concat_and_cache_mla_kernel's wrapper runs prefill and decode; prefill is its recipe's default)
// invocation: recipe (model-accurate): recipe cache: csrc/cache_kernels.cu:946 (concat_and_cache_mla)
// INSTANTIATION: vllm::concat_and_cache_mla_kernel<__nv_bfloat16, __nv_bfloat16, vllm::Fp8KVCacheDataType::kAuto, false>
//   dispatch: DISPATCH_BY_KV_CACHE_DTYPE(bfloat16 -> __nv_bfloat16, auto -> kAuto); CALL_CONCAT_AND_CACHE_MLA skip_scale=false
// GRID: dim3 grid(num_tokens)  BLOCK: min(kv_lora_rank, 512)  SMEM: 0 bytes
// SIZING: num_tokens_ll fills ~20% of free GPU memory clamped to [2 GiB, 8 GiB] (SMALL_SANITY=1: 8); prefill: slot_mapping[i] = i (consecutive pages, all inside the cache)
// CONFIG: https://huggingface.co/deepseek-ai/DeepSeek-V3/blob/main/config.json
// CONFIG: vkc bundled snapshot snapshots/deepseek-ai__DeepSeek-V3.json
// COMMAND: vkc concat_and_cache_mla_kernel --model deepseek-ai/DeepSeek-V3
// BUILD: nvcc -std=c++17 -arch=sm_90 --expt-relaxed-constexpr --expt-extended-lambda -DENABLE_FP8 -I$(python -c 'import torch,os;print(os.path.join(os.path.dirname(torch.__file__),"include"))') -o concat_and_cache_mla_kernel concat_and_cache_mla_kernel_main.cu
// RUN: ./concat_and_cache_mla_kernel   (env: SMALL_SANITY=1 small shapes; VKC_DUMP_DIR=<dir> dumps buffers + manifest.txt)
// PRINTS: RESULT kernel=<name> model=<id> workload=<w> config=FULL|SMALL time_ms=<x> GB/s=<y>
// NOTE: kv_c / k_pe are separate contiguous tensors here (in vLLM they may be views of one row)
#include "concat_and_cache_mla_kernel.cu"

// VKC_INSTANTIATE: vllm::concat_and_cache_mla_kernel<__nv_bfloat16, __nv_bfloat16, vllm::Fp8KVCacheDataType::kAuto, false>
#define VKC_KERNEL vllm::concat_and_cache_mla_kernel<__nv_bfloat16, __nv_bfloat16, vllm::Fp8KVCacheDataType::kAuto, false>

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
  // model: kv_lora_rank
  // replaces csrc/cache_kernels.cu:965: int kv_lora_rank = kv_c.size(1);
  const int kv_lora_rank = 512;
  // model: qk_rope_head_dim
  // replaces csrc/cache_kernels.cu:966: int pe_dim = k_pe.size(1);
  const int pe_dim = 64;
  // model: FlashMLA page size 64
  // replaces csrc/cache_kernels.cu:967: int block_size = kv_cache.size(1);
  const int block_size = 64;
  // dispatch: DISPATCH_BY_KV_CACHE_DTYPE(bfloat16, "auto")
  using KV_T = __nv_bfloat16;
  // binds csrc/cache_kernels.cu:1000: int kv_c_stride = kv_c.stride(0);
  const int kv_c_stride = kv_lora_rank;
  // binds csrc/cache_kernels.cu:1001: int k_pe_stride = k_pe.stride(0);
  const int k_pe_stride = pe_dim;
  // binds csrc/cache_kernels.cu:1002: int block_stride = kv_cache.stride(0);
  // cache [num_blocks, block_size, kv_lora_rank + pe_dim]
  const int block_stride = block_size * (kv_lora_rank + pe_dim);
  // binds csrc/cache_kernels.cu:1003: int entry_stride = kv_cache.stride(1);
  const int entry_stride = kv_lora_rank + pe_dim;

  // ---- live-set sizing: ~20% of free memory clamped to [2 GiB, 8 GiB]
  size_t free_bytes = 0, total_bytes = 0;
  VKC_CHECK(cudaMemGetInfo(&free_bytes, &total_bytes));
  const size_t budget_bytes =
      std::min<size_t>(std::max<size_t>(free_bytes / 5, 2ULL << 30), 8ULL << 30);
  // prefill: slot_mapping[i] = i (consecutive pages, all inside the cache)
  const size_t vkc_bytes_per_unit = (size_t)((size_t)(kv_lora_rank + pe_dim) * 2 * (1 + 1) + 8);
  const size_t vkc_fixed_bytes = (size_t)(0);
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
  // vkc: prefill, one token per slot
  const int num_tokens = (int)num_tokens_ll;
  // vkc: cache holds exactly the prompt tokens
  const int64_t num_blocks = (num_tokens + block_size - 1) / block_size;

  // ---- device buffers (deterministic, valid contents)
  // kv_c: __nv_bfloat16 [num_tokens, kv_lora_rank]; uniform [-1.0f, 1.0f)
  const size_t n_kv_c = (size_t)((size_t)num_tokens * kv_lora_rank);
  __nv_bfloat16* kv_c = nullptr;
  VKC_CHECK(cudaMalloc(&kv_c, std::max<size_t>(n_kv_c, 1) * sizeof(__nv_bfloat16)));
  vkc_host::fill_uniform<<<vkc_host::fill_blocks(n_kv_c), 256, 0, stream>>>(kv_c, n_kv_c, 1955056261ULL, -1.0f, 1.0f);
  VKC_CHECK(cudaGetLastError());
  // k_pe: __nv_bfloat16 [num_tokens, pe_dim]; uniform [-1.0f, 1.0f)
  const size_t n_k_pe = (size_t)((size_t)num_tokens * pe_dim);
  __nv_bfloat16* k_pe = nullptr;
  VKC_CHECK(cudaMalloc(&k_pe, std::max<size_t>(n_k_pe, 1) * sizeof(__nv_bfloat16)));
  vkc_host::fill_uniform<<<vkc_host::fill_blocks(n_k_pe), 256, 0, stream>>>(k_pe, n_k_pe, 3093572274ULL, -1.0f, 1.0f);
  VKC_CHECK(cudaGetLastError());
  // kv_cache: __nv_bfloat16 [num_blocks, block_size, kv_lora_rank + pe_dim]; constant 0.0f
  const size_t n_kv_cache = (size_t)((size_t)num_blocks * block_stride);
  __nv_bfloat16* kv_cache = nullptr;
  VKC_CHECK(cudaMalloc(&kv_cache, std::max<size_t>(n_kv_cache, 1) * sizeof(__nv_bfloat16)));
  vkc_host::fill_const<<<vkc_host::fill_blocks(n_kv_cache), 256, 0, stream>>>(kv_cache, n_kv_cache, 0.0f);
  VKC_CHECK(cudaGetLastError());
  // slot_mapping: int64_t [num_tokens]; (i*1 + 0) % (num_blocks * block_size)
  const size_t n_slot_mapping = (size_t)(num_tokens);
  int64_t* slot_mapping = nullptr;
  VKC_CHECK(cudaMalloc(&slot_mapping, std::max<size_t>(n_slot_mapping, 1) * sizeof(int64_t)));
  vkc_host::fill_affine<<<vkc_host::fill_blocks(n_slot_mapping), 256, 0, stream>>>(slot_mapping, n_slot_mapping, (long long)(1), (long long)(0), (long long)(num_blocks * block_size));
  VKC_CHECK(cudaGetLastError());
  // scale: float [1]; constant 1.0f
  const size_t n_scale = (size_t)(1);
  float* scale = nullptr;
  VKC_CHECK(cudaMalloc(&scale, std::max<size_t>(n_scale, 1) * sizeof(float)));
  vkc_host::fill_const<<<vkc_host::fill_blocks(n_scale), 256, 0, stream>>>(scale, n_scale, 1.0f);
  VKC_CHECK(cudaGetLastError());
  VKC_CHECK(cudaStreamSynchronize(stream));

  // ---- launch configuration, as the wrapper computes it
  // from csrc/cache_kernels.cu:1038
  dim3 grid(num_tokens);
  // from csrc/cache_kernels.cu:1039
  dim3 block(std::min(kv_lora_rank, 512));
  const dim3 vkc_grid = grid;
  const dim3 vkc_block = block;
  const size_t vkc_smem = (size_t)(0);

  if (dump_dir != nullptr) {
    vkc_host::dump(dump_dir, "kv_c", "in", kv_c, n_kv_c);
    vkc_host::dump(dump_dir, "k_pe", "in", k_pe, n_k_pe);
    vkc_host::dump(dump_dir, "kv_cache", "in", kv_cache, n_kv_cache);
    vkc_host::dump(dump_dir, "slot_mapping", "in", slot_mapping, n_slot_mapping);
    vkc_host::dump(dump_dir, "scale", "in", scale, n_scale);
  }

  // ---- first launch, checked
  VKC_KERNEL<<<vkc_grid, vkc_block, vkc_smem, stream>>>(
      kv_c,
      k_pe,
      kv_cache,
      slot_mapping,
      block_stride,
      entry_stride,
      kv_c_stride,
      k_pe_stride,
      kv_lora_rank,
      pe_dim,
      block_size,
      scale);
  VKC_CHECK(cudaGetLastError());
  VKC_CHECK(cudaStreamSynchronize(stream));

  if (dump_dir != nullptr) {
    std::string mpath = std::string(dump_dir) + "/manifest.txt";
    FILE* mf = std::fopen(mpath.c_str(), "w");
    VKC_REQUIRE(mf != nullptr, "cannot write VKC_DUMP_DIR/manifest.txt");
    std::fprintf(mf, "scale num_tokens_ll %lld\n", (long long)num_tokens_ll);
    std::fprintf(mf, "buffer kv_c in %zu %zu __nv_bfloat16\n", sizeof(__nv_bfloat16), n_kv_c);
    std::fprintf(mf, "buffer k_pe in %zu %zu __nv_bfloat16\n", sizeof(__nv_bfloat16), n_k_pe);
    std::fprintf(mf, "buffer kv_cache ws %zu %zu __nv_bfloat16\n", sizeof(__nv_bfloat16), n_kv_cache);
    std::fprintf(mf, "buffer slot_mapping in %zu %zu int64_t\n", sizeof(int64_t), n_slot_mapping);
    std::fprintf(mf, "buffer scale in %zu %zu float\n", sizeof(float), n_scale);
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
    VKC_KERNEL<<<vkc_grid, vkc_block, vkc_smem, stream>>>(kv_c, k_pe, kv_cache, slot_mapping, block_stride, entry_stride, kv_c_stride, k_pe_stride, kv_lora_rank, pe_dim, block_size, scale);
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
    VKC_KERNEL<<<vkc_grid, vkc_block, vkc_smem, stream>>>(kv_c, k_pe, kv_cache, slot_mapping, block_stride, entry_stride, kv_c_stride, k_pe_stride, kv_lora_rank, pe_dim, block_size, scale);
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
  const double bytes_moved = (double)(2.0 * num_tokens * (kv_lora_rank + pe_dim) * 2 + 8.0 * num_tokens);
  const double gbps = bytes_moved / (time_ms * 1e-3) / 1e9;
  // dtype: the element type of the largest floating-point buffer (what the rate is quoted for)
  const char* vkc_dtype = "none";
  size_t vkc_dtype_n = 0;
  if (n_kv_c >= vkc_dtype_n) { vkc_dtype_n = n_kv_c; vkc_dtype = "__nv_bfloat16"; }
  if (n_k_pe >= vkc_dtype_n) { vkc_dtype_n = n_k_pe; vkc_dtype = "__nv_bfloat16"; }
  if (n_kv_cache >= vkc_dtype_n) { vkc_dtype_n = n_kv_cache; vkc_dtype = "__nv_bfloat16"; }
  if (n_scale >= vkc_dtype_n) { vkc_dtype_n = n_scale; vkc_dtype = "float"; }

  std::printf("RESULT kernel=%s model=%s workload=%s config=%s time_ms=%.6f GB/s=%.3f bytes=%.0f dtype=%s "
              "gpu=%s stat=median warmup=%d reps=%d l2_flush_MiB=%.0f\n",
              "concat_and_cache_mla_kernel", "deepseek-ai/DeepSeek-V3", "prefill",
              small_sanity ? "SMALL" : "FULL", time_ms, gbps, bytes_moved, vkc_dtype,
              vkc_gpu.c_str(), warmup, iters, flush_bytes / 1048576.0);

  VKC_CHECK(cudaFree(kv_c));
  VKC_CHECK(cudaFree(k_pe));
  VKC_CHECK(cudaFree(kv_cache));
  VKC_CHECK(cudaFree(slot_mapping));
  VKC_CHECK(cudaFree(scale));
  VKC_CHECK(cudaStreamDestroy(stream));
  return 0;
}
