// AVX-512 GEMM micro-kernels. Compiled with -mavx512f...; only reached through the kernel
// table in gemm.cpp after CPUID says AVX-512 is there. Only the tile functions themselves
// have external linkage (gemm.cpp's table points at them); the templates behind them are
// internal and no inline std templates are used, so no AVX-512 copy of a shared inline
// function can leak into the portable code at link time.
#include <immintrin.h>

#include "common/gemm.h"
#include "common/gemm_tile_epilogue.h"

namespace fastconv {
namespace {

// Lane operations for the tile epilogue (gemm_tile_epilogue.h).
struct Zmm32 {
  using T = float;
  using V = __m512;
  static constexpr int kLanes = 16;
  static V set1(T v) { return _mm512_set1_ps(v); }
  static V load(const T* p) { return _mm512_loadu_ps(p); }
  static V add(V a, V b) { return _mm512_add_ps(a, b); }
  static V max(V a, V b) { return _mm512_max_ps(a, b); }
  static V min(V a, V b) { return _mm512_min_ps(a, b); }
};
struct Zmm64 {
  using T = double;
  using V = __m512d;
  static constexpr int kLanes = 8;
  static V set1(T v) { return _mm512_set1_pd(v); }
  static V load(const T* p) { return _mm512_loadu_pd(p); }
  static V add(V a, V b) { return _mm512_add_pd(a, b); }
  static V max(V a, V b) { return _mm512_max_pd(a, b); }
  static V min(V a, V b) { return _mm512_min_pd(a, b); }
};

// MR rows (output channels, broadcast) x NV zmm vectors of 16 columns (pixels).
// MR * NV accumulators + NV B registers + 1 broadcast must fit the 32 zmm registers.
// B row k is either the packed panel row (b + k*NR, aligned) or, for the offsets variant,
// b + offsets[k] (unaligned, read in place from the padded input).
template <int MR, int NV, bool kOffsets>
inline void tile_f32(int64_t kc, const float* a, const float* b, const int64_t* offsets, float* c,
                     int64_t ldc, bool accumulate, const TileEpilogue<float>* ep = nullptr) {
  __m512 acc[MR][NV];
#pragma GCC unroll 16
  for (int i = 0; i < MR; ++i)
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v)
      acc[i][v] = accumulate ? _mm512_loadu_ps(c + i * ldc + 16 * v) : _mm512_setzero_ps();
  for (int64_t k = 0; k < kc; ++k) {
    __m512 bv[NV];
    const float* bk = kOffsets ? b + offsets[k] : b + k * 16 * NV;
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) bv[v] = kOffsets ? _mm512_loadu_ps(bk + 16 * v) : _mm512_load_ps(bk + 16 * v);
#pragma GCC unroll 16
    for (int i = 0; i < MR; ++i) {
      const __m512 ai = _mm512_set1_ps(a[i]);
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) acc[i][v] = _mm512_fmadd_ps(ai, bv[v], acc[i][v]);
    }
    a += MR;
  }
  if (ep) tile_epilogue_on<Zmm32>(*ep, acc, ldc);
#pragma GCC unroll 16
  for (int i = 0; i < MR; ++i)
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) _mm512_storeu_ps(c + i * ldc + 16 * v, acc[i][v]);
}

