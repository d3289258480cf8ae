// AVX2 + FMA GEMM micro-kernels (16 ymm registers). Same rules as gemm__avx512.cpp.
#include <immintrin.h>

#include "common/gemm.h"

namespace fastconv {
namespace {

// f32: 6 rows x 16 columns (two ymm) = 12 accumulators + 2 B + 1 broadcast = 15 registers.
void gemm_6x16__avx2(int64_t kc, const float* a, const float* b, float* c, int64_t ldc,
                     bool accumulate) {
  constexpr int MR = 6;
  __m256 acc0[MR], acc1[MR];
#pragma GCC unroll 6
  for (int i = 0; i < MR; ++i) {
    acc0[i] = accumulate ? _mm256_loadu_ps(c + i * ldc) : _mm256_setzero_ps();
    acc1[i] = accumulate ? _mm256_loadu_ps(c + i * ldc + 8) : _mm256_setzero_ps();
  }
  for (int64_t k = 0; k < kc; ++k) {
    const __m256 b0 = _mm256_load_ps(b);
    const __m256 b1 = _mm256_load_ps(b + 8);
#pragma GCC unroll 6
    for (int i = 0; i < MR; ++i) {
      const __m256 ai = _mm256_broadcast_ss(a + i);
      acc0[i] = _mm256_fmadd_ps(ai, b0, acc0[i]);
      acc1[i] = _mm256_fmadd_ps(ai, b1, acc1[i]);
    }
    a += MR;
    b += 16;
  }
#pragma GCC unroll 6
  for (int i = 0; i < MR; ++i) {
    _mm256_storeu_ps(c + i * ldc, acc0[i]);
    _mm256_storeu_ps(c + i * ldc + 8, acc1[i]);
  }
}

void gemm_6x16_offsets__avx2(int64_t kc, const float* a, const float* b, const int64_t* offsets, float* c, int64_t ldc,
                     bool accumulate) {
  constexpr int MR = 6;
  __m256 acc0[MR], acc1[MR];
#pragma GCC unroll 6
  for (int i = 0; i < MR; ++i) {
    acc0[i] = accumulate ? _mm256_loadu_ps(c + i * ldc) : _mm256_setzero_ps();
    acc1[i] = accumulate ? _mm256_loadu_ps(c + i * ldc + 8) : _mm256_setzero_ps();
  }
  for (int64_t k = 0; k < kc; ++k) {
    const __m256 b0 = _mm256_loadu_ps(b + offsets[k]);
    const __m256 b1 = _mm256_loadu_ps(b + offsets[k] + 8);
#pragma GCC unroll 6
    for (int i = 0; i < MR; ++i) {
      const __m256 ai = _mm256_broadcast_ss(a + i);
      acc0[i] = _mm256_fmadd_ps(ai, b0, acc0[i]);
      acc1[i] = _mm256_fmadd_ps(ai, b1, acc1[i]);
    }
    a += MR;
  }
#pragma GCC unroll 6
  for (int i = 0; i < MR; ++i) {
    _mm256_storeu_ps(c + i * ldc, acc0[i]);
    _mm256_storeu_ps(c + i * ldc + 8, acc1[i]);
  }
}

// f64: 6 rows x 8 columns (two ymm of 4 doubles).
void gemm_6x8__avx2(int64_t kc, const double* a, const double* b, double* c, int64_t ldc,
                    bool accumulate) {
  constexpr int MR = 6;
  __m256d acc0[MR], acc1[MR];
#pragma GCC unroll 6
  for (int i = 0; i < MR; ++i) {
    acc0[i] = accumulate ? _mm256_loadu_pd(c + i * ldc) : _mm256_setzero_pd();
    acc1[i] = accumulate ? _mm256_loadu_pd(c + i * ldc + 4) : _mm256_setzero_pd();
  }
  for (int64_t k = 0; k < kc; ++k) {
    const __m256d b0 = _mm256_load_pd(b);
    const __m256d b1 = _mm256_load_pd(b + 4);
#pragma GCC unroll 6
    for (int i = 0; i < MR; ++i) {
      const __m256d ai = _mm256_broadcast_sd(a + i);
      acc0[i] = _mm256_fmadd_pd(ai, b0, acc0[i]);
      acc1[i] = _mm256_fmadd_pd(ai, b1, acc1[i]);
    }
    a += MR;
    b += 8;
  }
#pragma GCC unroll 6
  for (int i = 0; i < MR; ++i) {
    _mm256_storeu_pd(c + i * ldc, acc0[i]);
    _mm256_storeu_pd(c + i * ldc + 4, acc1[i]);
  }
}

void gemm_6x8_offsets__avx2(int64_t kc, const double* a, const double* b, const int64_t* offsets, double* c, int64_t ldc,
                    bool accumulate) {
  constexpr int MR = 6;
  __m256d acc0[MR], acc1[MR];
#pragma GCC unroll 6
  for (int i = 0; i < MR; ++i) {
    acc0[i] = accumulate ? _mm256_loadu_pd(c + i * ldc) : _mm256_setzero_pd();
    acc1[i] = accumulate ? _mm256_loadu_pd(c + i * ldc + 4) : _mm256_setzero_pd();
  }
  for (int64_t k = 0; k < kc; ++k) {
    const __m256d b0 = _mm256_loadu_pd(b + offsets[k]);
    const __m256d b1 = _mm256_loadu_pd(b + offsets[k] + 4);
#pragma GCC unroll 6
    for (int i = 0; i < MR; ++i) {
      const __m256d ai = _mm256_broadcast_sd(a + i);
      acc0[i] = _mm256_fmadd_pd(ai, b0, acc0[i]);
      acc1[i] = _mm256_fmadd_pd(ai, b1, acc1[i]);
    }
    a += MR;
  }
#pragma GCC unroll 6
  for (int i = 0; i < MR; ++i) {
    _mm256_storeu_pd(c + i * ldc, acc0[i]);
    _mm256_storeu_pd(c + i * ldc + 4, acc1[i]);
  }
}

}  // namespace

MicroKernel<float> micro_kernel_f32_avx2() {
  return {&gemm_6x16__avx2, &gemm_6x16_offsets__avx2, 6, 16, 256, 1024, "gemm_6x16__avx2"};
}
MicroKernel<double> micro_kernel_f64_avx2() {
  return {&gemm_6x8__avx2, &gemm_6x8_offsets__avx2, 6, 8, 256, 512, "gemm_6x8__avx2"};
}

}  // namespace fastconv
