// Fixture: this file moves to csrc/new_dir/act.cu in tree b (same content).
#include <cuda_runtime.h>

namespace vllm {

__device__ __forceinline__ float silu(float x) { return x / (1.0f + expf(-x)); }

__global__ void silu_kernel(float* __restrict__ out, const float* __restrict__ in, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) {
    out[i] = silu(in[i]);
  }
}

}  // namespace vllm

void silu(float* out, const float* in, int n, cudaStream_t stream) {
  dim3 grid((n + 255) / 256);
  dim3 block(256);
  vllm::silu_kernel<<<grid, block, 0, stream>>>(out, in, n);
}
