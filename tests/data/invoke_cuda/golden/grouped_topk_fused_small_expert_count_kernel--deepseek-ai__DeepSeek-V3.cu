// vkc 0.1.0 -- invocation example: CUDA host program for one vLLM kernel
// vLLM: 0.33.0 (sdist vllm-0.33.0.tar.gz, sha256 f4c33c2503d52bb411146afa9618a4f48bed68912f617e6803ac8d76e4c74112)
// KERNEL: vllm::moe::grouped_topk_fused_small_expert_count_kernel at csrc/moe/grouped_topk_kernels.cu:639
// WRAPPER: csrc/moe/grouped_topk_kernels.cu:1280 (invokeNoAuxTc, from grouped_topk at csrc/moe/grouped_topk_kernels.cu:1403)
// MODEL_NAME: deepseek-ai/DeepSeek-V3
//   H_q=128 H_kv=128 Dh=192 hidden_size=7168 max_ctx=163840 dtype=bfloat16
//   intermediate_size=18432 num_experts=256 top_k=8 moe_intermediate_size=2048 kv_lora_rank=512 qk_rope_head_dim=64 rms_norm_eps=1e-06
//   flags: rope_scaling=yarn, mla, moe=256x top8
//   warning: using vkc's bundled snapshot of deepseek-ai/DeepSeek-V3's config.json (offline); it may differ from the current hub file
//   warning: weights are quantized (quantization_config.quant_method=fp8); dtype is the unquantized activation dtype
// WORKLOAD: decode (given)
// invocation: recipe (model-accurate): recipe moe_grouped: csrc/moe/grouped_topk_kernels.cu:1280 (invokeNoAuxTc, from grouped_topk at csrc/moe/grouped_topk_kernels.cu:1403)
// reference: forward_native vllm/model_executor/layers/fused_moe/router/grouped_topk_router.py:81 (grouped_topk)
// tolerance: topk_values (float32): atol=0.02 rtol=0 (test: tests/kernels/moe/test_grouped_topk.py:180)
//   topk_indices (int32): atol=0 rtol=0 (test: tests/kernels/moe/test_grouped_topk.py:182)
// reference notes: pieces: grouped_topk vllm/model_executor/layers/fused_moe/router/grouped_topk_router.py:81
//   not extracted (raise if reached): current_platform (vllm.platforms.current_platform)
//   grouped_topk (GroupedTopk.forward_native's native_impl) is what tests/kernels/moe/test_grouped_topk.py compares fused_grouped_topk (_moe_C::grouped_topk -> invokeNoAuxTc) against; sigmoid scoring only (fused_grouped_topk passes raw logits then, grouped_topk_router.py:42-53; with softmax it passes scores it computed, which the native path would softmax again); the gating tensor stands for hidden_states too (only its row count is read); the scores are passed upcast to float32, as the kernel reads them (static_cast<float>, grouped_topk_kernels.cu:690): with bf16 scores the native path rounds sigmoid(x) to bf16 before adding the float bias, which reorders near-tied experts (seen on an H200: DeepSeek-V3's 256 experts, bias within +-0.05, ids differed in most rows)
//   check: VKC_CHECK=1 (always at SMALL) poisons the outputs, launches once, dumps the buffers and runs the embedded script (python3, or VKC_PYTHON) against them; its verdict ends the RESULT line
// INSTANTIATION: vllm::moe::grouped_topk_fused_small_expert_count_kernel<__nv_bfloat16, float, int32_t, vllm::moe::SCORING_SIGMOID, 256, true>
//   dispatch: grouped_topk: scores bfloat16 -> T=__nv_bfloat16, bias float32 -> BiasT=float, IdxT=int32_t, scoring_func=sigmoid -> vllm::moe::SCORING_SIGMOID; vLLM's invokeNoAuxTc path for E=256, n_group=8, topk_group=4, top_k=8: grouped_topk_fused_small_expert_count_kernel<..., 256, true> (is_multi_group) for these sizes
// GRID: num_tokens  BLOCK: NumDeepseekExperts (256)  SMEM: 0 bytes
// SIZING: num_tokens_ll fills ~20% of free GPU memory clamped to [2 GiB, 8 GiB] (SMALL_SANITY=1: 8); router scores [T, E] + topk values/indices [T, k]
// CONFIG: https://huggingface.co/deepseek-ai/DeepSeek-V3/blob/main/config.json
// CONFIG: vkc bundled snapshot snapshots/deepseek-ai__DeepSeek-V3.json
// COMMAND: vkc grouped_topk_fused_small_expert_count_kernel --model deepseek-ai/DeepSeek-V3 --workload decode
// BUILD: nvcc -std=c++17 -arch=sm_90 --expt-relaxed-constexpr --expt-extended-lambda -DENABLE_FP8 -I$(python -c 'import torch,os;print(os.path.join(os.path.dirname(torch.__file__),"include"))') -o grouped_topk_fused_small_expert_count_kernel grouped_topk_fused_small_expert_count_kernel_main.cu
// RUN: ./grouped_topk_fused_small_expert_count_kernel   (env: SMALL_SANITY=1 small shapes; VKC_DUMP_DIR=<dir> dumps buffers + manifest.txt)
// PRINTS: RESULT kernel=<name> model=<id> workload=<w> config=FULL|SMALL time_ms=<x> GB/s=<y>
// NOTE: vLLM launches with cudaLaunchKernelEx + programmatic stream serialization (PDL when num_tokens <= 16); the plain <<<>>> launch has the same grid/block/smem/arguments
#include "grouped_topk_fused_small_expert_count_kernel.cu"

