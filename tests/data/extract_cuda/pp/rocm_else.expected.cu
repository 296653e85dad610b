


  #include "nvidia/quant_utils.cuh"

int a;
