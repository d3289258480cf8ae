// AVX-512 transposing pack: 16 rows x 16 values per step, transposed in registers.
#include <immintrin.h>

#include <cstdint>

namespace fastconv {

namespace {
// In-register transpose of a 16x16 float block (r[i] = row i -> r[i] = column i).
inline void transpose16(__m512 r[16]) {
  __m512 t[16];
  for (int i = 0; i < 16; i += 2) {
    t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
    t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
  }
  for (int i = 0; i < 16; i += 4) {
    r[i] = _mm512_shuffle_ps(t[i], t[i + 2], 0x44);
    r[i + 1] = _mm512_shuffle_ps(t[i], t[i + 2], 0xEE);
    r[i + 2] = _mm512_shuffle_ps(t[i + 1], t[i + 3], 0x44);
    r[i + 3] = _mm512_shuffle_ps(t[i + 1], t[i + 3], 0xEE);
  }
  for (int i = 0; i < 4; ++i) {
    t[i] = _mm512_shuffle_f32x4(r[i], r[i + 4], 0x88);
    t[i + 4] = _mm512_shuffle_f32x4(r[i], r[i + 4], 0xDD);
    t[i + 8] = _mm512_shuffle_f32x4(r[i + 8], r[i + 12], 0x88);
    t[i + 12] = _mm512_shuffle_f32x4(r[i + 8], r[i + 12], 0xDD);
  }
  for (int i = 0; i < 4; ++i) {
    r[i] = _mm512_shuffle_f32x4(t[i], t[i + 8], 0x88);
    r[i + 8] = _mm512_shuffle_f32x4(t[i], t[i + 8], 0xDD);
    r[i + 4] = _mm512_shuffle_f32x4(t[i + 4], t[i + 12], 0x88);
    r[i + 12] = _mm512_shuffle_f32x4(t[i + 4], t[i + 12], 0xDD);
  }
}
}  // namespace

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
