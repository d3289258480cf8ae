#include "common/transpose.h"

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
}  // namespace

TransposePanelFn<float> transpose_panel_f32(Isa isa) {
#ifdef FASTCONV_X86
  if (isa == Isa::avx512) return &transpose_panel_f32__avx512;
  if (isa == Isa::avx2) return &transpose_panel_f32__avx2;
#endif
  return &transpose_panel_generic<float>;
}

TransposePanelFn<double> transpose_panel_f64(Isa) { return &transpose_panel_generic<double>; }

}  // namespace fastconv
