// AVX2 copy of the Winograd transform kernels (the loops auto-vectorise 8 fp32 wide).
#define WINO_ISA avx2
#define WINO_NAME_F32 "winograd_transforms_f32__avx2"
#define WINO_NAME_F64 "winograd_transforms_f64__avx2"
#include "conv/winograd/winograd_kernels.inc"
