#ifdef USE_ROCM
  #include "amd/quant_utils.cuh"
#else
  #include "nvidia/quant_utils.cuh"
#endif
int a;
