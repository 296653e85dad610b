

using fp8 = __nv_fp8_e4m3;

  #if CUDA_VERSION >= 12000
int v12;
  #endif





#if X_UNKNOWN
int maybe;
#endif