// VKC_INSTANTIATE: vllm::moe::grouped_topk_fused_small_expert_count_kernel<__nv_bfloat16, float, int32_t, vllm::moe::SCORING_SIGMOID, 256, true>
#define VKC_KERNEL vllm::moe::grouped_topk_fused_small_expert_count_kernel<__nv_bfloat16, float, int32_t, vllm::moe::SCORING_SIGMOID, 256, true>

#include <cuda_runtime.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>
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

// ==== reference check (VKC_CHECK=1, always at SMALL): the output buffers are poisoned (NaN / the integer
// minimum) before the checked launch, every buffer is dumped before it and the outputs after it, and the
// script below (vLLM's own PyTorch computation, see the header's `reference` lines) compares them; its
// verdict ends the RESULT line.  VKC_PYTHON: the Python with torch (default python3).
namespace vkc_check {

static const char* const kScript[] = {
    "\"\"\"vkc reference check of grouped_topk_fused_small_expert_count_kernel: vLLM's own PyTorch computation of the outputs, applied to the\012",
    "buffers the host program dumped before its checked launch, compared with what the launch wrote.\012",
    "\012",
    "Written and run by the host program (VKC_CHECK=1, always at SMALL): python3 vkc_check.py DIR, where DIR holds\012",
    "manifest.txt and NAME.in.bin / NAME.out.bin.  Prints one `check: ...` line per differing output and, last,\012",
    "`check=PASS|FAIL max_abs_err=... max_rel_err=... written=all|partial|unchecked`.\012",
    "\"\"\"\012",
    "import math\012",
    "import os\012",
    "import sys\012",
    "import types\012",
    "\012",
    "import torch\012",
    "\012",
    "\012",
    "class _Unextracted:\012",
    "    \"\"\"A vLLM object the reference reaches only on a path this launch does not take (vkc stub).\"\"\"\012",
    "\012",
    "    def __init__(self, what):\012",
    "        self.what = what\012",
    "\012",
    "    def __getattr__(self, name):\012",
    "        raise NotImplementedError(f\"not extracted by vkc: {self.what}\")\012",
    "\012",
    "    def __call__(self, *args, **kwargs):\012",
    "        raise NotImplementedError(f\"not extracted by vkc: {self.what}\")\012",
    "\012",
    "\012",
    "envs = types.SimpleNamespace(VLLM_USE_FUSED_MOE_GROUPED_TOPK=False, VLLM_BATCH_INVARIANT=True)  # bound by vkc's mapping: vllm/model_executor/layers/fused_moe/router/grouped_topk_router.py: envs\012",
    "\012",
    "\012",
    "fused_grouped_topk = None  # bound by vkc's mapping: vllm/model_executor/layers/fused_moe/router/grouped_topk_router.py: fused_grouped_topk\012",
    "\012",
    "\012",
    "current_platform = _Unextracted('vllm.platforms.current_platform')  # not extracted: raises if reached\012",
    "\012",
    "\012",
    "# from vllm/model_executor/layers/fused_moe/router/grouped_topk_router.py:81\012",
    "def grouped_topk(hidden_states, gating_output, topk, renormalize, num_expert_group=0, topk_group=0, scoring_func='softmax', routed_scaling_factor=1.0, e_score_correction_bias=None):\012",
    "    if envs.VLLM_USE_FUSED_MOE_GROUPED_TOPK and (current_platform.is_cuda() or current_platform.is_xpu()) and (num_expert_group <= 32) and (topk <= 32) and (e_score_correction_bias is not None):\012",
    "        return fused_grouped_topk(hidden_states=hidden_states, gating_output=gating_output, topk=topk, renormalize=renormalize, e_score_correction_bias=e_score_correction_bias, num_expert_group=num_expert_group, topk_group=topk_group, scoring_func=scoring_func, routed_scaling_factor=routed_scaling_factor)\012",
    "    assert hidden_states.size(0) == gating_output.size(0), 'Number of tokens mismatch'\012",
    "    if scoring_func == 'softmax':\012",
    "        scores = torch.softmax(gating_output, dim=-1)\012",
    "    elif scoring_func == 'sigmoid':\012",
    "        scores = gating_output.sigmoid()\012",
    "    else:\012",
    "        raise ValueError(f'Unsupported scoring function: {scoring_func}')\012",
    "    num_token = scores.size(0)\012",
    "    if e_score_correction_bias is not None:\012",
    "        original_scores = scores\012",
    "        scores = scores + e_score_correction_bias.unsqueeze(0)\012",
    "        group_scores = scores.view(num_token, num_expert_group, -1).topk(2, dim=-1)[0].sum(dim=-1)\012",
    "    else:\012",
    "        group_scores = scores.view(num_token, num_expert_group, -1).max(dim=-1).values\012",
    "    use_sorted = envs.VLLM_BATCH_INVARIANT\012",
    "    group_idx = torch.topk(group_scores, k=topk_group, dim=-1, sorted=use_sorted)[1]\012",
    "    group_mask = torch.zeros_like(group_scores)\012",
    "    group_mask.scatter_(1, group_idx, 1)\012",
    "    score_mask = group_mask.unsqueeze(-1).expand(num_token, num_expert_group, scores.size(-1) // num_expert_group).reshape(num_token, -1)\012",
    "    tmp_scores = scores.masked_fill(~score_mask.bool(), float('-inf'))\012",
    "    if e_score_correction_bias is not None:\012",
    "        topk_ids = torch.topk(tmp_scores, k=topk, dim=-1, sorted=use_sorted)[1]\012",
    "        topk_weights = original_scores.gather(1, topk_ids)\012",
    "    else:\012",
    "        topk_weights, topk_ids = torch.topk(tmp_scores, k=topk, dim=-1, sorted=use_sorted)\012",
    "    if renormalize:\012",
    "        topk_weights = topk_weights / topk_weights.sum(dim=-1, keepdim=True)\012",
    "    if routed_scaling_factor != 1.0:\012",
    "        topk_weights = topk_weights * routed_scaling_factor\012",
    "    return (topk_weights.to(torch.float32), topk_ids.to(torch.int32))\012",
    "\012",
    "\012",
    "# how the example's buffers become the reference's arguments (vkc.reference.cuda_table): \"wrapped\" -- the op's\012",
    "# arguments by schema name, tensors as the traced views of the dumped storages; \"host\" -- the device buffers by\012",
    "# host variable name (flat), with the manifest's values as ``v``\012",
    "MODE = 'host'\012",
    "# wrapped: per configuration, schema argument -> (storage, dtype, sizes, strides, offset), and the other arguments\012",
    "VIEWS = {}\012",
    "VALUES = {\012",
    "    'host': {\012",
    "        'template_args': ['__nv_bfloat16', 'float', 'int32_t', 'vllm::moe::SCORING_SIGMOID', '256', 'true'],\012",
    "    },\012",
    "}\012",
    "# (buffer, element of the reference's result (None: the result itself), poisoned before the launch,\012",
    "# (atol, rtol) by dtype, the compared part of the buffer as an expression over t and v (\"\": all of it))\012",
    "REFERENCE_OUTPUTS = [\012",
    "    ('topk_values', 0, True, {'float32': (0.02, 0.0)}, ''),\012",
    "    ('topk_indices', 1, True, {'int32': (0.0, 0.0)}, ''),\012",
    "]\012",
    "CTYPES = {\012",
    "    'c10::BFloat16': 'bfloat16',\012",
    "    '__nv_bfloat16': 'bfloat16',\012",
    "    'c10::Half': 'float16',\012",
    "    '__half': 'float16',\012",
    "    'half': 'float16',\012",
    "    'float': 'float32',\012",
    "    'double': 'float64',\012",
    "    'c10::Float8_e4m3fn': 'float8_e4m3fn',\012",
    "    '__nv_fp8_e4m3': 'float8_e4m3fn',\012",
    "    'c10::Float8_e5m2': 'float8_e5m2',\012",
    "    '__nv_fp8_e5m2': 'float8_e5m2',\012",
    "    'int8_t': 'int8',\012",
    "    'uint8_t': 'uint8',\012",
    "    'int16_t': 'int16',\012",
    "    'int': 'int32',\012",
    "    'int32_t': 'int32',\012",
    "    'int64_t': 'int64',\012",
    "    'long': 'int64',\012",
    "    'bool': 'bool',\012",
    "    'BiasT': 'float32',\012",
    "    'IdxT': 'int32',\012",
    "    'T': 'bfloat16',\012",
    "}\012",
    "\012",
    "\012",
    "def reference(a, v):\012",
    "    \"\"\"vLLM's reference applied to the example's arguments ``a`` and values ``v`` (vkc's mapping).\"\"\"\012",
    "    ns = types.SimpleNamespace  # noqa: F841\012",
    "    device = next((x.device for x in a.values() if isinstance(x, torch.Tensor)), torch.device(\"cpu\"))\012",
    "    with torch.device(device):\012",
    "        return grouped_topk(\012",
    "            hidden_states=a['scores'].view(-1, int(v['num_experts'])),\012",
    "            gating_output=a['scores'].view(-1, int(v['num_experts'])).float(),\012",
    "            topk=int(v['topk']),\012",
    "            renormalize=bool(v['renormalize']),\012",
    "            num_expert_group=int(v['n_group']),\012",
    "            topk_group=int(v['topk_group']),\012",
    "            scoring_func='sigmoid',\012",
    "            routed_scaling_factor=float(v['routed_scaling_factor']),\012",
    "            e_score_correction_bias=a['bias'],\012",
    "        )\012",
    "\012",
    "\012",
    "def read_manifest(d):\012",
    "    config, buffers, values = \"FULL\", {}, {}\012",
    "    with open(os.path.join(d, \"manifest.txt\")) as f:\012",
    "        for line in f:\012",
    "            parts = line.split()\012",
    "            if not parts:\012",
    "                continue\012",
    "            if parts[0] == \"config\":\012",
    "                config = parts[1]\012",
    "            elif parts[0] == \"buffer\":\012",
    "                buffers[parts[1]] = (parts[2], int(parts[3]), int(parts[4]), parts[5])\012",
    "            elif parts[0] in (\"scale\", \"value\"):\012",
    "                text = parts[2]\012",
    "                values[parts[1]] = int(text) if text.lstrip(\"-\").isdigit() else float(text)\012",
    "    return config, buffers, values\012",
    "\012",
    "\012",
    "def load(d, name, phase, buf, device):\012",
    "    \"\"\"The dumped bytes of one buffer: a flat tensor of its element type.\"\"\"\012",
    "    _role, size, count, ctype = buf\012",
    "    with open(os.path.join(d, f\"{name}.{phase}.bin\"), \"rb\") as f:\012",
    "        raw = bytearray(f.read())\012",
    "    flat = torch.frombuffer(raw, dtype=torch.uint8) if raw else torch.empty(0, dtype=torch.uint8)\012",
    "    dtype = getattr(torch, CTYPES.get(ctype, \"uint8\"))\012",
    "    if dtype.itemsize != size:\012",
    "        dtype = torch.uint8\012",
    "    return flat[: size * count].view(dtype).to(device)\012",
    "\012",
    "\012",
    "def arguments(d, phase, config, buffers, device):\012",
    "    \"\"\"``a``: what the reference receives -- views of the dumped storages, or the flat buffers.\"\"\"\012",
    "    if MODE == \"host\":\012",
    "        return {n: load(d, n, phase, b, device) for n, b in sorted(buffers.items())}\012",
    "    flats = {}\012",
    "    out = {}\012",
    "    for arg, (storage, dtype, sizes, strides, offset) in VIEWS[config].items():\012",
    "        if storage not in flats:\012",
    "            flats[storage] = load(d, storage, phase, buffers[storage], device).view(torch.uint8)\012",
    "        flat = flats[storage].view(getattr(torch, dtype))\012",
    "        out[arg] = torch.as_strided(flat, sizes, strides, offset)\012",
    "    out.update(VALUES[config])\012",
    "    return out\012",
    "\012",
    "\012",
    "def poisoned(t, poison):\012",
    "    if t.dtype.is_floating_point:\012",
    "        return torch.isnan(t.to(torch.float32))\012",
    "    if poison and t.dtype != torch.bool:\012",
    "        return t == torch.iinfo(t.dtype).min\012",
    "    return torch.zeros(t.shape, dtype=torch.bool, device=t.device)\012",
    "\012",
    "\012",
    "CHUNK = 1 << 24   # elements compared at a time (a FULL recipe example fills GiBs)\012",
    "\012",
    "\012",
    "def compare(got, want, atol, rtol, poison):\012",
    "    \"\"\"(ok, max_abs_err, max_rel_err, unwritten elements) over the elements the reference defines.\"\"\"\012",
    "    want = torch.as_tensor(want).to(got.device)\012",
    "    if want.shape != got.shape:\012",
    "        if want.numel() != got.numel():\012",
    "            return False, math.inf, math.inf, 0\012",
    "        want = want.reshape(got.shape)\012",
    "    got, want = got.reshape(-1), want.reshape(-1)\012",
    "    ok, max_abs, max_rel, unwritten = True, 0.0, 0.0, 0\012",
    "    for i in range(0, got.numel(), CHUNK):\012",
    "        gc, wc = got[i:i + CHUNK], want[i:i + CHUNK]\012",
    "        defined = ~poisoned(wc, poison)\012",
    "        missing = poisoned(gc, poison) if poison else torch.zeros(gc.shape, dtype=torch.bool, device=gc.device)\012",
    "        unwritten += int((defined & missing).sum()) if poison else 0\012",
    "        m = defined & ~missing\012",
    "        g, w = gc.to(torch.float64)[m], wc.to(torch.float64)[m]\012",
    "        err = torch.where(g == w, torch.zeros_like(g), (g - w).abs())\012",
    "        bad = (err > atol + rtol * w.abs()) | (torch.isinf(w) & (g != w)) | torch.isnan(err)\012",
    "        extra = int((~defined & ~missing).sum()) if poison else 0\012",
    "        nonzero = w != 0\012",
    "        if err.numel():\012",
    "            max_abs = max(max_abs, float(err.max()))\012",
    "        if bool(nonzero.any()):\012",
    "            max_rel = max(max_rel, float((err[nonzero] / w[nonzero].abs()).max()))\012",
    "        ok = ok and not bool(bad.any()) and extra == 0\012",
    "    return ok and unwritten == 0, max_abs, max_rel, unwritten\012",
    "\012",
    "\012",
    "def check(d):\012",
    "    device = torch.device(\"cuda\" if torch.cuda.is_available() else \"cpu\")\012",
    "    config, buffers, v = read_manifest(d)\012",
    "    if MODE == \"host\":\012",
    "        v.update(VALUES.get(\"host\", {}))   # the instantiation's template arguments\012",
    "    expected = reference(arguments(d, \"in\", config, buffers, device), v)\012",
    "    after = arguments(d, \"out\", config, {n: b for n, b in buffers.items() if b[0] in (\"out\", \"inout\")}, device) \\\012",
    "        if MODE == \"host\" else None\012",
    "    ok, max_abs, max_rel, unwritten = True, 0.0, 0.0, 0\012",
    "    for param, index, poison, tols, view in REFERENCE_OUTPUTS:\012",
    "        if MODE == \"host\":\012",
    "            t = after[param]\012",
    "        else:\012",
    "            storage, dtype, sizes, strides, offset = VIEWS[config][param]\012",
    "            flat = load(d, storage, \"out\", buffers[storage], device).view(torch.uint8).view(getattr(torch, dtype))\012",
    "            t = torch.as_strided(flat, sizes, strides, offset)\012",
    "        got = eval(view, {\"torch\": torch, \"int\": int}, {\"t\": t, \"v\": v}) if view else t\012",
    "        atol, rtol = tols.get(str(got.dtype).replace(\"torch.\", \"\"), tols.get(\"default\", (1e-5, 1.3e-6)))\012",
    "        want = expected if index is None else expected[index]\012",
    "        one_ok, a_err, r_err, miss = compare(got, want, atol, rtol, poison)\012",
    "        if not one_ok:\012",
    "            print(f\"check: {param} differs from the reference (max_abs_err={a_err:.3g} max_rel_err={r_err:.3g} \"\012",
    "                  f\"atol={atol} rtol={rtol} unwritten={miss})\")\012",
    "        ok, max_abs, max_rel, unwritten = ok and one_ok, max(max_abs, a_err), max(max_rel, r_err), unwritten + miss\012",
    "    written = \"all\" if unwritten == 0 else \"partial\"\012",
    "    if not any(p for _n, _i, p, _t, _v in REFERENCE_OUTPUTS):\012",
    "        written = \"unchecked\"\012",
    "    verdict = \"PASS\" if ok else \"FAIL\"\012",
    "    print(f\"check={verdict} max_abs_err={max_abs:.3g} max_rel_err={max_rel:.3g} written={written}\")\012",
    "    return ok\012",
    "\012",
    "\012",
    "if __name__ == \"__main__\":\012",
    "    sys.exit(0 if check(sys.argv[1]) else 1)\012",
    nullptr};

__global__ void poison_kernel(unsigned char* p, size_t nbytes, unsigned long long pattern, size_t es) {
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < nbytes; i += (size_t)gridDim.x * blockDim.x) {
    p[i] = (unsigned char)(pattern >> (8 * (i % es)));
  }
}

