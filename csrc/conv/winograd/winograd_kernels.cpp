// Portable copy of the Winograd transform kernels and the per-ISA table.
#define WINO_ISA scalar
#define WINO_NAME_F32 "winograd_transforms_f32__scalar"
#define WINO_NAME_F64 "winograd_transforms_f64__scalar"
#include "conv/winograd/winograd_kernels.inc"

namespace fastconv {

#ifdef FASTCONV_X86
WinoKernels<float> wino_kernels_f32_avx512();
WinoKernels<float> wino_kernels_f32_avx2();
WinoKernels<double> wino_kernels_f64_avx512();
WinoKernels<double> wino_kernels_f64_avx2();
#endif

WinoKernels<float> wino_kernels_f32(Isa isa) {
#ifdef FASTCONV_X86
  if (isa == Isa::avx512) return wino_kernels_f32_avx512();
  if (isa == Isa::avx2) return wino_kernels_f32_avx2();
#endif
  return wino_kernels_f32_scalar();
}

WinoKernels<double> wino_kernels_f64(Isa isa) {
#ifdef FASTCONV_X86
  if (isa == Isa::avx512) return wino_kernels_f64_avx512();
  if (isa == Isa::avx2) return wino_kernels_f64_avx2();
#endif
  return wino_kernels_f64_scalar();
}

}  // namespace fastconv
