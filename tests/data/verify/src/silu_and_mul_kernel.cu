// silu_and_mul_kernel from csrc/activation_kernels.cu (vLLM 0.33.0), self-contained.
// The host launches it as vllm::silu_and_mul_kernel<T><<<num_tokens, min(d, 1024)>>>(...);
// that launch lives in the invocation example, not here (no main() in this unit).
#include <cuda_runtime.h>
#include <cuda_bf16.h>
#include <cstdint>

namespace vllm {

template <typename T>
__device__ __forceinline__ float to_float(T v);
template <>
__device__ __forceinline__ float to_float<__half>(__half v) { return __half2float(v); }
template <>
__device__ __forceinline__ float to_float<__nv_bfloat16>(__nv_bfloat16 v) { return __bfloat162float(v); }

template <typename T>
__device__ __forceinline__ T from_float(float v);
template <>
__device__ __forceinline__ __half from_float<__half>(float v) { return __float2half(v); }
template <>
__device__ __forceinline__ __nv_bfloat16 from_float<__nv_bfloat16>(float v) { return __float2bfloat16(v); }

__device__ __forceinline__ float silu(float x) { return x / (1.0f + __expf(-x)); }

// out[t, i] = silu(input[t, i]) * input[t, d + i]
template <typename scalar_t>
__global__ void silu_and_mul_kernel(scalar_t* __restrict__ out,
                                    const scalar_t* __restrict__ input,
                                    const int d) {
  const int64_t token_idx = blockIdx.x;
  const int half = d / 2;  // an identifier named half is not the half type
  (void)half;
  for (int64_t idx = threadIdx.x; idx < d; idx += blockDim.x) {
    const float x = to_float(input[token_idx * 2 * d + idx]);
    const float y = to_float(input[token_idx * 2 * d + d + idx]);
    out[token_idx * d + idx] = from_float<scalar_t>(silu(x) * y);
  }
}

}  // namespace vllm
