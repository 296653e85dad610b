// vkc 0.1.0 -- invocation example: CUDA host program for one vLLM kernel
// vLLM: 0.33.0 (sdist vllm-0.33.0.tar.gz, sha256 f4c33c2503d52bb411146afa9618a4f48bed68912f617e6803ac8d76e4c74112)
// KERNEL: vllm::topKPerRowDecode at csrc/sampler.cu:598
// WRAPPER: csrc/sampler.cu:805 (top_k_per_row_decode)
// MODEL_NAME: Qwen/Qwen3-Coder-480B-A35B-Instruct
//   H_q=96 H_kv=8 Dh=128 hidden_size=6144 max_ctx=262144 dtype=bfloat16
//   intermediate_size=8192 num_experts=160 top_k=8 moe_intermediate_size=2560 kv_lora_rank=n/a qk_rope_head_dim=n/a rms_norm_eps=1e-06
//   flags: qk_norm, moe=160x top8
//   warning: using vkc's bundled snapshot of Qwen/Qwen3-Coder-480B-A35B-Instruct's config.json (offline); it may differ from the current hub file
//   warning: head_dim * num_attention_heads = 128*96 = 12288 != hidden_size 6144; the explicit head_dim 128 is used
//   warning: Dh*H_q = 12288 != hidden_size 6144 (explicit head_dim kept)
// WORKLOAD: decode (inferred: csrc/sampler.cu:topKPerRowDecode's wrapper runs decode; decode is its recipe's default)
// invocation: recipe (model-accurate): recipe sampler: csrc/sampler.cu:805 (top_k_per_row_decode)
// INSTANTIATION: vllm::topKPerRowDecode<512, true, true>
//   dispatch: top_k_per_row_decode: numColumns = 262144: numColumns >= kSplitWorkThreshold: split pass <512, true, true> (then a merge launch)
// GRID: dim3(numRows, multipleBlocksPerRowConfig = 10)  BLOCK: kNumThreadsPerBlock = 512  SMEM: 2 * topK * sizeof(int32_t) bytes
// SIZING: numRows_ll fills ~20% of free GPU memory clamped to [2 GiB, 8 GiB] (SMALL_SANITY=1: 4); fp32 logits row + seq len + output indices per row
// CONFIG: https://huggingface.co/Qwen/Qwen3-Coder-480B-A35B-Instruct/blob/main/config.json
// CONFIG: vkc bundled snapshot snapshots/Qwen__Qwen3-Coder-480B-A35B-Instruct.json
// COMMAND: vkc topKPerRowDecode --model Qwen/Qwen3-Coder-480B-A35B-Instruct
// BUILD: nvcc -std=c++17 -arch=sm_90 --expt-relaxed-constexpr --expt-extended-lambda -DENABLE_FP8 -I$(python -c 'import torch,os;print(os.path.join(os.path.dirname(torch.__file__),"include"))') -o topKPerRowDecode topKPerRowDecode_main.cu
// RUN: ./topKPerRowDecode   (env: SMALL_SANITY=1 small shapes; VKC_DUMP_DIR=<dir> dumps buffers + manifest.txt)
// PRINTS: RESULT kernel=<name> model=<id> workload=<w> config=FULL|SMALL time_ms=<x> GB/s=<y>
// NOTE: vLLM 0.33.0 runs top_k_per_row_decode only in the DeepSeek-V3.2 sparse-attention (DSA) indexer (vllm/model_executor/layers/indexer_topk.py, backend per_row): logits [batch * next_n, max_model_len], top-k = index_topk; for Qwen/Qwen3-Coder-480B-A35B-Instruct the rows are sized as that indexer would size them (row width = the model's max context, top-k 2048, next_n 1)
// NOTE: rows >= 200000 wide take the two-step path; this program times the first (split) launch; the merge launch topKPerRowDecode<1024, true, false, true> reads outLogitsAux/outIndicesAux
#include "topKPerRowDecode.cu"

