// AVX2 + FMA GEMM micro-kernels (16 ymm registers). Same rules as gemm__avx512.cpp: only the
// tile functions gemm.cpp's table points at are external, no inline std templates.
#include <immintrin.h>

#include "common/gemm.h"
#include "common/gemm_tile_epilogue.h"

namespace fastconv {
namespace {

// 6 rows x two ymm vectors: 12 accumulators + 2 B registers + 1 broadcast = 15 of 16.
// F32 / F64 adapt the tile (and its epilogue, gemm_tile_epilogue.h) to float (8 lanes) or
// double (4 lanes).
struct F32 {
  using T = float;
  using V = __m256;
  static constexpr int kLanes = 8;
  static V zero() { return _mm256_setzero_ps(); }
  static V load(const T* p) { return _mm256_loadu_ps(p); }
  static V broadcast(const T* p) { return _mm256_broadcast_ss(p); }
  static V fma(V a, V b, V c) { return _mm256_fmadd_ps(a, b, c); }
  static void store(T* p, V v) { _mm256_storeu_ps(p, v); }
  static V set1(T v) { return _mm256_set1_ps(v); }
  static V add(V a, V b) { return _mm256_add_ps(a, b); }
  static V max(V a, V b) { return _mm256_max_ps(a, b); }
  static V min(V a, V b) { return _mm256_min_ps(a, b); }
};
struct F64 {
  using T = double;
  using V = __m256d;
  static constexpr int kLanes = 4;
  static V zero() { return _mm256_setzero_pd(); }
  static V load(const T* p) { return _mm256_loadu_pd(p); }
  static V broadcast(const T* p) { return _mm256_broadcast_sd(p); }
  static V fma(V a, V b, V c) { return _mm256_fmadd_pd(a, b, c); }
  static void store(T* p, V v) { _mm256_storeu_pd(p, v); }
  static V set1(T v) { return _mm256_set1_pd(v); }
  static V add(V a, V b) { return _mm256_add_pd(a, b); }
  static V max(V a, V b) { return _mm256_max_pd(a, b); }
  static V min(V a, V b) { return _mm256_min_pd(a, b); }
};

// B row k is the packed panel row (b + k*NR) or, for the offsets variant, b + offsets[k].
template <typename Ops, bool kOffsets>
inline void tile_6x2(int64_t kc, const typename Ops::T* a, const typename Ops::T* b, const int64_t* offsets,
                     typename Ops::T* c, int64_t ldc, bool accumulate,
                     const TileEpilogue<typename Ops::T>* ep = nullptr) {
  constexpr int MR = 6, L = Ops::kLanes;
  typename Ops::V acc0[MR], acc1[MR];
#pragma GCC unroll 6
  for (int i = 0; i < MR; ++i) {
    acc0[i] = accumulate ? Ops::load(c + i * ldc) : Ops::zero();
    acc1[i] = accumulate ? Ops::load(c + i * ldc + L) : Ops::zero();
  }
  for (int64_t k = 0; k < kc; ++k) {
    const typename Ops::T* bk = kOffsets ? b + offsets[k] : b + k * 2 * L;
    const typename Ops::V b0 = Ops::load(bk), b1 = Ops::load(bk + L);
#pragma GCC unroll 6
    for (int i = 0; i < MR; ++i) {
      const typename Ops::V ai = Ops::broadcast(a + i);
      acc0[i] = Ops::fma(ai, b0, acc0[i]);
      acc1[i] = Ops::fma(ai, b1, acc1[i]);
    }
    a += MR;
  }
  if (ep) {
    typename Ops::V acc[MR][2];
    for (int i = 0; i < MR; ++i) acc[i][0] = acc0[i], acc[i][1] = acc1[i];
    tile_epilogue_on<Ops>(*ep, acc, ldc);
    for (int i = 0; i < MR; ++i) acc0[i] = acc[i][0], acc1[i] = acc[i][1];
  }
#pragma GCC unroll 6
  for (int i = 0; i < MR; ++i) {
    Ops::store(c + i * ldc, acc0[i]);
    Ops::store(c + i * ldc + L, acc1[i]);
  }
}

}  // namespace

void gemm_6x16__avx2(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, bool acc) {
  tile_6x2<F32, false>(kc, a, b, nullptr, c, ldc, acc);
}
void gemm_6x16__avx2_offsets(int64_t kc, const float* a, const float* b, const int64_t* off, float* c,
                             int64_t ldc, bool acc) {
  tile_6x2<F32, true>(kc, a, b, off, c, ldc, acc);
}
void gemm_6x8__avx2(int64_t kc, const double* a, const double* b, double* c, int64_t ldc, bool acc) {
  tile_6x2<F64, false>(kc, a, b, nullptr, c, ldc, acc);
}
void gemm_6x8__avx2_offsets(int64_t kc, const double* a, const double* b, const int64_t* off, double* c,
                            int64_t ldc, bool acc) {
  tile_6x2<F64, true>(kc, a, b, off, c, ldc, acc);
}
void gemm_6x16__avx2_epilogue(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, bool acc,
                              const TileEpilogue<float>& e) {
  tile_6x2<F32, false>(kc, a, b, nullptr, c, ldc, acc, &e);
}
void gemm_6x8__avx2_epilogue(int64_t kc, const double* a, const double* b, double* c, int64_t ldc, bool acc,
                             const TileEpilogue<double>& e) {
  tile_6x2<F64, false>(kc, a, b, nullptr, c, ldc, acc, &e);
}

}  // namespace fastconv