// every element of the es-byte type set to `pattern` (little-endian bytes)
inline void poison(void* p, size_t nbytes, unsigned long long pattern, size_t es, cudaStream_t stream) {
  if (nbytes == 0) return;
  const unsigned blocks = (unsigned)std::max<size_t>(1, std::min<size_t>((nbytes + 255) / 256, 65535));
  poison_kernel<<<blocks, 256, 0, stream>>>((unsigned char*)p, nbytes, pattern, es);
  VKC_CHECK(cudaGetLastError());
}

inline void require(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "vkc: reference check: %s\n", what);
    std::exit(1);
  }
}

inline bool enabled(bool small_sanity) {
  const char* v = std::getenv("VKC_CHECK");
  return small_sanity || (v != nullptr && std::strcmp(v, "1") == 0);
}

// VKC_DUMP_DIR when set, else a fresh directory under /tmp
inline std::string directory(const char* dump_dir) {
  if (dump_dir != nullptr) return std::string(dump_dir);
  char tmpl[] = "/tmp/vkc_check_XXXXXX";
  require(mkdtemp(tmpl) != nullptr, "cannot make a directory for the reference check");
  return std::string(tmpl);
}

// writes and runs the check script over the dumps in `dir`; the RESULT fields it printed (`check=...`), its
// other lines echoed; *ok is false unless the verdict is PASS
inline std::string run(const std::string& dir, bool* ok) {
  *ok = false;
  require(dir.find('\'') == std::string::npos, "the check directory's name has a quote");
  const std::string script = dir + "/vkc_check.py";
  FILE* f = std::fopen(script.c_str(), "w");
  require(f != nullptr, "cannot write vkc_check.py");
  for (int i = 0; kScript[i] != nullptr; ++i) std::fputs(kScript[i], f);
  std::fclose(f);
  const char* py = std::getenv("VKC_PYTHON");
  const std::string cmd = std::string(py != nullptr ? py : "python3") + " '" + script + "' '" + dir + "' 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  if (p == nullptr) return "check=ERROR";
  std::string fields, last;
  char line[4096];
  while (std::fgets(line, sizeof line, p) != nullptr) {
    std::string s(line);
    while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) s.pop_back();
    if (s.rfind("check=", 0) == 0) {
      fields = s;
    } else {
      std::printf("%s\n", s.c_str());
      last = s;
    }
  }
  pclose(p);
  if (fields.empty()) {
    std::printf("check: the reference check did not finish (%s)\n", last.c_str());
    return "check=ERROR";
  }
  *ok = fields.rfind("check=PASS", 0) == 0;
  return fields;
}

}  // namespace vkc_check

