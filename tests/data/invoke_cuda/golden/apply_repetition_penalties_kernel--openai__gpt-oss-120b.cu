// vkc 0.1.0 -- invocation example: CUDA host program for one vLLM kernel
// vLLM: 0.33.0 (sdist vllm-0.33.0.tar.gz, sha256 f4c33c2503d52bb411146afa9618a4f48bed68912f617e6803ac8d76e4c74112)
// KERNEL: vllm::apply_repetition_penalties_kernel at csrc/sampler.cu:16
// WRAPPER: csrc/sampler.cu:762 (apply_repetition_penalties_)
// MODEL_NAME: openai/gpt-oss-120b
//   H_q=64 H_kv=8 Dh=64 hidden_size=2880 max_ctx=131072 dtype=bfloat16
//   intermediate_size=2880 num_experts=128 top_k=4 moe_intermediate_size=2880 kv_lora_rank=n/a qk_rope_head_dim=n/a rms_norm_eps=1e-05
//   flags: sliding_window=128, rope_scaling=yarn, qkv_bias, attention_sinks, moe=128x top4
//   warning: using vkc's bundled snapshot of openai/gpt-oss-120b's config.json (offline); it may differ from the current hub file
//   warning: head_dim * num_attention_heads = 64*64 = 4096 != hidden_size 2880; the explicit head_dim 64 is used
//   warning: weights are quantized (quantization_config.quant_method=mxfp4); dtype is the unquantized activation dtype
//   warning: config.json has no torch_dtype/dtype key; assuming bfloat16
//   warning: Dh*H_q = 4096 != hidden_size 2880 (explicit head_dim kept)
// WORKLOAD: decode (inferred: csrc/sampler.cu:apply_repetition_penalties_kernel's wrapper runs decode and prefill; decode is its recipe's default)
// invocation: recipe (model-accurate): recipe sampler: csrc/sampler.cu:762 (apply_repetition_penalties_)
// INSTANTIATION: vllm::apply_repetition_penalties_kernel<float>
//   dispatch: VLLM_STABLE_DISPATCH_FLOATING_TYPES(logits float32 -> float)
// GRID: dim3(num_seqs, min(vocab_size, max(1, ceil(sms / num_seqs))))  BLOCK: min(ceil(vocab_size / tile_num), 1024)  SMEM: 0 bytes
// SIZING: num_seqs_ll fills ~20% of free GPU memory clamped to [2 GiB, 8 GiB] (SMALL_SANITY=1: 4); logits fp32 + two bool masks per sequence
// CONFIG: https://huggingface.co/openai/gpt-oss-120b/blob/main/config.json
// CONFIG: vkc bundled snapshot snapshots/openai__gpt-oss-120b.json
// COMMAND: vkc apply_repetition_penalties_kernel --model openai/gpt-oss-120b
// BUILD: nvcc -std=c++17 -arch=sm_90 --expt-relaxed-constexpr --expt-extended-lambda -DENABLE_FP8 -I$(python -c 'import torch,os;print(os.path.join(os.path.dirname(torch.__file__),"include"))') -o apply_repetition_penalties_kernel apply_repetition_penalties_kernel_main.cu
// RUN: ./apply_repetition_penalties_kernel   (env: SMALL_SANITY=1 small shapes; VKC_DUMP_DIR=<dir> dumps buffers + manifest.txt)
// PRINTS: RESULT kernel=<name> model=<id> workload=<w> config=FULL|SMALL time_ms=<x> GB/s=<y>
// NOTE: the masks are uint8_t 0/1 buffers passed as const bool* (the kernel's bool layout); GB/s counts logits read+write and both masks (the kernel reads every mask byte)
// NOTE: repeated launches rescale the repeated logits again (values stay finite: 1.5^24 * 10)
#include "apply_repetition_penalties_kernel.cu"

