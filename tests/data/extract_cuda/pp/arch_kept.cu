#if !defined(USE_ROCM) && __CUDA_ARCH__ >= 800
__device__ int fast();
#elif defined(USE_ROCM)
__device__ int amd();
#else
__device__ int slow();
#endif
