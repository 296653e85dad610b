// vkc 0.1.0 -- invocation example (CUDA host program) for one vLLM kernel
// vLLM: 0.33.0 (https://files.pythonhosted.org/packages/f7/25/aa5684e9c59d6fc75f78926b7f15e8d9adc7de2d9e6e7575b80776ad8169/vllm-0.33.0.tar.gz)
// KERNEL: vllm::cross_device_reduce_1stage at csrc/custom_all_reduce.cuh:8
// WRAPPER: csrc/custom_all_reduce.cuh:288 (KL macro in CustomAllreduce::allreduce)
// MODEL_NAME: meta-llama/Llama-3.1-8B-Instruct
//   H_q=32 H_kv=8 Dh=128 hidden_size=4096 max_ctx=131072 dtype=bfloat16
//   intermediate_size=14336 num_experts=n/a top_k=n/a moe_intermediate_size=n/a kv_lora_rank=n/a qk_rope_head_dim=n/a rms_norm_eps=1e-05
//   flags: rope_scaling=llama3
//   warning: using vkc's bundled snapshot of meta-llama/Llama-3.1-8B-Instruct's config.json (offline); it may differ from the current hub file
// WORKLOAD: prefill (inferred: csrc/custom_all_reduce.cuh:cross_device_reduce_1stage runs in prefill and decode; prefill is the default)
// INSTANTIATION: vllm::cross_device_reduce_1stage<nv_bfloat16, 2>
//   dispatch: CustomAllreduce::allreduce<nv_bfloat16> -> REDUCE_CASE(2) -> KL(2, cross_device_reduce_1stage)
// GRID: min(block_limit, (size + threads - 1) / threads)  BLOCK: 512  SMEM: 0 bytes
// SIZING: vkc_units fills ~20% of free GPU memory clamped to [2 GiB, 8 GiB] (SMALL_SANITY=1: 1);
// CONFIG: https://huggingface.co/meta-llama/Llama-3.1-8B-Instruct/blob/main/config.json
// CONFIG: vkc bundled snapshot snapshots/meta-llama__Llama-3.1-8B-Instruct.json
// COMMAND: vkc cross_device_reduce_1stage --model meta-llama/Llama-3.1-8B-Instruct
// BUILD: nvcc -std=c++17 -arch=sm_90 --expt-relaxed-constexpr --expt-extended-lambda -DENABLE_FP8 -I$(python -c 'import torch,os;print(os.path.join(os.path.dirname(torch.__file__),"include"))') -o cross_device_reduce_1stage cross_device_reduce_1stage_main.cu
// RUN: ./cross_device_reduce_1stage   (env: SMALL_SANITY=1 small shapes; VKC_DUMP_DIR=<dir> dumps buffers + manifest.txt)
// PRINTS: RESULT kernel=<name> model=<id> workload=<w> config=FULL|SMALL time_ms=<x> GB/s=<y>
// NOTE: multi-GPU: needs IPC-registered buffers (RankData/Signal) on >= 2 GPUs; the program exits 2 (multi-GPU invocation is a separate issue)
#include "cross_device_reduce_1stage.cu"

// VKC_INSTANTIATE: vllm::cross_device_reduce_1stage<nv_bfloat16, 2>
#define VKC_KERNEL vllm::cross_device_reduce_1stage<nv_bfloat16, 2>

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
  int vkc_device_count = 0;
  if (cudaGetDeviceCount(&vkc_device_count) != cudaSuccess || vkc_device_count < 2) {
    std::fprintf(stderr, "vkc: cross_device_reduce_1stage needs at least 2 GPUs (found %d)\n",
                 vkc_device_count);
    return 2;
  }
  (void)&VKC_KERNEL;  // instantiate the kernel
  std::fprintf(stderr, "vkc: cross_device_reduce_1stage is a multi-GPU kernel (IPC buffers on 2+ GPUs); "
               "its invocation is not generated yet\n");
  return 2;
}
