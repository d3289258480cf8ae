#include "common/transpose.h"

#include "common/kernel_list.h"

namespace fastconv {

void transpose_panel_f32__avx512(const float* const* rows, int width, int64_t count, float* dst);
void transpose_panel_f32__avx2(const float* const* rows, int width, int64_t count, float* dst);

namespace {
template <typename T>
void transpose_panel_generic(const T* const* rows, int width, int64_t count, T* dst) {
  for (int j = 0; j < width; ++j) {
    const T* r = rows[j];
    if (r)
      for (int64_t t = 0; t < count; ++t) dst[t * width + j] = r[t];
    else
      for (int64_t t = 0; t < count; ++t) dst[t * width + j] = T(0);
  }
}

// The transposing packs: the one list that dispatch, kernel_list() and the tests read.
const KernelTable<TransposePanelFn<float>> kTransposeF32("transpose_panel", "float32", {
    {Isa::scalar, "transpose_panel_f32__scalar", &transpose_panel_generic<float>},
#ifdef FASTCONV_X86
    {Isa::avx2, "transpose_panel_f32__avx2", &transpose_panel_f32__avx2},
    {Isa::avx512, "transpose_panel_f32__avx512", &transpose_panel_f32__avx512},
#endif
});
const KernelTable<TransposePanelFn<double>> kTransposeF64("transpose_panel", "float64", {
    {Isa::scalar, "transpose_panel_f64__scalar", &transpose_panel_generic<double>},
});
}  // namespace

TransposePanelFn<float> transpose_panel_f32(Isa isa) { return kTransposeF32.pick(isa).kernels; }
TransposePanelFn<double> transpose_panel_f64(Isa isa) { return kTransposeF64.pick(isa).kernels; }

}  // namespace fastconv
