// Batch fixture: a MoE kernel under vLLM's file name, so the MoE recipe applies and
// reports "not applicable" for a dense model.
#include <cuda_runtime.h>
#include <stdint.h>

namespace vllm {
namespace moe {

template <typename scalar_t>
__global__ void moe_align_block_size_kernel(const scalar_t* __restrict__ topk_ids,
                                            int32_t* __restrict__ sorted_token_ids,
                                            int32_t num_experts, size_t numel) {
  size_t i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < numel) sorted_token_ids[i] = (int32_t)topk_ids[i] % num_experts;
}

}  // namespace moe
}  // namespace vllm

void moe_align_block_size(const int32_t* topk_ids, int32_t* sorted_token_ids, int32_t num_experts,
                          size_t numel) {
  int threads = 1024;
  vllm::moe::moe_align_block_size_kernel<int32_t>
      <<<1, threads>>>(topk_ids, sorted_token_ids, num_experts, numel);
}