int main() {
  const bool small_sanity = vkc_host::env_flag("SMALL_SANITY");
  const char* dump_dir = std::getenv("VKC_DUMP_DIR");
  // the reference check dumps into VKC_DUMP_DIR, else into a fresh directory
  const bool vkc_checked = vkc_check::enabled(small_sanity);
  const std::string vkc_check_dir = vkc_checked ? vkc_check::directory(dump_dir) : std::string();
  if (vkc_checked) dump_dir = vkc_check_dir.c_str();
  cudaStream_t stream;
  VKC_CHECK(cudaStreamCreate(&stream));

  // ---- model constants and wrapper bindings
  // model: n_routed_experts
  // replaces csrc/moe/grouped_topk_kernels.cu:1411: const int64_t num_experts = scores.size(1);
  const int64_t num_experts = 256;
  // model: config.json n_group / topk_group
  const int64_t n_group = 8;
  // model: config.json n_group / topk_group
  const int64_t topk_group = 4;
  // model: num_experts_per_tok
  const int64_t topk = 8;
  // model: norm_topk_prob
  const bool renormalize = true;
  // vkc: DeepseekV2MoE passes apply_routed_scale_to_output=True on CUDA
  // the router gets 1.0; routed_scaling_factor is applied to the MoE output
  const double routed_scaling_factor = 1.0;
  // dispatch: scores bfloat16 (router logits in the model dtype) -> __nv_bfloat16
  using T = __nv_bfloat16;
  // dispatch: e_score_correction_bias is float32 -> float
  using BiasT = float;
  // dispatch: LAUNCH_KERNEL(T, int32_t)
  using IdxT = int32_t;

  // ---- live-set sizing: ~20% of free memory clamped to [2 GiB, 8 GiB]
  size_t free_bytes = 0, total_bytes = 0;
  VKC_CHECK(cudaMemGetInfo(&free_bytes, &total_bytes));
  const size_t budget_bytes =
      std::min<size_t>(std::max<size_t>(free_bytes / 5, 2ULL << 30), 8ULL << 30);
  // router scores [T, E] + topk values/indices [T, k]
  const size_t vkc_bytes_per_unit = (size_t)((size_t)num_experts * sizeof(T) + (size_t)topk * 8);
  const size_t vkc_fixed_bytes = (size_t)((size_t)num_experts * 4);
  long long num_tokens_ll = 8;
  if (!small_sanity) {
    long long fit = budget_bytes > vkc_fixed_bytes
                        ? (long long)((budget_bytes - vkc_fixed_bytes) / std::max<size_t>(vkc_bytes_per_unit, 1))
                        : 0;
    fit = std::min<long long>(fit, (long long)(1024));
    fit = fit / 1 * 1;
    num_tokens_ll = std::max<long long>(fit, 1);
  }

  // ---- sizes that follow from num_tokens_ll
  // vkc: one router row per token
  const int64_t num_tokens = num_tokens_ll;
  // from csrc/moe/grouped_topk_kernels.cu:1308
  int64_t const experts_per_group = num_experts / n_group;

  // ---- device buffers (deterministic, valid contents)
  // scores: T [T, E] raw router logits; uniform [-4.0f, 4.0f)
  const size_t n_scores = (size_t)((size_t)num_tokens * num_experts);
  T* scores = nullptr;
  VKC_CHECK(cudaMalloc(&scores, std::max<size_t>(n_scores, 1) * sizeof(T)));
  vkc_host::fill_uniform<<<vkc_host::fill_blocks(n_scores), 256, 0, stream>>>(scores, n_scores, 122697566ULL, -4.0f, 4.0f);
  VKC_CHECK(cudaGetLastError());
  // bias: BiasT [E] e_score_correction_bias; uniform [-0.05f, 0.05f)
  const size_t n_bias = (size_t)(num_experts);
  BiasT* bias = nullptr;
  VKC_CHECK(cudaMalloc(&bias, std::max<size_t>(n_bias, 1) * sizeof(BiasT)));
  vkc_host::fill_uniform<<<vkc_host::fill_blocks(n_bias), 256, 0, stream>>>(bias, n_bias, 1116170843ULL, -0.05f, 0.05f);
  VKC_CHECK(cudaGetLastError());
  // topk_values: float [T, k] fp32; zeros
  const size_t n_topk_values = (size_t)((size_t)num_tokens * topk);
  float* topk_values = nullptr;
  VKC_CHECK(cudaMalloc(&topk_values, std::max<size_t>(n_topk_values, 1) * sizeof(float)));
  VKC_CHECK(cudaMemsetAsync(topk_values, 0, n_topk_values * sizeof(float), stream));
  VKC_CHECK(cudaGetLastError());
  // topk_indices: IdxT [T, k] int32; zeros
  const size_t n_topk_indices = (size_t)((size_t)num_tokens * topk);
  IdxT* topk_indices = nullptr;
  VKC_CHECK(cudaMalloc(&topk_indices, std::max<size_t>(n_topk_indices, 1) * sizeof(IdxT)));
  VKC_CHECK(cudaMemsetAsync(topk_indices, 0, n_topk_indices * sizeof(IdxT), stream));
  VKC_CHECK(cudaGetLastError());
  VKC_CHECK(cudaStreamSynchronize(stream));

  // ---- launch configuration, as the wrapper computes it
  // binds csrc/moe/grouped_topk_kernels.cu:1319: int num_threads = NumDeepseekExperts;
  // NumDeepseekExperts = 256 (csrc/moe/grouped_topk_kernels.cu); multi-group: no single-group case
  const int num_threads = 256;
  // ---- runtime checks of the chosen instantiation against the wrapper's logic
  VKC_REQUIRE(num_experts % n_group == 0, "num_experts should be divisible by n_group");
  VKC_REQUIRE(n_group <= 32, "n_group should be smaller than or equal to 32 for now");
  VKC_REQUIRE(topk <= 32, "topk should be smaller than or equal to 32 for now");
  VKC_REQUIRE(topk_group <= n_group, "topk_group must be <= n_group");
  VKC_REQUIRE(topk <= topk_group * (num_experts / n_group), "topk must be <= topk_group * (num_experts / n_group)");
  VKC_REQUIRE(n_group > 1 && num_experts <= 256 && experts_per_group <= 32 && experts_per_group * topk_group <= 128 && topk <= 8 && topk_group <= 4, "invokeNoAuxTc's is_multi_group holds");
  const dim3 vkc_grid = dim3(static_cast<uint32_t>(num_tokens));
  const dim3 vkc_block = dim3(num_threads);
  const size_t vkc_smem = (size_t)(0);

  if (vkc_checked) {
    // poison the outputs the reference defines (NaN / the integer minimum): an element left unwritten shows
    vkc_check::poison(topk_values, n_topk_values * sizeof(float), 0x7fc00000ULL, 4, stream);
    vkc_check::poison(topk_indices, n_topk_indices * sizeof(IdxT), 0x80000000ULL, 4, stream);
    VKC_CHECK(cudaStreamSynchronize(stream));
  }

  if (dump_dir != nullptr) {
    vkc_host::dump(dump_dir, "scores", "in", scores, n_scores);
    vkc_host::dump(dump_dir, "bias", "in", bias, n_bias);
    vkc_host::dump(dump_dir, "topk_values", "in", topk_values, n_topk_values);
    vkc_host::dump(dump_dir, "topk_indices", "in", topk_indices, n_topk_indices);
  }

  // ---- first launch, checked
  VKC_KERNEL<<<vkc_grid, vkc_block, vkc_smem, stream>>>(
      scores,
      topk_values,
      topk_indices,
      bias,
      num_tokens,
      n_group,
      topk_group,
      topk,
      num_experts,
      experts_per_group,
      renormalize,
      routed_scaling_factor);
  VKC_CHECK(cudaGetLastError());
  VKC_CHECK(cudaStreamSynchronize(stream));

  if (dump_dir != nullptr) {
    vkc_host::dump(dump_dir, "topk_values", "out", topk_values, n_topk_values);
    vkc_host::dump(dump_dir, "topk_indices", "out", topk_indices, n_topk_indices);
    std::string mpath = std::string(dump_dir) + "/manifest.txt";
    FILE* mf = std::fopen(mpath.c_str(), "w");
    VKC_REQUIRE(mf != nullptr, "cannot write VKC_DUMP_DIR/manifest.txt");
    std::fprintf(mf, "scale num_tokens_ll %lld\n", (long long)num_tokens_ll);
    std::fprintf(mf, "buffer scores in %zu %zu T\n", sizeof(T), n_scores);
    std::fprintf(mf, "buffer bias in %zu %zu BiasT\n", sizeof(BiasT), n_bias);
    std::fprintf(mf, "buffer topk_values out %zu %zu float\n", sizeof(float), n_topk_values);
    std::fprintf(mf, "buffer topk_indices out %zu %zu IdxT\n", sizeof(IdxT), n_topk_indices);
    std::fprintf(mf, "value num_experts %.9g\n", (double)(num_experts));
    std::fprintf(mf, "value topk %.9g\n", (double)(topk));
    std::fprintf(mf, "value renormalize %.9g\n", (double)(renormalize));
    std::fprintf(mf, "value n_group %.9g\n", (double)(n_group));
    std::fprintf(mf, "value topk_group %.9g\n", (double)(topk_group));
    std::fprintf(mf, "value routed_scaling_factor %.9g\n", (double)(routed_scaling_factor));
    std::fclose(mf);
  }
  bool vkc_check_ok = true;
  const std::string vkc_check_fields = vkc_checked ? vkc_check::run(vkc_check_dir, &vkc_check_ok) : "check=skipped";

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
    VKC_KERNEL<<<vkc_grid, vkc_block, vkc_smem, stream>>>(scores, topk_values, topk_indices, bias, num_tokens, n_group, topk_group, topk, num_experts, experts_per_group, renormalize, routed_scaling_factor);
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
    VKC_KERNEL<<<vkc_grid, vkc_block, vkc_smem, stream>>>(scores, topk_values, topk_indices, bias, num_tokens, n_group, topk_group, topk, num_experts, experts_per_group, renormalize, routed_scaling_factor);
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
  const double bytes_moved = (double)(1.0 * n_scores * sizeof(T) + 1.0 * n_bias * sizeof(BiasT) + 1.0 * n_topk_values * sizeof(float) + 1.0 * n_topk_indices * sizeof(IdxT));
  const double gbps = bytes_moved / (time_ms * 1e-3) / 1e9;
  // dtype: the element type of the largest floating-point buffer (what the rate is quoted for)
  const char* vkc_dtype = "none";
  size_t vkc_dtype_n = 0;
  if (n_topk_values >= vkc_dtype_n) { vkc_dtype_n = n_topk_values; vkc_dtype = "float"; }

  std::printf("RESULT kernel=%s model=%s workload=%s config=%s time_ms=%.6f GB/s=%.3f bytes=%.0f dtype=%s "
              "gpu=%s stat=median warmup=%d reps=%d l2_flush_MiB=%.0f %s\n",
              "grouped_topk_fused_small_expert_count_kernel", "deepseek-ai/DeepSeek-V3", "decode",
              small_sanity ? "SMALL" : "FULL", time_ms, gbps, bytes_moved, vkc_dtype,
              vkc_gpu.c_str(), warmup, iters, flush_bytes / 1048576.0, vkc_check_fields.c_str());
  if (!vkc_check_ok) return 1;

  VKC_CHECK(cudaFree(scores));
  VKC_CHECK(cudaFree(bias));
  VKC_CHECK(cudaFree(topk_values));
  VKC_CHECK(cudaFree(topk_indices));
  VKC_CHECK(cudaStreamDestroy(stream));
  return 0;
}
