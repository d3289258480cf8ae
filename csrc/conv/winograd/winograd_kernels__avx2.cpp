// AVX2 copy of the Winograd transform kernels (the loops auto-vectorise 8 fp32 wide).
#define WINO_ISA avx2
#include "conv/winograd/winograd_kernels.inc"
