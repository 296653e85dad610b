// vkc 0.1.0 | vLLM 0.33.0 | kernel: silu_and_mul_kernel
// MODEL_NAME: none
// WORKLOAD: prefill
// dims: num_tokens=2048 d=11008 dtype=bfloat16
// grid=(num_tokens) block=(min(d, 1024)) smem_bytes=0
#include <algorithm>
#include <cstdio>
#include <cuda_runtime.h>

#include "silu_and_mul_kernel.cu"

int main() {
#ifdef SMALL_SANITY
  const int num_tokens = 4, d = 256;
#else
  const int num_tokens = 2048, d = 11008;
#endif
  __nv_bfloat16 *out = nullptr, *input = nullptr;
  cudaMalloc(&out, sizeof(__nv_bfloat16) * num_tokens * d);
  cudaMalloc(&input, sizeof(__nv_bfloat16) * num_tokens * 2 * d);
  cudaMemset(input, 0, sizeof(__nv_bfloat16) * num_tokens * 2 * d);
  dim3 grid(num_tokens);
  dim3 block(std::min(d, 1024));
  vllm::silu_and_mul_kernel<__nv_bfloat16><<<grid, block, 0>>>(out, input, d);
  cudaError_t err = cudaDeviceSynchronize();
  std::printf("silu_and_mul_kernel: %s\n", cudaGetErrorString(err));
  cudaFree(out);
  cudaFree(input);
  return err == cudaSuccess ? 0 : 1;
}
