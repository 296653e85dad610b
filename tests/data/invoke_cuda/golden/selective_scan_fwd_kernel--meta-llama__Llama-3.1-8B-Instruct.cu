// vkc 0.1.0 -- invocation example: CUDA host program for one vLLM kernel
// vLLM: 0.33.0 (sdist vllm-0.33.0.tar.gz, sha256 f4c33c2503d52bb411146afa9618a4f48bed68912f617e6803ac8d76e4c74112)
// KERNEL: selective_scan_fwd_kernel at csrc/mamba/selective_scan_fwd.cu:69
// WRAPPER: csrc/mamba/selective_scan_fwd.cu:394 (selective_scan_fwd_launch, from selective_scan_fwd at csrc/mamba/selective_scan_fwd.cu:648)
// MODEL_NAME: meta-llama/Llama-3.1-8B-Instruct
//   H_q=32 H_kv=8 Dh=128 hidden_size=4096 max_ctx=131072 dtype=bfloat16
//   intermediate_size=14336 num_experts=n/a top_k=n/a moe_intermediate_size=n/a kv_lora_rank=n/a qk_rope_head_dim=n/a rms_norm_eps=1e-05
//   flags: rope_scaling=llama3
//   warning: using vkc's bundled snapshot of meta-llama/Llama-3.1-8B-Instruct's config.json (offline); it may differ from the current hub file
// WORKLOAD: prefill (inferred: csrc/mamba/selective_scan_fwd.cu:selective_scan_fwd_kernel's wrapper runs prefill; prefill is its recipe's default)
// invocation: recipe (model-accurate): recipe mamba: csrc/mamba/selective_scan_fwd.cu:394 (selective_scan_fwd_launch, from selective_scan_fwd at csrc/mamba/selective_scan_fwd.cu:648)
// INSTANTIATION: selective_scan_fwd_kernel<Selective_Scan_fwd_kernel_traits<128, 16, 1, true, true, true, true, true, c10::BFloat16, float, c10::BFloat16>>
//   dispatch: DISPATCH_WTYPE_ITYPE(u bfloat16 -> c10::BFloat16, weight float, state c10::BFloat16); selective_scan_fwd_cuda: seqlen > 1024 -> <128, 16>; BOOL dispatch kIsEvenLen=true, kHasZ=true, kVarlen=true
// GRID: dim3(batch, dim / kNRows)  BLOCK: Ktraits::kNThreads  SMEM: Ktraits::kSmemSize + kNRows * MAX_DSTATE * sizeof(scan_t) bytes
// SIZING: batch_ll fills ~20% of free GPU memory clamped to [2 GiB, 8 GiB] (SMALL_SANITY=1: 1); per sequence: u, delta, z [dim, prompt_len] + B, C [dstate, prompt_len] + its state
// CONFIG: https://huggingface.co/meta-llama/Llama-3.1-8B-Instruct/blob/main/config.json
// CONFIG: vkc bundled snapshot snapshots/meta-llama__Llama-3.1-8B-Instruct.json
// COMMAND: vkc selective_scan_fwd_kernel --model meta-llama/Llama-3.1-8B-Instruct
// BUILD: nvcc -std=c++17 -arch=sm_90 --expt-relaxed-constexpr --expt-extended-lambda -DENABLE_FP8 -I$(python -c 'import torch,os;print(os.path.join(os.path.dirname(torch.__file__),"include"))') -o selective_scan_fwd_kernel selective_scan_fwd_kernel_main.cu
// RUN: ./selective_scan_fwd_kernel   (env: SMALL_SANITY=1 small shapes; VKC_DUMP_DIR=<dir> dumps buffers + manifest.txt)
// PRINTS: RESULT kernel=<name> model=<id> workload=<w> config=FULL|SMALL time_ms=<x> GB/s=<y>
// NOTE: meta-llama/Llama-3.1-8B-Instruct has no Mamba layers: SSM sizes are the documented Mamba-1 defaults d_inner = 2 * hidden_size = 8192, d_state = 16, n_groups = 1; prefill batches of 2048-token prompts (varlen, as vLLM V1's MambaMixer calls it: z gate, D, delta_bias, delta_softplus, cache_indices, has_initial_state; no prefix caching)
// NOTE: delta and z are overwritten in place (out = delta, out_z = z), as in vLLM; repeated launches reuse them
#include "selective_scan_fwd_kernel.cu"

