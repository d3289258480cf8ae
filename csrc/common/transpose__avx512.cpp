// AVX-512 transposing pack: 16 rows x 16 values per step, transposed in registers.
#include <immintrin.h>

#include <cstdint>

#include "common/transpose16__avx512.h"

namespace fastconv {

void transpose_panel_f32__avx512(const float* const* rows, int width, int64_t count, float* dst) {
  for (int j0 = 0; j0 < width; j0 += 16) {
    const int lanes = width - j0 < 16 ? width - j0 : 16;
    const __mmask16 store_mask = static_cast<__mmask16>((1u << lanes) - 1u);
    int64_t t = 0;
    for (; t + 16 <= count; t += 16) {
      __m512 r[16];
      for (int i = 0; i < 16; ++i)
        r[i] = (i < lanes && rows[j0 + i]) ? _mm512_loadu_ps(rows[j0 + i] + t) : _mm512_setzero_ps();
      transpose16(r);
      for (int i = 0; i < 16; ++i) _mm512_mask_storeu_ps(dst + (t + i) * width + j0, store_mask, r[i]);
    }
    for (; t < count; ++t)
      for (int i = 0; i < lanes; ++i) dst[t * width + j0 + i] = rows[j0 + i] ? rows[j0 + i][t] : 0.0f;
  }
}

}  // namespace fastconv
