// vkc 0.1.0 -- invocation example: CUDA host program for one vLLM kernel
// vLLM: 0.33.0 (sdist vllm-0.33.0.tar.gz, sha256 f4c33c2503d52bb411146afa9618a4f48bed68912f617e6803ac8d76e4c74112)
// KERNEL: vllm::reshape_and_cache_flash_kernel at csrc/cache_kernels.cu:336
// WRAPPER: csrc/cache_kernels.cu:842 (reshape_and_cache_flash)
// MODEL_NAME: openai/gpt-oss-120b
//   H_q=64 H_kv=8 Dh=64 hidden_size=2880 max_ctx=131072 dtype=bfloat16
//   intermediate_size=2880 num_experts=128 top_k=4 moe_intermediate_size=2880 kv_lora_rank=n/a qk_rope_head_dim=n/a rms_norm_eps=1e-05
//   flags: sliding_window=128, rope_scaling=yarn, qkv_bias, attention_sinks, moe=128x top4
//   warning: using vkc's bundled snapshot of openai/gpt-oss-120b's config.json (offline); it may differ from the current hub file
//   warning: head_dim * num_attention_heads = 64*64 = 4096 != hidden_size 2880; the explicit head_dim 64 is used
//   warning: weights are quantized (quantization_config.quant_method=mxfp4); dtype is the unquantized activation dtype
//   warning: config.json has no torch_dtype/dtype key; assuming bfloat16
//   warning: Dh*H_q = 4096 != hidden_size 2880 (explicit head_dim kept)
// WORKLOAD: decode (given)
// invocation: recipe (model-accurate): recipe cache: csrc/cache_kernels.cu:842 (reshape_and_cache_flash)
// INSTANTIATION: vllm::reshape_and_cache_flash_kernel<__nv_bfloat16, __nv_bfloat16, vllm::Fp8KVCacheDataType::kAuto>
//   dispatch: DISPATCH_BY_KV_CACHE_DTYPE(bfloat16 -> __nv_bfloat16, auto -> kAuto) via CALL_RESHAPE_AND_CACHE_FLASH
// GRID: dim3 grid(num_tokens)  BLOCK: min(num_heads * head_size, 512)  SMEM: 0 bytes
// SIZING: num_tokens_ll fills ~20% of free GPU memory clamped to [2 GiB, 8 GiB] (SMALL_SANITY=1: 8); decode: slot_mapping[s] = s*blocks_per_seq*block_size + seq_len-1 (last slot of sequence s)
// CONFIG: https://huggingface.co/openai/gpt-oss-120b/blob/main/config.json
// CONFIG: vkc bundled snapshot snapshots/openai__gpt-oss-120b.json
// COMMAND: vkc reshape_and_cache_flash_kernel --model openai/gpt-oss-120b --workload decode
// BUILD: nvcc -std=c++17 -arch=sm_90 --expt-relaxed-constexpr --expt-extended-lambda -DENABLE_FP8 -I$(python -c 'import torch,os;print(os.path.join(os.path.dirname(torch.__file__),"include"))') -o reshape_and_cache_flash_kernel reshape_and_cache_flash_kernel_main.cu
// RUN: ./reshape_and_cache_flash_kernel   (env: SMALL_SANITY=1 small shapes; VKC_DUMP_DIR=<dir> dumps buffers + manifest.txt)
// PRINTS: RESULT kernel=<name> model=<id> workload=<w> config=FULL|SMALL time_ms=<x> GB/s=<y>
// NOTE: GB/s counts key/value read + the written cache rows; the caches are live set, not traffic
#include "reshape_and_cache_flash_kernel.cu"