// VKC_INSTANTIATE: selective_scan_fwd_kernel<Selective_Scan_fwd_kernel_traits<128, 16, 1, true, true, true, true, true, c10::BFloat16, float, c10::BFloat16>>
#define VKC_KERNEL selective_scan_fwd_kernel<Selective_Scan_fwd_kernel_traits<128, 16, 1, true, true, true, true, true, c10::BFloat16, float, c10::BFloat16>>

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
  // model: Mamba-1 default d_inner = 2 * hidden_size (4096)
  const int dim = 8192;
  // model: Mamba-1 default d_state = 16
  // replaces csrc/mamba/selective_scan_fwd.cu:693: const int dstate = A.size(1);
  const int dstate = 16;
  // model: Mamba-1: one B/C group
  const int n_groups = 1;
  // model: vkc: tokens per prefill sequence
  const int prompt_len = 2048;
  // dispatch: DISPATCH_WTYPE_ITYPE_FLOAT_AND_HALF_AND_BF16(u bfloat16)
  using input_t = c10::BFloat16;
  // dispatch: A is float32
  using weight_t = float;
  // dispatch: ssm_states in the model dtype (mamba_ssm_cache_dtype auto)
  using state_t = c10::BFloat16;
  // from csrc/mamba/selective_scan_fwd.cu:439
  // params.seqlen (total varlen tokens) > 1024 -> <128, 16>
  constexpr int kNThreads = 128;
  // same launch
  constexpr int kNItems = 16;
  // from csrc/mamba/selective_scan_fwd.cu:397
  constexpr int kNRows = 1;
  // from csrc/mamba/selective_scan_fwd.cu:404
  // kIsEvenLen = seqlen % (kNThreads * kNItems) == 0, kIsVariableB = kIsVariableC = true, kHasZ = true (gate), kVarlen = true (query_start_loc)
  using Ktraits = Selective_Scan_fwd_kernel_traits<128, 16, 1, true, true, true, true, true, c10::BFloat16, float, c10::BFloat16>;
  // binds csrc/mamba/selective_scan_fwd.cu:405: constexpr int kSmemSize = Ktraits::kSmemSize + kNRows * MAX_DSTATE * sizeof(typename Ktraits::scan_t);
  constexpr int kSmemSize = Ktraits::kSmemSize + kNRows * MAX_DSTATE * sizeof(Ktraits::scan_t);

  // ---- live-set sizing: ~20% of free memory clamped to [2 GiB, 8 GiB]
  size_t free_bytes = 0, total_bytes = 0;
  VKC_CHECK(cudaMemGetInfo(&free_bytes, &total_bytes));
  const size_t budget_bytes =
      std::min<size_t>(std::max<size_t>(free_bytes / 5, 2ULL << 30), 8ULL << 30);
  // per sequence: u, delta, z [dim, prompt_len] + B, C [dstate, prompt_len] + its state
  const size_t vkc_bytes_per_unit = (size_t)((size_t)prompt_len * ((size_t)dim * 2 * 3 + (size_t)n_groups * dstate * 2 * 2) + (size_t)dim * dstate * 2 + 16);
  const size_t vkc_fixed_bytes = (size_t)((size_t)dim * (dstate + 2) * 4);
  long long batch_ll = 1;
  if (!small_sanity) {
    long long fit = budget_bytes > vkc_fixed_bytes
                        ? (long long)((budget_bytes - vkc_fixed_bytes) / std::max<size_t>(vkc_bytes_per_unit, 1))
                        : 0;
    fit = std::min<long long>(fit, (long long)(512));
    fit = fit / 1 * 1;
    batch_ll = std::max<long long>(fit, 1);
  }

  // ---- sizes that follow from batch_ll
  // vkc: prefill sequences of prompt_len tokens each
  const int batch = (int)batch_ll;
  // varlen: u is [dim, total tokens]; seqlen = u.size(1)
  const int seqlen = batch * prompt_len;

  // ---- device buffers (deterministic, valid contents)
  // u: input_t [dim, total] conv1d output; uniform [-1.0f, 1.0f)
  const size_t n_u = (size_t)((size_t)dim * seqlen);
  input_t* u = nullptr;
  VKC_CHECK(cudaMalloc(&u, std::max<size_t>(n_u, 1) * sizeof(input_t)));
  vkc_host::fill_uniform<<<vkc_host::fill_blocks(n_u), 256, 0, stream>>>(u, n_u, 4067256894ULL, -1.0f, 1.0f);
  VKC_CHECK(cudaGetLastError());
  // delta: input_t [dim, total] dt (out = delta, in place); uniform [-1.0f, 1.0f)
  const size_t n_delta = (size_t)((size_t)dim * seqlen);
  input_t* delta = nullptr;
  VKC_CHECK(cudaMalloc(&delta, std::max<size_t>(n_delta, 1) * sizeof(input_t)));
  vkc_host::fill_uniform<<<vkc_host::fill_blocks(n_delta), 256, 0, stream>>>(delta, n_delta, 2521038553ULL, -1.0f, 1.0f);
  VKC_CHECK(cudaGetLastError());
  // A: weight_t [dim, dstate] = -(1..dstate); host-side init
  const size_t n_A = (size_t)((size_t)dim * dstate);
  weight_t* A = nullptr;
  VKC_CHECK(cudaMalloc(&A, std::max<size_t>(n_A, 1) * sizeof(weight_t)));
  std::vector<weight_t> h_A(n_A);
  {
    std::vector<weight_t>& h = h_A;
    const size_t n = n_A;
    vkc_host::Rng rng(3554254475ULL);
    (void)n; (void)rng;
    // S4D-real init: A[d, n] = -(n + 1)  (A = -exp(A_log), A_log = log(1..d_state))
    for (size_t i = 0; i < n; ++i) h[i] = -(float)(1 + (int)(i % (size_t)dstate));
  }
  VKC_CHECK(cudaMemcpy(A, h_A.data(), n_A * sizeof(weight_t), cudaMemcpyHostToDevice));
  VKC_CHECK(cudaGetLastError());
  // B: input_t [n_groups, dstate, total]; uniform [-1.0f, 1.0f)
  const size_t n_B = (size_t)((size_t)n_groups * dstate * seqlen);
  input_t* B = nullptr;
  VKC_CHECK(cudaMalloc(&B, std::max<size_t>(n_B, 1) * sizeof(input_t)));
  vkc_host::fill_uniform<<<vkc_host::fill_blocks(n_B), 256, 0, stream>>>(B, n_B, 1255198513ULL, -1.0f, 1.0f);
  VKC_CHECK(cudaGetLastError());
  // C: input_t [n_groups, dstate, total]; uniform [-1.0f, 1.0f)
  const size_t n_C = (size_t)((size_t)n_groups * dstate * seqlen);
  input_t* C = nullptr;
  VKC_CHECK(cudaMalloc(&C, std::max<size_t>(n_C, 1) * sizeof(input_t)));
  vkc_host::fill_uniform<<<vkc_host::fill_blocks(n_C), 256, 0, stream>>>(C, n_C, 1037565863ULL, -1.0f, 1.0f);
  VKC_CHECK(cudaGetLastError());
  // D: float [dim]; constant 1.0f
  const size_t n_D = (size_t)(dim);
  float* D = nullptr;
  VKC_CHECK(cudaMalloc(&D, std::max<size_t>(n_D, 1) * sizeof(float)));
  vkc_host::fill_const<<<vkc_host::fill_blocks(n_D), 256, 0, stream>>>(D, n_D, 1.0f);
  VKC_CHECK(cudaGetLastError());
  // z: input_t [dim, total] gate (out_z = z, in place); uniform [-1.0f, 1.0f)
  const size_t n_z = (size_t)((size_t)dim * seqlen);
  input_t* z = nullptr;
  VKC_CHECK(cudaMalloc(&z, std::max<size_t>(n_z, 1) * sizeof(input_t)));
  vkc_host::fill_uniform<<<vkc_host::fill_blocks(n_z), 256, 0, stream>>>(z, n_z, 1657960367ULL, -1.0f, 1.0f);
  VKC_CHECK(cudaGetLastError());
  // delta_bias: float [dim] dt_proj bias (softplus^-1 of dt in [0.0025, 0.13]); uniform [-6.0f, -2.0f)
  const size_t n_delta_bias = (size_t)(dim);
  float* delta_bias = nullptr;
  VKC_CHECK(cudaMalloc(&delta_bias, std::max<size_t>(n_delta_bias, 1) * sizeof(float)));
  vkc_host::fill_uniform<<<vkc_host::fill_blocks(n_delta_bias), 256, 0, stream>>>(delta_bias, n_delta_bias, 2822338809ULL, -6.0f, -2.0f);
  VKC_CHECK(cudaGetLastError());
  // ssm_states: state_t [batch + 1, dim, dstate]; slot 0 is NULL_BLOCK_ID; zeros
  const size_t n_ssm_states = (size_t)((size_t)(batch + 1) * dim * dstate);
  state_t* ssm_states = nullptr;
  VKC_CHECK(cudaMalloc(&ssm_states, std::max<size_t>(n_ssm_states, 1) * sizeof(state_t)));
  VKC_CHECK(cudaMemsetAsync(ssm_states, 0, n_ssm_states * sizeof(state_t), stream));
  VKC_CHECK(cudaGetLastError());
  // query_start_loc: int [batch + 1] = 0, prompt_len, 2 * prompt_len, ...; (i*prompt_len + 0) % ((long long)(batch + 1) * prompt_len)
  const size_t n_query_start_loc = (size_t)(batch + 1);
  int* query_start_loc = nullptr;
  VKC_CHECK(cudaMalloc(&query_start_loc, std::max<size_t>(n_query_start_loc, 1) * sizeof(int)));
  vkc_host::fill_affine<<<vkc_host::fill_blocks(n_query_start_loc), 256, 0, stream>>>(query_start_loc, n_query_start_loc, (long long)(prompt_len), (long long)(0), (long long)((long long)(batch + 1) * prompt_len));
  VKC_CHECK(cudaGetLastError());
  // cache_indices: int [batch] = 1..batch; (i*1 + 1) % (batch + 1)
  const size_t n_cache_indices = (size_t)(batch);
  int* cache_indices = nullptr;
  VKC_CHECK(cudaMalloc(&cache_indices, std::max<size_t>(n_cache_indices, 1) * sizeof(int)));
  vkc_host::fill_affine<<<vkc_host::fill_blocks(n_cache_indices), 256, 0, stream>>>(cache_indices, n_cache_indices, (long long)(1), (long long)(1), (long long)(batch + 1));
  VKC_CHECK(cudaGetLastError());
  // has_initial_state: bool [batch] all false (fresh prompts); zeros
  const size_t n_has_initial_state = (size_t)(batch);
  bool* has_initial_state = nullptr;
  VKC_CHECK(cudaMalloc(&has_initial_state, std::max<size_t>(n_has_initial_state, 1) * sizeof(bool)));
  VKC_CHECK(cudaMemsetAsync(has_initial_state, 0, n_has_initial_state * sizeof(bool), stream));
  VKC_CHECK(cudaGetLastError());
  VKC_CHECK(cudaStreamSynchronize(stream));

  // ---- launch configuration, as the wrapper computes it
  // from csrc/mamba/selective_scan_fwd.cu:795
  SSMParamsBase params;
  // from csrc/mamba/selective_scan_fwd.cu:538
  memset(&params, 0, sizeof(params));
  // from csrc/mamba/selective_scan_fwd.cu:540
  params.batch = batch;
  // from csrc/mamba/selective_scan_fwd.cu:541
  params.dim = dim;
  // from csrc/mamba/selective_scan_fwd.cu:542
  params.seqlen = seqlen;
  // from csrc/mamba/selective_scan_fwd.cu:543
  params.dstate = dstate;
  // from csrc/mamba/selective_scan_fwd.cu:544
  params.n_groups = n_groups;
  // from csrc/mamba/selective_scan_fwd.cu:545
  params.dim_ngroups_ratio = dim / n_groups;
  // binds csrc/mamba/selective_scan_fwd.cu:546: params.null_block_id = null_block_id;
  params.null_block_id = 0;
  // binds csrc/mamba/selective_scan_fwd.cu:548: params.delta_softplus = delta_softplus;
  params.delta_softplus = true;
  // binds csrc/mamba/selective_scan_fwd.cu:550: params.is_variable_B = is_variable_B;
  params.is_variable_B = true;
  // binds csrc/mamba/selective_scan_fwd.cu:551: params.is_variable_C = is_variable_C;
  params.is_variable_C = true;
  // binds csrc/mamba/selective_scan_fwd.cu:554: params.u_ptr = u.data_ptr();
  params.u_ptr = u;
  // binds csrc/mamba/selective_scan_fwd.cu:555: params.delta_ptr = delta.data_ptr();
  params.delta_ptr = delta;
  // binds csrc/mamba/selective_scan_fwd.cu:556: params.A_ptr = A.data_ptr();
  params.A_ptr = A;
  // binds csrc/mamba/selective_scan_fwd.cu:557: params.B_ptr = B.data_ptr();
  params.B_ptr = B;
  // binds csrc/mamba/selective_scan_fwd.cu:558: params.C_ptr = C.data_ptr();
  params.C_ptr = C;
  // binds csrc/mamba/selective_scan_fwd.cu:559: params.D_ptr = D.has_value() ? D.value().data_ptr() : nullptr;
  params.D_ptr = D;
  // binds csrc/mamba/selective_scan_fwd.cu:560: params.delta_bias_ptr = delta_bias.has_value() ? delta_bias.value().data_ptr() : nullptr;
  params.delta_bias_ptr = delta_bias;
  // binds csrc/mamba/selective_scan_fwd.cu:561: params.out_ptr = out.data_ptr();
  params.out_ptr = delta;  // out = delta
  // binds csrc/mamba/selective_scan_fwd.cu:562: params.ssm_states_ptr = ssm_states.data_ptr();
  params.ssm_states_ptr = ssm_states;
  // binds csrc/mamba/selective_scan_fwd.cu:563: params.z_ptr = has_z ? z.data_ptr() : nullptr;
  params.z_ptr = z;
  // binds csrc/mamba/selective_scan_fwd.cu:564: params.out_z_ptr = has_z ? out_z.data_ptr() : nullptr;
  params.out_z_ptr = z;  // out_z = z
  // binds csrc/mamba/selective_scan_fwd.cu:565: params.query_start_loc_ptr = query_start_loc.has_value() ? query_start_loc.value().data_ptr() : nullptr;
  params.query_start_loc_ptr = query_start_loc;
  // binds csrc/mamba/selective_scan_fwd.cu:566: params.cache_indices_ptr = cache_indices.has_value() ? cache_indices.value().data_ptr() : nullptr;
  params.cache_indices_ptr = cache_indices;
  // binds csrc/mamba/selective_scan_fwd.cu:567: params.has_initial_state_ptr = has_initial_state.has_value() ? has_initial_state.value().data_ptr() : nullptr;
  params.has_initial_state_ptr = has_initial_state;
  // binds csrc/mamba/selective_scan_fwd.cu:570: params.cache_enabled = block_idx_first_scheduled_token.has_value();
  params.cache_enabled = false;
  // binds csrc/mamba/selective_scan_fwd.cu:571: params.block_size = static_cast<int>(block_size);
  params.block_size = 1024;
  // binds csrc/mamba/selective_scan_fwd.cu:581: params.A_d_stride = A.stride(0);
  params.A_d_stride = dstate;
  // binds csrc/mamba/selective_scan_fwd.cu:582: params.A_dstate_stride = A.stride(1);
  params.A_dstate_stride = 1;
  // binds csrc/mamba/selective_scan_fwd.cu:585: params.B_batch_stride = B.stride(2);
  params.B_batch_stride = 1;
  // binds csrc/mamba/selective_scan_fwd.cu:586: params.B_group_stride = B.stride(0);
  params.B_group_stride = (size_t)dstate * seqlen;
  // binds csrc/mamba/selective_scan_fwd.cu:587: params.B_dstate_stride = B.stride(1);
  params.B_dstate_stride = seqlen;
  // binds csrc/mamba/selective_scan_fwd.cu:588: params.C_batch_stride = C.stride(2);
  params.C_batch_stride = 1;
  // binds csrc/mamba/selective_scan_fwd.cu:589: params.C_group_stride = C.stride(0);
  params.C_group_stride = (size_t)dstate * seqlen;
  // binds csrc/mamba/selective_scan_fwd.cu:590: params.C_dstate_stride = C.stride(1);
  params.C_dstate_stride = seqlen;
  // binds csrc/mamba/selective_scan_fwd.cu:592: params.u_batch_stride = u.stride(1);
  params.u_batch_stride = 1;
  // binds csrc/mamba/selective_scan_fwd.cu:593: params.u_d_stride = u.stride(0);
  params.u_d_stride = seqlen;
  // binds csrc/mamba/selective_scan_fwd.cu:594: params.delta_batch_stride = delta.stride(1);
  params.delta_batch_stride = 1;
  // binds csrc/mamba/selective_scan_fwd.cu:595: params.delta_d_stride = delta.stride(0);
  params.delta_d_stride = seqlen;
  // binds csrc/mamba/selective_scan_fwd.cu:597: params.z_batch_stride = z.stride(1);
  params.z_batch_stride = 1;
  // binds csrc/mamba/selective_scan_fwd.cu:598: params.z_d_stride = z.stride(0);
  params.z_d_stride = seqlen;
  // binds csrc/mamba/selective_scan_fwd.cu:599: params.out_z_batch_stride = out_z.stride(1);
  params.out_z_batch_stride = 1;
  // binds csrc/mamba/selective_scan_fwd.cu:600: params.out_z_d_stride = out_z.stride(0);
  params.out_z_d_stride = seqlen;
  // binds csrc/mamba/selective_scan_fwd.cu:602: params.out_batch_stride = out.stride(1);
  params.out_batch_stride = 1;
  // binds csrc/mamba/selective_scan_fwd.cu:603: params.out_d_stride = out.stride(0);
  params.out_d_stride = seqlen;
  // binds csrc/mamba/selective_scan_fwd.cu:605: params.ssm_states_batch_stride = ssm_states.stride(0);
  params.ssm_states_batch_stride = (size_t)dim * dstate;
  // binds csrc/mamba/selective_scan_fwd.cu:606: params.ssm_states_dim_stride = ssm_states.stride(1);
  params.ssm_states_dim_stride = dstate;
  // binds csrc/mamba/selective_scan_fwd.cu:607: params.ssm_states_dstate_stride = ssm_states.stride(2);
  params.ssm_states_dstate_stride = 1;
  // from csrc/mamba/selective_scan_fwd.cu:406
  dim3 grid(params.batch, params.dim / kNRows);
  // ---- runtime checks of the chosen instantiation against the wrapper's logic
  VKC_REQUIRE(seqlen % (kNThreads * kNItems) == 0, "kIsEvenLen = true is instantiated");
  VKC_REQUIRE(seqlen > 1024, "params.seqlen > 1024 picks <128, 16>");
  VKC_REQUIRE(dstate <= 256, "selective_scan only supports state dimension <= 256");
  const dim3 vkc_grid = grid;
  const dim3 vkc_block = dim3(Ktraits::kNThreads);
  const size_t vkc_smem = (size_t)(kSmemSize);
  // binds csrc/mamba/selective_scan_fwd.cu:407: auto kernel = &selective_scan_fwd_kernel<Ktraits>;
  auto kernel = &VKC_KERNEL;
  // binds csrc/mamba/selective_scan_fwd.cu:408: if (kSmemSize >= 48 * 1024) {
  if (kSmemSize >= 48 * 1024) { VKC_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, kSmemSize)); }

  if (dump_dir != nullptr) {
    vkc_host::dump(dump_dir, "u", "in", u, n_u);
    vkc_host::dump(dump_dir, "delta", "in", delta, n_delta);
    vkc_host::dump(dump_dir, "A", "in", A, n_A);
    vkc_host::dump(dump_dir, "B", "in", B, n_B);
    vkc_host::dump(dump_dir, "C", "in", C, n_C);
    vkc_host::dump(dump_dir, "D", "in", D, n_D);
    vkc_host::dump(dump_dir, "z", "in", z, n_z);
    vkc_host::dump(dump_dir, "delta_bias", "in", delta_bias, n_delta_bias);
    vkc_host::dump(dump_dir, "ssm_states", "in", ssm_states, n_ssm_states);
    vkc_host::dump(dump_dir, "query_start_loc", "in", query_start_loc, n_query_start_loc);
    vkc_host::dump(dump_dir, "cache_indices", "in", cache_indices, n_cache_indices);
    vkc_host::dump(dump_dir, "has_initial_state", "in", has_initial_state, n_has_initial_state);
  }

  // ---- first launch, checked
  VKC_KERNEL<<<vkc_grid, vkc_block, vkc_smem, stream>>>(
      params);
  VKC_CHECK(cudaGetLastError());
  VKC_CHECK(cudaStreamSynchronize(stream));

  if (dump_dir != nullptr) {
    vkc_host::dump(dump_dir, "delta", "out", delta, n_delta);
    vkc_host::dump(dump_dir, "z", "out", z, n_z);
    vkc_host::dump(dump_dir, "ssm_states", "out", ssm_states, n_ssm_states);
    std::string mpath = std::string(dump_dir) + "/manifest.txt";
    FILE* mf = std::fopen(mpath.c_str(), "w");
    VKC_REQUIRE(mf != nullptr, "cannot write VKC_DUMP_DIR/manifest.txt");
    std::fprintf(mf, "scale batch_ll %lld\n", (long long)batch_ll);
    std::fprintf(mf, "buffer u in %zu %zu input_t\n", sizeof(input_t), n_u);
    std::fprintf(mf, "buffer delta inout %zu %zu input_t\n", sizeof(input_t), n_delta);
    std::fprintf(mf, "buffer A in %zu %zu weight_t\n", sizeof(weight_t), n_A);
    std::fprintf(mf, "buffer B in %zu %zu input_t\n", sizeof(input_t), n_B);
    std::fprintf(mf, "buffer C in %zu %zu input_t\n", sizeof(input_t), n_C);
    std::fprintf(mf, "buffer D in %zu %zu float\n", sizeof(float), n_D);
    std::fprintf(mf, "buffer z inout %zu %zu input_t\n", sizeof(input_t), n_z);
    std::fprintf(mf, "buffer delta_bias in %zu %zu float\n", sizeof(float), n_delta_bias);
    std::fprintf(mf, "buffer ssm_states out %zu %zu state_t\n", sizeof(state_t), n_ssm_states);
    std::fprintf(mf, "buffer query_start_loc in %zu %zu int\n", sizeof(int), n_query_start_loc);
    std::fprintf(mf, "buffer cache_indices in %zu %zu int\n", sizeof(int), n_cache_indices);
    std::fprintf(mf, "buffer has_initial_state in %zu %zu bool\n", sizeof(bool), n_has_initial_state);
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
    VKC_KERNEL<<<vkc_grid, vkc_block, vkc_smem, stream>>>(params);
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
    VKC_KERNEL<<<vkc_grid, vkc_block, vkc_smem, stream>>>(params);
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
  const double bytes_moved = (double)((double)dim * seqlen * 2 * 5 + 2.0 * n_groups * dstate * seqlen * 2);
  const double gbps = bytes_moved / (time_ms * 1e-3) / 1e9;
  // dtype: the element type of the largest floating-point buffer (what the rate is quoted for)
  const char* vkc_dtype = "none";
  size_t vkc_dtype_n = 0;
  if (n_D >= vkc_dtype_n) { vkc_dtype_n = n_D; vkc_dtype = "float"; }
  if (n_delta_bias >= vkc_dtype_n) { vkc_dtype_n = n_delta_bias; vkc_dtype = "float"; }

  std::printf("RESULT kernel=%s model=%s workload=%s config=%s time_ms=%.6f GB/s=%.3f bytes=%.0f dtype=%s "
              "gpu=%s stat=median warmup=%d reps=%d l2_flush_MiB=%.0f\n",
              "selective_scan_fwd_kernel", "meta-llama/Llama-3.1-8B-Instruct", "prefill",
              small_sanity ? "SMALL" : "FULL", time_ms, gbps, bytes_moved, vkc_dtype,
              vkc_gpu.c_str(), warmup, iters, flush_bytes / 1048576.0);

  VKC_CHECK(cudaFree(u));
  VKC_CHECK(cudaFree(delta));
  VKC_CHECK(cudaFree(A));
  VKC_CHECK(cudaFree(B));
  VKC_CHECK(cudaFree(C));
  VKC_CHECK(cudaFree(D));
  VKC_CHECK(cudaFree(z));
  VKC_CHECK(cudaFree(delta_bias));
  VKC_CHECK(cudaFree(ssm_states));
  VKC_CHECK(cudaFree(query_start_loc));
  VKC_CHECK(cudaFree(cache_indices));
  VKC_CHECK(cudaFree(has_initial_state));
  VKC_CHECK(cudaStreamDestroy(stream));
  return 0;
}
