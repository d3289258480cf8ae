// AVX2 transposing pack: 8 rows x 8 values per step, transposed in registers.
#include <immintrin.h>

#include <cstdint>

namespace fastconv {

namespace {
inline void transpose8(__m256 r[8]) {
  __m256 t[8];
  for (int i = 0; i < 8; i += 2) {
    t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);
    t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
  }
  for (int i = 0; i < 8; i += 4) {
    r[i] = _mm256_shuffle_ps(t[i], t[i + 2], 0x44);
    r[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], 0xEE);
    r[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0x44);
    r[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0xEE);
  }
  for (int i = 0; i < 4; ++i) {
    t[i] = _mm256_permute2f128_ps(r[i], r[i + 4], 0x20);
    t[i + 4] = _mm256_permute2f128_ps(r[i], r[i + 4], 0x31);
  }
  for (int i = 0; i < 8; ++i) r[i] = t[i];
}
}  // namespace

void transpose_panel_f32__avx2(const float* const* rows, int width, int64_t count, float* dst) {
  for (int j0 = 0; j0 < width; j0 += 8) {
    const int lanes = width - j0 < 8 ? width - j0 : 8;
    int64_t t = 0;
    if (lanes == 8) {
      for (; t + 8 <= count; t += 8) {
        __m256 r[8];
        for (int i = 0; i < 8; ++i)
          r[i] = rows[j0 + i] ? _mm256_loadu_ps(rows[j0 + i] + t) : _mm256_setzero_ps();
        transpose8(r);
        for (int i = 0; i < 8; ++i) _mm256_storeu_ps(dst + (t + i) * width + j0, r[i]);
      }
    }
    for (; t < count; ++t)
      for (int i = 0; i < lanes; ++i) dst[t * width + j0 + i] = rows[j0 + i] ? rows[j0 + i][t] : 0.0f;
  }
}

}  // namespace fastconv
