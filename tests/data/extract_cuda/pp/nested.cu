#ifndef USE_ROCM
  #if defined(ENABLE_FP8)
using fp8 = __nv_fp8_e4m3;
  #endif
  #if CUDA_VERSION >= 12000
int v12;
  #endif
#else
int hip_only;
#endif
#if defined(__HIP_PLATFORM_AMD__) || defined(__gfx942__)
int amd;
#elif X_UNKNOWN
int maybe;
#endif