// VKC_INSTANTIATE: vllm::reshape_and_cache_flash_kernel<__nv_bfloat16, __nv_bfloat16, vllm::Fp8KVCacheDataType::kAuto>
#define VKC_KERNEL vllm::reshape_and_cache_flash_kernel<__nv_bfloat16, __nv_bfloat16, vllm::Fp8KVCacheDataType::kAuto>

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
  // model: H_kv
  // replaces csrc/cache_kernels.cu:807: int num_heads = key.size(1);
  const int num_heads = 8;
  // model: head_dim
  // replaces csrc/cache_kernels.cu:808: int head_size = key.size(2);
  const int head_size = 64;
  // model: vLLM default block size 16
  // replaces csrc/cache_kernels.cu:892: int block_size = key_cache.size(1);
  const int block_size = 16;
  // dispatch: DISPATCH_BY_KV_CACHE_DTYPE(bfloat16, "auto")
  using KV_T = __nv_bfloat16;
  // dispatch: kv_cache_dtype=auto stores the model dtype
  using CACHE_T = KV_T;
  // binds csrc/cache_kernels.cu:894: int64_t key_stride = key.stride(0);
  const int64_t key_stride = (int64_t)num_heads * head_size;
  // binds csrc/cache_kernels.cu:895: int64_t value_stride = value.stride(0);
  const int64_t value_stride = (int64_t)num_heads * head_size;
  // binds csrc/cache_kernels.cu:896: int64_t block_stride = key_cache.stride(0);
  // NHD cache [num_blocks, block_size, num_heads, head_size]
  const int64_t block_stride = (int64_t)block_size * num_heads * head_size;
  // binds csrc/cache_kernels.cu:897: int64_t page_stride = key_cache.stride(1);
  const int64_t page_stride = (int64_t)num_heads * head_size;
  // binds csrc/cache_kernels.cu:898: int64_t head_stride = key_cache.stride(2);
  const int64_t head_stride = head_size;
  // binds csrc/cache_kernels.cu:905: int kv_scale_stride = (k_scale.numel() > 1) ? 1 : 0;
  // k_scale/v_scale are [1]
  const int kv_scale_stride = 0;

  // ---- live-set sizing: ~20% of free memory clamped to [2 GiB, 8 GiB]
  size_t free_bytes = 0, total_bytes = 0;
  VKC_CHECK(cudaMemGetInfo(&free_bytes, &total_bytes));
  const size_t budget_bytes =
      std::min<size_t>(std::max<size_t>(free_bytes / 5, 2ULL << 30), 8ULL << 30);
  // decode: slot_mapping[s] = s*blocks_per_seq*block_size + seq_len-1 (last slot of sequence s)
  const size_t vkc_bytes_per_unit = (size_t)(2 * (size_t)num_heads * head_size * 2 * (1 + ((size_t)(std::min<long long>(131072, 4096) + block_size - 1) / block_size * block_size)) + 8);
  const size_t vkc_fixed_bytes = (size_t)(0);
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
  // vkc: decode, one new token per sequence
  const int num_tokens = (int)num_tokens_ll;
  // vkc: context per sequence (min(max_ctx, 4096))
  const int64_t seq_len = std::min<long long>(131072, 4096);
  // vkc
  const int64_t blocks_per_seq = (seq_len + block_size - 1) / block_size;
  // vkc: each sequence owns its pages
  const int64_t num_blocks = (int64_t)num_tokens * blocks_per_seq;

  // ---- device buffers (deterministic, valid contents)
  // key: __nv_bfloat16 [num_tokens, H_kv, Dh]; uniform [-1.0f, 1.0f)
  const size_t n_key = (size_t)((size_t)num_tokens * num_heads * head_size);
  __nv_bfloat16* key = nullptr;
  VKC_CHECK(cudaMalloc(&key, std::max<size_t>(n_key, 1) * sizeof(__nv_bfloat16)));
  vkc_host::fill_uniform<<<vkc_host::fill_blocks(n_key), 256, 0, stream>>>(key, n_key, 2324736937ULL, -1.0f, 1.0f);
  VKC_CHECK(cudaGetLastError());
  // value: __nv_bfloat16 [num_tokens, H_kv, Dh]; uniform [-1.0f, 1.0f)
  const size_t n_value = (size_t)((size_t)num_tokens * num_heads * head_size);
  __nv_bfloat16* value = nullptr;
  VKC_CHECK(cudaMalloc(&value, std::max<size_t>(n_value, 1) * sizeof(__nv_bfloat16)));
  vkc_host::fill_uniform<<<vkc_host::fill_blocks(n_value), 256, 0, stream>>>(value, n_value, 494360628ULL, -1.0f, 1.0f);
  VKC_CHECK(cudaGetLastError());
  // key_cache: __nv_bfloat16 [num_blocks, block_size, H_kv, Dh]; constant 0.0f
  const size_t n_key_cache = (size_t)((size_t)num_blocks * block_stride);
  __nv_bfloat16* key_cache = nullptr;
  VKC_CHECK(cudaMalloc(&key_cache, std::max<size_t>(n_key_cache, 1) * sizeof(__nv_bfloat16)));
  vkc_host::fill_const<<<vkc_host::fill_blocks(n_key_cache), 256, 0, stream>>>(key_cache, n_key_cache, 0.0f);
  VKC_CHECK(cudaGetLastError());
  // value_cache: __nv_bfloat16 [num_blocks, block_size, H_kv, Dh]; constant 0.0f
  const size_t n_value_cache = (size_t)((size_t)num_blocks * block_stride);
  __nv_bfloat16* value_cache = nullptr;
  VKC_CHECK(cudaMalloc(&value_cache, std::max<size_t>(n_value_cache, 1) * sizeof(__nv_bfloat16)));
  vkc_host::fill_const<<<vkc_host::fill_blocks(n_value_cache), 256, 0, stream>>>(value_cache, n_value_cache, 0.0f);
  VKC_CHECK(cudaGetLastError());
  // slot_mapping: int64_t [num_tokens]; (i*blocks_per_seq * block_size + seq_len - 1) % (num_blocks * block_size)
  const size_t n_slot_mapping = (size_t)(num_tokens);
  int64_t* slot_mapping = nullptr;
  VKC_CHECK(cudaMalloc(&slot_mapping, std::max<size_t>(n_slot_mapping, 1) * sizeof(int64_t)));
  vkc_host::fill_affine<<<vkc_host::fill_blocks(n_slot_mapping), 256, 0, stream>>>(slot_mapping, n_slot_mapping, (long long)(blocks_per_seq * block_size), (long long)(seq_len - 1), (long long)(num_blocks * block_size));
  VKC_CHECK(cudaGetLastError());
  // k_scale: float [1]; constant 1.0f
  const size_t n_k_scale = (size_t)(1);
  float* k_scale = nullptr;
  VKC_CHECK(cudaMalloc(&k_scale, std::max<size_t>(n_k_scale, 1) * sizeof(float)));
  vkc_host::fill_const<<<vkc_host::fill_blocks(n_k_scale), 256, 0, stream>>>(k_scale, n_k_scale, 1.0f);
  VKC_CHECK(cudaGetLastError());
  // v_scale: float [1]; constant 1.0f
  const size_t n_v_scale = (size_t)(1);
  float* v_scale = nullptr;
  VKC_CHECK(cudaMalloc(&v_scale, std::max<size_t>(n_v_scale, 1) * sizeof(float)));
  vkc_host::fill_const<<<vkc_host::fill_blocks(n_v_scale), 256, 0, stream>>>(v_scale, n_v_scale, 1.0f);
  VKC_CHECK(cudaGetLastError());
  VKC_CHECK(cudaStreamSynchronize(stream));

  // ---- launch configuration, as the wrapper computes it
  // from csrc/cache_kernels.cu:907
  dim3 grid(num_tokens);
  // from csrc/cache_kernels.cu:908
  dim3 block(std::min(num_heads * head_size, 512));
  const dim3 vkc_grid = grid;
  const dim3 vkc_block = block;
  const size_t vkc_smem = (size_t)(0);

  if (dump_dir != nullptr) {
    vkc_host::dump(dump_dir, "key", "in", key, n_key);
    vkc_host::dump(dump_dir, "value", "in", value, n_value);
    vkc_host::dump(dump_dir, "key_cache", "in", key_cache, n_key_cache);
    vkc_host::dump(dump_dir, "value_cache", "in", value_cache, n_value_cache);
    vkc_host::dump(dump_dir, "slot_mapping", "in", slot_mapping, n_slot_mapping);
    vkc_host::dump(dump_dir, "k_scale", "in", k_scale, n_k_scale);
    vkc_host::dump(dump_dir, "v_scale", "in", v_scale, n_v_scale);
  }

  // ---- first launch, checked
  VKC_KERNEL<<<vkc_grid, vkc_block, vkc_smem, stream>>>(
      key,
      value,
      key_cache,
      value_cache,
      slot_mapping,
      block_stride,
      page_stride,
      head_stride,
      key_stride,
      value_stride,
      num_heads,
      head_size,
      block_size,
      k_scale,
      v_scale,
      kv_scale_stride);
  VKC_CHECK(cudaGetLastError());
  VKC_CHECK(cudaStreamSynchronize(stream));

  if (dump_dir != nullptr) {
    std::string mpath = std::string(dump_dir) + "/manifest.txt";
    FILE* mf = std::fopen(mpath.c_str(), "w");
    VKC_REQUIRE(mf != nullptr, "cannot write VKC_DUMP_DIR/manifest.txt");
    std::fprintf(mf, "scale num_tokens_ll %lld\n", (long long)num_tokens_ll);
    std::fprintf(mf, "buffer key in %zu %zu __nv_bfloat16\n", sizeof(__nv_bfloat16), n_key);
    std::fprintf(mf, "buffer value in %zu %zu __nv_bfloat16\n", sizeof(__nv_bfloat16), n_value);
    std::fprintf(mf, "buffer key_cache ws %zu %zu __nv_bfloat16\n", sizeof(__nv_bfloat16), n_key_cache);
    std::fprintf(mf, "buffer value_cache ws %zu %zu __nv_bfloat16\n", sizeof(__nv_bfloat16), n_value_cache);
    std::fprintf(mf, "buffer slot_mapping in %zu %zu int64_t\n", sizeof(int64_t), n_slot_mapping);
    std::fprintf(mf, "buffer k_scale in %zu %zu float\n", sizeof(float), n_k_scale);
    std::fprintf(mf, "buffer v_scale in %zu %zu float\n", sizeof(float), n_v_scale);
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
    VKC_KERNEL<<<vkc_grid, vkc_block, vkc_smem, stream>>>(key, value, key_cache, value_cache, slot_mapping, block_stride, page_stride, head_stride, key_stride, value_stride, num_heads, head_size, block_size, k_scale, v_scale, kv_scale_stride);
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
    VKC_KERNEL<<<vkc_grid, vkc_block, vkc_smem, stream>>>(key, value, key_cache, value_cache, slot_mapping, block_stride, page_stride, head_stride, key_stride, value_stride, num_heads, head_size, block_size, k_scale, v_scale, kv_scale_stride);
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
  const double bytes_moved = (double)(4.0 * num_tokens * num_heads * head_size * 2 + 8.0 * num_tokens);
  const double gbps = bytes_moved / (time_ms * 1e-3) / 1e9;
  // dtype: the element type of the largest floating-point buffer (what the rate is quoted for)
  const char* vkc_dtype = "none";
  size_t vkc_dtype_n = 0;
  if (n_key >= vkc_dtype_n) { vkc_dtype_n = n_key; vkc_dtype = "__nv_bfloat16"; }
  if (n_value >= vkc_dtype_n) { vkc_dtype_n = n_value; vkc_dtype = "__nv_bfloat16"; }
  if (n_key_cache >= vkc_dtype_n) { vkc_dtype_n = n_key_cache; vkc_dtype = "__nv_bfloat16"; }
  if (n_value_cache >= vkc_dtype_n) { vkc_dtype_n = n_value_cache; vkc_dtype = "__nv_bfloat16"; }
  if (n_k_scale >= vkc_dtype_n) { vkc_dtype_n = n_k_scale; vkc_dtype = "float"; }
  if (n_v_scale >= vkc_dtype_n) { vkc_dtype_n = n_v_scale; vkc_dtype = "float"; }

  std::printf("RESULT kernel=%s model=%s workload=%s config=%s time_ms=%.6f GB/s=%.3f bytes=%.0f dtype=%s "
              "gpu=%s stat=median warmup=%d reps=%d l2_flush_MiB=%.0f\n",
              "reshape_and_cache_flash_kernel", "openai/gpt-oss-120b", "decode",
              small_sanity ? "SMALL" : "FULL", time_ms, gbps, bytes_moved, vkc_dtype,
              vkc_gpu.c_str(), warmup, iters, flush_bytes / 1048576.0);

  VKC_CHECK(cudaFree(key));
  VKC_CHECK(cudaFree(value));
  VKC_CHECK(cudaFree(key_cache));
  VKC_CHECK(cudaFree(value_cache));
  VKC_CHECK(cudaFree(slot_mapping));
  VKC_CHECK(cudaFree(k_scale));
  VKC_CHECK(cudaFree(v_scale));
  VKC_CHECK(cudaStreamDestroy(stream));
  return 0;
}
