// Batch fixture: a ROCm-only kernel (under csrc/rocm/); --all does not dispatch it.
#include <hip/hip_runtime.h>

__global__ void tiny_rocm_kernel(float* out, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) out[i] = 0.0f;
}

void tiny_rocm(float* out, int n) {
  tiny_rocm_kernel<<<(n + 255) / 256, 256>>>(out, n);
}
