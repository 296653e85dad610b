#if !0 && __CUDA_ARCH__ >= 800
__device__ int fast();


#else
__device__ int slow();
#endif
