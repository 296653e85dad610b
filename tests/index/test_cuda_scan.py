"""scan_cuda on a small synthetic tree (fast, no sdist needed)."""
from __future__ import annotations

from pathlib import Path

from vkc.cxx import model
from vkc.index.cuda_scan import scan_cuda
from vkc.records import SourceTree

SRC = '''#include "torch_utils.h"
#define DINLINE __device__ __forceinline__
namespace vllm {
template <typename T, int N>
__global__ void __launch_bounds__(256) k1(T* out, const T* __restrict__ in, int n) { out[0] = in[0]; }

template <typename T>
__global__ std::enable_if_t<(sizeof(T) > 2)> k2(T* x) {}
template <typename T>
__global__ std::enable_if_t<(sizeof(T) <= 2)> k2(T* x) {}
#ifdef USE_ROCM
__global__ void amd_only(int* x) {}
#endif
}  // namespace vllm

#define LAUNCH_K2(T) vllm::k2<T><<<grid, block, 0, stream>>>(p);

void host(int n) {
  vllm::k1<float, 4><<<dim3(n), dim3(256), 0, stream>>>(a, b, n);
  auto kern = vllm::k1<float, 8>;
  kern<<<1, 2>>>(a, b, n);
  LAUNCH_K2(float)
}
'''


def test_scan_synthetic(tmp_path: Path):
    (tmp_path / "csrc").mkdir()
    (tmp_path / "csrc" / "x.cu").write_text(SRC)
    (tmp_path / "csrc" / "cpu").mkdir()
    (tmp_path / "csrc" / "cpu" / "y.cu").write_text("__global__ void cpu_k() {}\n")
    model.file_model.cache_clear()
    ks = scan_cuda(SourceTree(tmp_path, "test", str(tmp_path)))
    by = {k.qualified: k for k in ks}
    assert sorted(by) == ["csrc/x.cu:amd_only", "csrc/x.cu:k1", "csrc/x.cu:k2@10", "csrc/x.cu:k2@8"]
    k1 = by["csrc/x.cu:k1"]
    assert k1.qualname == "vllm::k1" and k1.line == 5 and k1.template_params == ("typename T", "int N")
    assert [(s.form, s.line, s.wrapper) for s in k1.launch_sites] == [("chevron", 19, "host"), ("chevron", 21, "host")]
    assert k1.launch_sites[0].text.startswith("vllm::k1<float, 4><<<dim3(n)")
    assert by["csrc/x.cu:amd_only"].rocm_only and not k1.rocm_only
    k2 = by["csrc/x.cu:k2@8"]
    assert [(s.form, s.line, s.wrapper) for s in k2.launch_sites] == [("macro", 16, "host")]
