// AVX-512 copy of the Winograd transform kernels (the loops auto-vectorise 16 fp32 wide).
#define WINO_ISA avx512
#define WINO_NAME_F32 "winograd_transforms_f32__avx512"
#define WINO_NAME_F64 "winograd_transforms_f64__avx512"
#include "conv/winograd/winograd_kernels.inc"
