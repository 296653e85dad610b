// Batch fixture: one plain CUDA kernel and its host launcher.
#include <cuda_runtime.h>

__global__ void tiny_scale_kernel(float* __restrict__ out, const float* __restrict__ in,
                                  float scale, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) out[i] = in[i] * scale;
}

void tiny_scale(float* out, const float* in, float scale, int n) {
  const int threads = 256;
  const int blocks = (n + threads - 1) / threads;
  tiny_scale_kernel<<<blocks, threads>>>(out, in, scale, n);
}
