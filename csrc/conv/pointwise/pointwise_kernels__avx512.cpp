// AVX-512 transposed tile of the small-map 1x1 path (see pointwise_kernels.h): NV zmm of 16
// output channels x NP pixels, NV*NP <= 24 accumulators; per reduction step NV aligned loads of
// the packed weights and NP broadcasts of input pixels. Internal linkage throughout, as in
// common/gemm__avx512.cpp.
#include <immintrin.h>

#include <cstdint>

#include "common/gemm.h"
#include "common/transpose16__avx512.h"

namespace fastconv {

namespace {

template <int NV, int NP>
inline void tile(int64_t kc, const float* w, const float* b, int64_t ldb, float* c, int64_t ldc, bool accumulate) {
  __m512 acc[NP][NV];
#pragma GCC unroll 8
  for (int p = 0; p < NP; ++p)
#pragma GCC unroll 3
    for (int v = 0; v < NV; ++v) acc[p][v] = accumulate ? _mm512_loadu_ps(c + p * ldc + 16 * v) : _mm512_setzero_ps();
  for (int64_t k = 0; k < kc; ++k) {
    __m512 wv[NV];
#pragma GCC unroll 3
    for (int v = 0; v < NV; ++v) wv[v] = _mm512_load_ps(w + 16 * v);
#pragma GCC unroll 8
    for (int p = 0; p < NP; ++p) {
      const __m512 bp = _mm512_set1_ps(b[p]);
#pragma GCC unroll 3
      for (int v = 0; v < NV; ++v) acc[p][v] = _mm512_fmadd_ps(wv[v], bp, acc[p][v]);
    }
    w += 16 * NV;
    b += ldb;
  }
#pragma GCC unroll 8
  for (int p = 0; p < NP; ++p)
#pragma GCC unroll 3
    for (int v = 0; v < NV; ++v) _mm512_storeu_ps(c + p * ldc + 16 * v, acc[p][v]);
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
    case 6: return &tile<NV, 6>;
    case 7: return &tile<NV, 7>;
    default: return &tile<NV, 8>;
  }
}


}  // namespace

void pointwise_tile__avx512(int64_t kc, const float* w, int ch, const float* b, int64_t ldb, int np, float* c,
                            int64_t ldc, bool accumulate) {
  const Fn f = ch <= 16 ? pick_np<1>(np) : ch <= 32 ? pick_np<2>(np) : pick_np<3>(np);
  f(kc, w, b, ldb, c, ldc, accumulate);
}

// 16 channels x 16 pixels per step: 16 pixel rows of ct loaded, transposed, stored as 16
// channel rows (masked to the pixels left), the epilogue applied on the way: bias, activation,
// residual (the output epilogue in one pass, not a pass of its own after the GEMM).
void pointwise_store__avx512(const float* ct, int64_t ldct, int rows, int64_t count, float* y, int64_t ldy,
                             const TileEpilogue<float>& e) {
  const __m512 lo = _mm512_set1_ps(e.act == kActRelu ? 0.0f : e.lo), hi = _mm512_set1_ps(e.hi);
  for (int i0 = 0; i0 < rows; i0 += 16) {
    const int ni = rows - i0 < 16 ? rows - i0 : 16;
    __m512 bv[16];
    for (int i = 0; i < 16; ++i) bv[i] = _mm512_set1_ps(e.bias && i < ni ? e.bias[i0 + i] : 0.0f);
    for (int64_t q0 = 0; q0 < count; q0 += 16) {
      const int nq = count - q0 < 16 ? static_cast<int>(count - q0) : 16;
      const __mmask16 mask = static_cast<__mmask16>((1u << nq) - 1u);
      __m512 r[16];
      for (int q = 0; q < 16; ++q) r[q] = q < nq ? _mm512_loadu_ps(ct + (q0 + q) * ldct + i0) : _mm512_setzero_ps();
      transpose16(r);
      for (int i = 0; i < ni; ++i) {
        __m512 v = _mm512_add_ps(r[i], bv[i]);
        const float* res = e.residual ? e.residual + (i0 + i) * ldy + q0 : nullptr;
        if (res && !e.residual_after_act) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(mask, res));
        // max / min return their second operand where either is NaN: v second, so NaN propagates.
        if (e.act == kActRelu) v = _mm512_max_ps(lo, v);
        else if (e.act == kActClamp) v = _mm512_min_ps(hi, _mm512_max_ps(lo, v));
        if (res && e.residual_after_act) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(mask, res));
        if (nq == 16) _mm512_storeu_ps(y + (i0 + i) * ldy + q0, v);  // a masked store costs more on some cores
        else _mm512_mask_storeu_ps(y + (i0 + i) * ldy + q0, mask, v);
      }
    }
  }
}

}  // namespace fastconv
