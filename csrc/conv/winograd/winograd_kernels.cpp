// Portable copy of the Winograd transform kernels and the per-ISA table.
#define WINO_ISA scalar
#include "conv/winograd/winograd_kernels.inc"

#include "common/kernel_list.h"

namespace fastconv {

#ifdef FASTCONV_X86
WinoKernels<float> wino_kernels_f32_avx512();
WinoKernels<float> wino_kernels_f32_avx2();
WinoKernels<double> wino_kernels_f64_avx512();
WinoKernels<double> wino_kernels_f64_avx2();
#endif

namespace {
// The transform kernels of each ISA, as the factories that build them (a factory compiled for an
// ISA is only called once dispatch picked it): the one list dispatch, kernel_list() and the tests read.
template <typename T>
using WinoFactory = WinoKernels<T> (*)();
const KernelTable<WinoFactory<float>> kWinoF32("winograd_transforms", "float32", {
    {Isa::scalar, "winograd_transforms_f32__scalar", &wino_kernels_f32_scalar},
#ifdef FASTCONV_X86
    {Isa::avx2, "winograd_transforms_f32__avx2", &wino_kernels_f32_avx2},
    {Isa::avx512, "winograd_transforms_f32__avx512", &wino_kernels_f32_avx512},
#endif
});
const KernelTable<WinoFactory<double>> kWinoF64("winograd_transforms", "float64", {
    {Isa::scalar, "winograd_transforms_f64__scalar", &wino_kernels_f64_scalar},
#ifdef FASTCONV_X86
    {Isa::avx2, "winograd_transforms_f64__avx2", &wino_kernels_f64_avx2},
    {Isa::avx512, "winograd_transforms_f64__avx512", &wino_kernels_f64_avx512},
#endif
});
}  // namespace

WinoKernels<float> wino_kernels_f32(Isa isa) { return kWinoF32.pick(isa).kernels(); }
WinoKernels<double> wino_kernels_f64(Isa isa) { return kWinoF64.pick(isa).kernels(); }

}  // namespace fastconv
