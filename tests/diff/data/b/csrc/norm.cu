// Fixture: norm_kernel's template changes in tree b (a second template parameter).
#include <cuda_runtime.h>

namespace vllm {

template <typename scalar_t, int VEC>
__global__ void norm_kernel(scalar_t* __restrict__ out, const scalar_t* __restrict__ in, float eps, int n) {
  int i = (blockIdx.x * blockDim.x + threadIdx.x) * VEC;
  for (int j = 0; j < VEC && i + j < n; ++j) {
    float v = static_cast<float>(in[i + j]);
    out[i + j] = static_cast<scalar_t>(v / (fabsf(v) + eps));
  }
}

}  // namespace vllm

void norm(float* out, const float* in, float eps, int n, cudaStream_t stream) {
  vllm::norm_kernel<float, 4><<<(n + 1023) / 1024, 256, 0, stream>>>(out, in, eps, n);
}