// VKC_INSTANTIATE: vllm::apply_repetition_penalties_kernel<float>
#define VKC_KERNEL vllm::apply_repetition_penalties_kernel<float>

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
  // model: vocab_size
  // replaces csrc/sampler.cu:772: int vocab_size = logits.size(-1);
  const int vocab_size = 201088;
  // dispatch: VLLM_STABLE_DISPATCH_FLOATING_TYPES(float32)
  // the V1 sampler works on float32 logits and float32 penalties
  using scalar_t = float;

  // ---- live-set sizing: ~20% of free memory clamped to [2 GiB, 8 GiB]
  size_t free_bytes = 0, total_bytes = 0;
  VKC_CHECK(cudaMemGetInfo(&free_bytes, &total_bytes));
  const size_t budget_bytes =
      std::min<size_t>(std::max<size_t>(free_bytes / 5, 2ULL << 30), 8ULL << 30);
  // logits fp32 + two bool masks per sequence
  const size_t vkc_bytes_per_unit = (size_t)((size_t)vocab_size * (4 + 1 + 1) + 4);
  const size_t vkc_fixed_bytes = (size_t)(0);
  long long num_seqs_ll = 4;
  if (!small_sanity) {
    long long fit = budget_bytes > vkc_fixed_bytes
                        ? (long long)((budget_bytes - vkc_fixed_bytes) / std::max<size_t>(vkc_bytes_per_unit, 1))
                        : 0;
    fit = std::min<long long>(fit, (long long)(1024));
    fit = fit / 1 * 1;
    num_seqs_ll = std::max<long long>(fit, 1);
  }

  // ---- sizes that follow from num_seqs_ll
  // vkc: one logits row per sequence being sampled
  const int num_seqs = (int)num_seqs_ll;

  // ---- device buffers (deterministic, valid contents)
  // logits: scalar_t [num_seqs, vocab_size] fp32, in place; uniform [-10.0f, 10.0f)
  const size_t n_logits = (size_t)((size_t)num_seqs * vocab_size);
  scalar_t* logits = nullptr;
  VKC_CHECK(cudaMalloc(&logits, std::max<size_t>(n_logits, 1) * sizeof(scalar_t)));
  vkc_host::fill_uniform<<<vkc_host::fill_blocks(n_logits), 256, 0, stream>>>(logits, n_logits, 3057528191ULL, -10.0f, 10.0f);
  VKC_CHECK(cudaGetLastError());
  // prompt_mask: uint8_t [num_seqs, vocab_size] bool (0/1 bytes): ~1/64 of the vocab is in the prompt; host-side init
  const size_t n_prompt_mask = (size_t)((size_t)num_seqs * vocab_size);
  uint8_t* prompt_mask = nullptr;
  VKC_CHECK(cudaMalloc(&prompt_mask, std::max<size_t>(n_prompt_mask, 1) * sizeof(uint8_t)));
  std::vector<uint8_t> h_prompt_mask(n_prompt_mask);
  {
    std::vector<uint8_t>& h = h_prompt_mask;
    const size_t n = n_prompt_mask;
    vkc_host::Rng rng(933140079ULL);
    (void)n; (void)rng;
    for (size_t i = 0; i < n; ++i) h[i] = (uint8_t)(rng.next() % 64 == 0);
  }
  VKC_CHECK(cudaMemcpy(prompt_mask, h_prompt_mask.data(), n_prompt_mask * sizeof(uint8_t), cudaMemcpyHostToDevice));
  VKC_CHECK(cudaGetLastError());
  // output_mask: uint8_t [num_seqs, vocab_size] bool (0/1 bytes): ~1/256 of the vocab was generated; host-side init
  const size_t n_output_mask = (size_t)((size_t)num_seqs * vocab_size);
  uint8_t* output_mask = nullptr;
  VKC_CHECK(cudaMalloc(&output_mask, std::max<size_t>(n_output_mask, 1) * sizeof(uint8_t)));
  std::vector<uint8_t> h_output_mask(n_output_mask);
  {
    std::vector<uint8_t>& h = h_output_mask;
    const size_t n = n_output_mask;
    vkc_host::Rng rng(1935633130ULL);
    (void)n; (void)rng;
    for (size_t i = 0; i < n; ++i) h[i] = (uint8_t)(rng.next() % 256 == 0);
  }
  VKC_CHECK(cudaMemcpy(output_mask, h_output_mask.data(), n_output_mask * sizeof(uint8_t), cudaMemcpyHostToDevice));
  VKC_CHECK(cudaGetLastError());
  // repetition_penalties: scalar_t [num_seqs] >= 1 (typical repetition_penalty values); uniform [1.0f, 1.5f)
  const size_t n_repetition_penalties = (size_t)(num_seqs);
  scalar_t* repetition_penalties = nullptr;
  VKC_CHECK(cudaMalloc(&repetition_penalties, std::max<size_t>(n_repetition_penalties, 1) * sizeof(scalar_t)));
  vkc_host::fill_uniform<<<vkc_host::fill_blocks(n_repetition_penalties), 256, 0, stream>>>(repetition_penalties, n_repetition_penalties, 447690764ULL, 1.0f, 1.5f);
  VKC_CHECK(cudaGetLastError());
  VKC_CHECK(cudaStreamSynchronize(stream));

  // ---- launch configuration, as the wrapper computes it
  // from csrc/sampler.cu:778
  int sms = 0;
  // binds csrc/sampler.cu:779: cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, logits.get_device_index());
  VKC_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0));
  // from csrc/sampler.cu:783
  int tile_num = std::min(vocab_size, std::max(1, (sms + num_seqs - 1) / num_seqs));
  // from csrc/sampler.cu:785
  int tile_size = (vocab_size + tile_num - 1) / tile_num;
  // from csrc/sampler.cu:788
  dim3 grid(num_seqs, tile_num);
  // from csrc/sampler.cu:789
  dim3 block(std::min(tile_size, 1024));
  const dim3 vkc_grid = grid;
  const dim3 vkc_block = block;
  const size_t vkc_smem = (size_t)(0);

  if (dump_dir != nullptr) {
    vkc_host::dump(dump_dir, "logits", "in", logits, n_logits);
    vkc_host::dump(dump_dir, "prompt_mask", "in", prompt_mask, n_prompt_mask);
    vkc_host::dump(dump_dir, "output_mask", "in", output_mask, n_output_mask);
    vkc_host::dump(dump_dir, "repetition_penalties", "in", repetition_penalties, n_repetition_penalties);
  }

  // ---- first launch, checked
  VKC_KERNEL<<<vkc_grid, vkc_block, vkc_smem, stream>>>(
      logits,
      reinterpret_cast<const bool*>(prompt_mask),
      reinterpret_cast<const bool*>(output_mask),
      repetition_penalties,
      num_seqs,
      vocab_size,
      tile_size);
  VKC_CHECK(cudaGetLastError());
  VKC_CHECK(cudaStreamSynchronize(stream));

  if (dump_dir != nullptr) {
    vkc_host::dump(dump_dir, "logits", "out", logits, n_logits);
    std::string mpath = std::string(dump_dir) + "/manifest.txt";
    FILE* mf = std::fopen(mpath.c_str(), "w");
    VKC_REQUIRE(mf != nullptr, "cannot write VKC_DUMP_DIR/manifest.txt");
    std::fprintf(mf, "scale num_seqs_ll %lld\n", (long long)num_seqs_ll);
    std::fprintf(mf, "buffer logits inout %zu %zu scalar_t\n", sizeof(scalar_t), n_logits);
    std::fprintf(mf, "buffer prompt_mask in %zu %zu uint8_t\n", sizeof(uint8_t), n_prompt_mask);
    std::fprintf(mf, "buffer output_mask in %zu %zu uint8_t\n", sizeof(uint8_t), n_output_mask);
    std::fprintf(mf, "buffer repetition_penalties in %zu %zu scalar_t\n", sizeof(scalar_t), n_repetition_penalties);
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
    VKC_KERNEL<<<vkc_grid, vkc_block, vkc_smem, stream>>>(logits, reinterpret_cast<const bool*>(prompt_mask), reinterpret_cast<const bool*>(output_mask), repetition_penalties, num_seqs, vocab_size, tile_size);
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
    VKC_KERNEL<<<vkc_grid, vkc_block, vkc_smem, stream>>>(logits, reinterpret_cast<const bool*>(prompt_mask), reinterpret_cast<const bool*>(output_mask), repetition_penalties, num_seqs, vocab_size, tile_size);
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
  const double bytes_moved = (double)((double)num_seqs * vocab_size * (2.0 * 4 + 2.0) + 4.0 * num_seqs);
  const double gbps = bytes_moved / (time_ms * 1e-3) / 1e9;
  // dtype: the element type of the largest floating-point buffer (what the rate is quoted for)
  const char* vkc_dtype = "none";
  size_t vkc_dtype_n = 0;

  std::printf("RESULT kernel=%s model=%s workload=%s config=%s time_ms=%.6f GB/s=%.3f bytes=%.0f dtype=%s "
              "gpu=%s stat=median warmup=%d reps=%d l2_flush_MiB=%.0f\n",
              "apply_repetition_penalties_kernel", "openai/gpt-oss-120b", "decode",
              small_sanity ? "SMALL" : "FULL", time_ms, gbps, bytes_moved, vkc_dtype,
              vkc_gpu.c_str(), warmup, iters, flush_bytes / 1048576.0);

  VKC_CHECK(cudaFree(logits));
  VKC_CHECK(cudaFree(prompt_mask));
  VKC_CHECK(cudaFree(output_mask));
  VKC_CHECK(cudaFree(repetition_penalties));
  VKC_CHECK(cudaStreamDestroy(stream));
  return 0;
}
