// Fixture: norm_kernel's template changes in tree b (a second template parameter).
#include <cuda_runtime.h>

namespace vllm {

template <typename scalar_t>
__global__ void norm_kernel(scalar_t* __restrict__ out, const scalar_t* __restrict__ in, float eps, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) {
    float v = static_cast<float>(in[i]);
    out[i] = static_cast<scalar_t>(v / (fabsf(v) + eps));
  }
}

}  // namespace vllm

void norm(float* out, const float* in, float eps, int n, cudaStream_t stream) {
  vllm::norm_kernel<float><<<(n + 255) / 256, 256, 0, stream>>>(out, in, eps, n);
}
