// AVX-512 copy of the Winograd transform kernels (the loops auto-vectorise 16 fp32 wide).
#define WINO_ISA avx512
#include "conv/winograd/winograd_kernels.inc"
