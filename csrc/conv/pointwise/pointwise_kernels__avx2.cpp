// AVX2 transposed tile of the small-map 1x1 path (see pointwise_kernels.h): NV ymm of 8 output
// channels x NP pixels, NV*NP <= 12 accumulators (+ NV weight registers + 1 broadcast of the
// 16). The store is the scalar one (pointwise_kernels.cpp).
#include <immintrin.h>

#include <cstdint>

namespace fastconv {

namespace {

template <int NV, int NP>
inline void tile(int64_t kc, const float* w, const float* b, int64_t ldb, float* c, int64_t ldc, bool accumulate) {
  __m256 acc[NP][NV];
#pragma GCC unroll 6
  for (int p = 0; p < NP; ++p)
#pragma GCC unroll 2
    for (int v = 0; v < NV; ++v) acc[p][v] = accumulate ? _mm256_loadu_ps(c + p * ldc + 8 * v) : _mm256_setzero_ps();
  for (int64_t k = 0; k < kc; ++k) {
    __m256 wv[NV];
#pragma GCC unroll 2
    for (int v = 0; v < NV; ++v) wv[v] = _mm256_load_ps(w + 8 * v);
#pragma GCC unroll 6
    for (int p = 0; p < NP; ++p) {
      const __m256 bp = _mm256_broadcast_ss(b + p);
#pragma GCC unroll 2
      for (int v = 0; v < NV; ++v) acc[p][v] = _mm256_fmadd_ps(wv[v], bp, acc[p][v]);
    }
    w += 8 * NV;
    b += ldb;
  }
#pragma GCC unroll 6
  for (int p = 0; p < NP; ++p)
#pragma GCC unroll 2
    for (int v = 0; v < NV; ++v) _mm256_storeu_ps(c + p * ldc + 8 * v, acc[p][v]);
}

using Fn = void (*)(int64_t, const float*, const float*, int64_t, float*, int64_t, bool);

template <int NV>
Fn pick_np(int np) {
  switch (np) {
    case 1: return &tile<NV, 1>;
    case 2: return &tile<NV, 2>;
    case 3: return &tile<NV, 3>;
    case 4: return &tile<NV, 4>;
    case 5: return &tile<NV, 5>;
    default: return &tile<NV, 6>;
  }
}

}  // namespace

void pointwise_tile__avx2(int64_t kc, const float* w, int ch, const float* b, int64_t ldb, int np, float* c,
                          int64_t ldc, bool accumulate) {
  const Fn f = ch <= 8 ? pick_np<1>(np) : pick_np<2>(np);
  f(kc, w, b, ldb, c, ldc, accumulate);
}

}  // namespace fastconv