// VKC_INSTANTIATE: vllm::topKPerRowDecode<512, true, true>
#define VKC_KERNEL vllm::topKPerRowDecode<512, true, true>

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
  // model: max_ctx=262144: the indexer's logits row width (max_model_len)
  // replaces csrc/sampler.cu:815: const auto numColumns = logits.size(1);
  const int64_t numColumns = 262144;
  // model: DeepSeek-V3.2 index_topk = 2048
  const int64_t topK = 2048;
  // model: no speculative tokens: one query row per sequence
  const int64_t next_n = 1;
  // from csrc/sampler.cu:811
  constexpr int kNumThreadsPerBlock = 512;
  // from csrc/sampler.cu:810
  constexpr int kSplitWorkThreshold = 200 * 1000;
  // binds csrc/sampler.cu:820: int seqLensIs2D = seqLens.dim() == 2 ? 1 : 0;
  // seqLens is 1-D [batch]
  const int seqLensIs2D = 0;
  // vkc: logits.stride(0), contiguous [numRows, numColumns]
  const int64_t stride0 = numColumns;
  // vkc: logits.stride(1)
  const int64_t stride1 = 1;
  // from csrc/sampler.cu:940
  int multipleBlocksPerRowConfig = 10;

  // ---- live-set sizing: ~20% of free memory clamped to [2 GiB, 8 GiB]
  size_t free_bytes = 0, total_bytes = 0;
  VKC_CHECK(cudaMemGetInfo(&free_bytes, &total_bytes));
  const size_t budget_bytes =
      std::min<size_t>(std::max<size_t>(free_bytes / 5, 2ULL << 30), 8ULL << 30);
  // fp32 logits row + seq len + output indices per row
  const size_t vkc_bytes_per_unit = (size_t)((size_t)numColumns * 4 + 4 + (size_t)10 * topK * 8);
  const size_t vkc_fixed_bytes = (size_t)(0);
  long long numRows_ll = 4;
  if (!small_sanity) {
    long long fit = budget_bytes > vkc_fixed_bytes
                        ? (long long)((budget_bytes - vkc_fixed_bytes) / std::max<size_t>(vkc_bytes_per_unit, 1))
                        : 0;
    fit = std::min<long long>(fit, (long long)(1024));
    fit = fit / 1 * 1;
    numRows_ll = std::max<long long>(fit, 1);
  }

  // ---- sizes that follow from numRows_ll
  // vkc: decode batch x next_n logits rows
  const int64_t numRows = numRows_ll;

  // ---- device buffers (deterministic, valid contents)
  // logits: float [numRows, numColumns] fp32 indexer scores; uniform [-8.0f, 8.0f)
  const size_t n_logits = (size_t)((size_t)numRows * numColumns);
  float* logits = nullptr;
  VKC_CHECK(cudaMalloc(&logits, std::max<size_t>(n_logits, 1) * sizeof(float)));
  vkc_host::fill_uniform<<<vkc_host::fill_blocks(n_logits), 256, 0, stream>>>(logits, n_logits, 3057528191ULL, -8.0f, 8.0f);
  VKC_CHECK(cudaGetLastError());
  // seqLens: int [batch] every sequence at the full context numColumns; constant 262144.0f
  const size_t n_seqLens = (size_t)(numRows);
  int* seqLens = nullptr;
  VKC_CHECK(cudaMalloc(&seqLens, std::max<size_t>(n_seqLens, 1) * sizeof(int)));
  vkc_host::fill_const<<<vkc_host::fill_blocks(n_seqLens), 256, 0, stream>>>(seqLens, n_seqLens, 262144.0f);
  VKC_CHECK(cudaGetLastError());
  // outIndicesAux: int [numRows, multipleBlocksPerRowConfig, topK]; zeros
  const size_t n_outIndicesAux = (size_t)((size_t)numRows * 10 * topK);
  int* outIndicesAux = nullptr;
  VKC_CHECK(cudaMalloc(&outIndicesAux, std::max<size_t>(n_outIndicesAux, 1) * sizeof(int)));
  VKC_CHECK(cudaMemsetAsync(outIndicesAux, 0, n_outIndicesAux * sizeof(int), stream));
  VKC_CHECK(cudaGetLastError());
  // outLogitsAux: float [numRows, multipleBlocksPerRowConfig, topK]; zeros
  const size_t n_outLogitsAux = (size_t)((size_t)numRows * 10 * topK);
  float* outLogitsAux = nullptr;
  VKC_CHECK(cudaMalloc(&outLogitsAux, std::max<size_t>(n_outLogitsAux, 1) * sizeof(float)));
  VKC_CHECK(cudaMemsetAsync(outLogitsAux, 0, n_outLogitsAux * sizeof(float), stream));
  VKC_CHECK(cudaGetLastError());
  VKC_CHECK(cudaStreamSynchronize(stream));

  // ---- launch configuration, as the wrapper computes it
  // from csrc/sampler.cu:967
  // launch: vllm::topKPerRowDecode<kNumThreadsPerBlock, true, true> <<<dim3(numRows, multipleBlocksPerRowConfig), kNumThreadsPerBlock, 2 * topK * sizeof(int32_t), stream>>>(
  // ---- runtime checks of the chosen instantiation against the wrapper's logic
  VKC_REQUIRE(numColumns >= kSplitWorkThreshold, "wrapper takes the two-step split path");
  const dim3 vkc_grid = dim3((unsigned)numRows, multipleBlocksPerRowConfig);
  const dim3 vkc_block = dim3(kNumThreadsPerBlock);
  const size_t vkc_smem = (size_t)(2 * topK * sizeof(int32_t));

  if (dump_dir != nullptr) {
    vkc_host::dump(dump_dir, "logits", "in", logits, n_logits);
    vkc_host::dump(dump_dir, "seqLens", "in", seqLens, n_seqLens);
    vkc_host::dump(dump_dir, "outIndicesAux", "in", outIndicesAux, n_outIndicesAux);
    vkc_host::dump(dump_dir, "outLogitsAux", "in", outLogitsAux, n_outLogitsAux);
  }

  // ---- first launch, checked
  VKC_KERNEL<<<vkc_grid, vkc_block, vkc_smem, stream>>>(
      logits,
      seqLens,
      outIndicesAux,
      static_cast<int>(stride0),
      static_cast<int>(stride1),
      static_cast<int>(topK),
      static_cast<int>(next_n),
      seqLensIs2D,
      outLogitsAux);
  VKC_CHECK(cudaGetLastError());
  VKC_CHECK(cudaStreamSynchronize(stream));

  if (dump_dir != nullptr) {
    vkc_host::dump(dump_dir, "outIndicesAux", "out", outIndicesAux, n_outIndicesAux);
    vkc_host::dump(dump_dir, "outLogitsAux", "out", outLogitsAux, n_outLogitsAux);
    std::string mpath = std::string(dump_dir) + "/manifest.txt";
    FILE* mf = std::fopen(mpath.c_str(), "w");
    VKC_REQUIRE(mf != nullptr, "cannot write VKC_DUMP_DIR/manifest.txt");
    std::fprintf(mf, "scale numRows_ll %lld\n", (long long)numRows_ll);
    std::fprintf(mf, "buffer logits in %zu %zu float\n", sizeof(float), n_logits);
    std::fprintf(mf, "buffer seqLens in %zu %zu int\n", sizeof(int), n_seqLens);
    std::fprintf(mf, "buffer outIndicesAux out %zu %zu int\n", sizeof(int), n_outIndicesAux);
    std::fprintf(mf, "buffer outLogitsAux out %zu %zu float\n", sizeof(float), n_outLogitsAux);
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
    VKC_KERNEL<<<vkc_grid, vkc_block, vkc_smem, stream>>>(logits, seqLens, outIndicesAux, static_cast<int>(stride0), static_cast<int>(stride1), static_cast<int>(topK), static_cast<int>(next_n), seqLensIs2D, outLogitsAux);
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
    VKC_KERNEL<<<vkc_grid, vkc_block, vkc_smem, stream>>>(logits, seqLens, outIndicesAux, static_cast<int>(stride0), static_cast<int>(stride1), static_cast<int>(topK), static_cast<int>(next_n), seqLensIs2D, outLogitsAux);
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
  const double bytes_moved = (double)(4.0 * numRows * numColumns + 4.0 * numRows * topK);
  const double gbps = bytes_moved / (time_ms * 1e-3) / 1e9;
  // dtype: the element type of the largest floating-point buffer (what the rate is quoted for)
  const char* vkc_dtype = "none";
  size_t vkc_dtype_n = 0;
  if (n_logits >= vkc_dtype_n) { vkc_dtype_n = n_logits; vkc_dtype = "float"; }
  if (n_outLogitsAux >= vkc_dtype_n) { vkc_dtype_n = n_outLogitsAux; vkc_dtype = "float"; }

  std::printf("RESULT kernel=%s model=%s workload=%s config=%s time_ms=%.6f GB/s=%.3f bytes=%.0f dtype=%s "
              "gpu=%s stat=median warmup=%d reps=%d l2_flush_MiB=%.0f\n",
              "topKPerRowDecode", "Qwen/Qwen3-Coder-480B-A35B-Instruct", "decode",
              small_sanity ? "SMALL" : "FULL", time_ms, gbps, bytes_moved, vkc_dtype,
              vkc_gpu.c_str(), warmup, iters, flush_bytes / 1048576.0);

  VKC_CHECK(cudaFree(logits));
  VKC_CHECK(cudaFree(seqLens));
  VKC_CHECK(cudaFree(outIndicesAux));
  VKC_CHECK(cudaFree(outLogitsAux));
  VKC_CHECK(cudaStreamDestroy(stream));
  return 0;
}