// f64: 12 rows x 16 columns (two zmm of 8 doubles).
template <bool kOffsets>
inline void tile_f64(int64_t kc, const double* a, const double* b, const int64_t* offsets, double* c,
                     int64_t ldc, bool accumulate, const TileEpilogue<double>* ep = nullptr) {
  constexpr int MR = 12;
  __m512d acc0[MR], acc1[MR];
#pragma GCC unroll 12
  for (int i = 0; i < MR; ++i) {
    acc0[i] = accumulate ? _mm512_loadu_pd(c + i * ldc) : _mm512_setzero_pd();
    acc1[i] = accumulate ? _mm512_loadu_pd(c + i * ldc + 8) : _mm512_setzero_pd();
  }
  for (int64_t k = 0; k < kc; ++k) {
    const double* bk = kOffsets ? b + offsets[k] : b + k * 16;
    const __m512d b0 = _mm512_loadu_pd(bk);
    const __m512d b1 = _mm512_loadu_pd(bk + 8);
#pragma GCC unroll 12
    for (int i = 0; i < MR; ++i) {
      const __m512d ai = _mm512_set1_pd(a[i]);
      acc0[i] = _mm512_fmadd_pd(ai, b0, acc0[i]);
      acc1[i] = _mm512_fmadd_pd(ai, b1, acc1[i]);
    }
    a += MR;
  }
  if (ep) {
    __m512d acc[MR][2];
    for (int i = 0; i < MR; ++i) acc[i][0] = acc0[i], acc[i][1] = acc1[i];
    tile_epilogue_on<Zmm64>(*ep, acc, ldc);
    for (int i = 0; i < MR; ++i) acc0[i] = acc[i][0], acc1[i] = acc[i][1];
  }
#pragma GCC unroll 12
  for (int i = 0; i < MR; ++i) {
    _mm512_storeu_pd(c + i * ldc, acc0[i]);
    _mm512_storeu_pd(c + i * ldc + 8, acc1[i]);
  }
}

}  // namespace

void gemm_12x32__avx512(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, bool acc) {
  tile_f32<12, 2, false>(kc, a, b, nullptr, c, ldc, acc);
}
void gemm_12x32__avx512_epilogue(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, bool acc,
                       const TileEpilogue<float>& e) {
  tile_f32<12, 2, false>(kc, a, b, nullptr, c, ldc, acc, &e);
}
void gemm_12x32__avx512_offsets(int64_t kc, const float* a, const float* b, const int64_t* off, float* c,
                                int64_t ldc, bool acc) {
  tile_f32<12, 2, true>(kc, a, b, off, c, ldc, acc);
}
void gemm_8x48__avx512(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, bool acc) {
  tile_f32<8, 3, false>(kc, a, b, nullptr, c, ldc, acc);
}
void gemm_8x48__avx512_epilogue(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, bool acc,
                       const TileEpilogue<float>& e) {
  tile_f32<8, 3, false>(kc, a, b, nullptr, c, ldc, acc, &e);
}
void gemm_8x48__avx512_offsets(int64_t kc, const float* a, const float* b, const int64_t* off, float* c,
                               int64_t ldc, bool acc) {
  tile_f32<8, 3, true>(kc, a, b, off, c, ldc, acc);
}

void gemm_6x64__avx512(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, bool acc) {
  tile_f32<6, 4, false>(kc, a, b, nullptr, c, ldc, acc);
}
void gemm_6x64__avx512_epilogue(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, bool acc,
                       const TileEpilogue<float>& e) {
  tile_f32<6, 4, false>(kc, a, b, nullptr, c, ldc, acc, &e);
}
void gemm_6x64__avx512_offsets(int64_t kc, const float* a, const float* b, const int64_t* off, float* c,
                               int64_t ldc, bool acc) {
  tile_f32<6, 4, true>(kc, a, b, off, c, ldc, acc);
}

void gemm_12x16__avx512(int64_t kc, const double* a, const double* b, double* c, int64_t ldc, bool acc) {
  tile_f64<false>(kc, a, b, nullptr, c, ldc, acc);
}
void gemm_12x16__avx512_offsets(int64_t kc, const double* a, const double* b, const int64_t* off, double* c,
                                int64_t ldc, bool acc) {
  tile_f64<true>(kc, a, b, off, c, ldc, acc);
}
void gemm_12x16__avx512_epilogue(int64_t kc, const double* a, const double* b, double* c, int64_t ldc, bool acc,
                                 const TileEpilogue<double>& e) {
  tile_f64<false>(kc, a, b, nullptr, c, ldc, acc, &e);
}

}  // namespace fastconv
