// AVX-512 GEMM micro-kernels. Compiled with -mavx512f...; only reached through the kernel
// table after CPUID says AVX-512 is there. No inline std templates are used here, so no
// AVX-512 copy of a shared inline function can leak into the portable code at link time.
#include <immintrin.h>

#include "common/gemm.h"

namespace fastconv {
namespace {

// f32: 12 rows (output channels) x 32 columns (pixels, two zmm) = 24 accumulators,
// 2 B loads and 1 broadcast per k: 27 of the 32 zmm registers.
void gemm_12x32__avx512(int64_t kc, const float* a, const float* b, float* c, int64_t ldc,
                        bool accumulate) {
  constexpr int MR = 12;
  __m512 acc0[MR], acc1[MR];
#pragma GCC unroll 12
  for (int i = 0; i < MR; ++i) {
    acc0[i] = accumulate ? _mm512_loadu_ps(c + i * ldc) : _mm512_setzero_ps();
    acc1[i] = accumulate ? _mm512_loadu_ps(c + i * ldc + 16) : _mm512_setzero_ps();
  }
  for (int64_t k = 0; k < kc; ++k) {
    const __m512 b0 = _mm512_load_ps(b);
    const __m512 b1 = _mm512_load_ps(b + 16);
    _mm_prefetch(reinterpret_cast<const char*>(b + 256), _MM_HINT_T0);
#pragma GCC unroll 12
    for (int i = 0; i < MR; ++i) {
      const __m512 ai = _mm512_set1_ps(a[i]);
      acc0[i] = _mm512_fmadd_ps(ai, b0, acc0[i]);
      acc1[i] = _mm512_fmadd_ps(ai, b1, acc1[i]);
    }
    a += MR;
    b += 32;
  }
#pragma GCC unroll 12
  for (int i = 0; i < MR; ++i) {
    _mm512_storeu_ps(c + i * ldc, acc0[i]);
    _mm512_storeu_ps(c + i * ldc + 16, acc1[i]);
  }
}

void gemm_12x32_offsets__avx512(int64_t kc, const float* a, const float* b, const int64_t* offsets, float* c, int64_t ldc,
                        bool accumulate) {
  constexpr int MR = 12;
  __m512 acc0[MR], acc1[MR];
#pragma GCC unroll 12
  for (int i = 0; i < MR; ++i) {
    acc0[i] = accumulate ? _mm512_loadu_ps(c + i * ldc) : _mm512_setzero_ps();
    acc1[i] = accumulate ? _mm512_loadu_ps(c + i * ldc + 16) : _mm512_setzero_ps();
  }
  for (int64_t k = 0; k < kc; ++k) {
    const __m512 b0 = _mm512_loadu_ps(b + offsets[k]);
    const __m512 b1 = _mm512_loadu_ps(b + offsets[k] + 16);
#pragma GCC unroll 12
    for (int i = 0; i < MR; ++i) {
      const __m512 ai = _mm512_set1_ps(a[i]);
      acc0[i] = _mm512_fmadd_ps(ai, b0, acc0[i]);
      acc1[i] = _mm512_fmadd_ps(ai, b1, acc1[i]);
    }
    a += MR;
  }
#pragma GCC unroll 12
  for (int i = 0; i < MR; ++i) {
    _mm512_storeu_ps(c + i * ldc, acc0[i]);
    _mm512_storeu_ps(c + i * ldc + 16, acc1[i]);
  }
}

// f64: 12 rows x 16 columns (two zmm of 8 doubles).
void gemm_12x16__avx512(int64_t kc, const double* a, const double* b, double* c, int64_t ldc,
                        bool accumulate) {
  constexpr int MR = 12;
  __m512d acc0[MR], acc1[MR];
#pragma GCC unroll 12
  for (int i = 0; i < MR; ++i) {
    acc0[i] = accumulate ? _mm512_loadu_pd(c + i * ldc) : _mm512_setzero_pd();
    acc1[i] = accumulate ? _mm512_loadu_pd(c + i * ldc + 8) : _mm512_setzero_pd();
  }
  for (int64_t k = 0; k < kc; ++k) {
    const __m512d b0 = _mm512_load_pd(b);
    const __m512d b1 = _mm512_load_pd(b + 8);
#pragma GCC unroll 12
    for (int i = 0; i < MR; ++i) {
      const __m512d ai = _mm512_set1_pd(a[i]);
      acc0[i] = _mm512_fmadd_pd(ai, b0, acc0[i]);
      acc1[i] = _mm512_fmadd_pd(ai, b1, acc1[i]);
    }
    a += MR;
    b += 16;
  }
#pragma GCC unroll 12
  for (int i = 0; i < MR; ++i) {
    _mm512_storeu_pd(c + i * ldc, acc0[i]);
    _mm512_storeu_pd(c + i * ldc + 8, acc1[i]);
  }
}

void gemm_12x16_offsets__avx512(int64_t kc, const double* a, const double* b, const int64_t* offsets, double* c, int64_t ldc,
                        bool accumulate) {
  constexpr int MR = 12;
  __m512d acc0[MR], acc1[MR];
#pragma GCC unroll 12
  for (int i = 0; i < MR; ++i) {
    acc0[i] = accumulate ? _mm512_loadu_pd(c + i * ldc) : _mm512_setzero_pd();
    acc1[i] = accumulate ? _mm512_loadu_pd(c + i * ldc + 8) : _mm512_setzero_pd();
  }
  for (int64_t k = 0; k < kc; ++k) {
    const __m512d b0 = _mm512_loadu_pd(b + offsets[k]);
    const __m512d b1 = _mm512_loadu_pd(b + offsets[k] + 8);
#pragma GCC unroll 12
    for (int i = 0; i < MR; ++i) {
      const __m512d ai = _mm512_set1_pd(a[i]);
      acc0[i] = _mm512_fmadd_pd(ai, b0, acc0[i]);
      acc1[i] = _mm512_fmadd_pd(ai, b1, acc1[i]);
    }
    a += MR;
  }
#pragma GCC unroll 12
  for (int i = 0; i < MR; ++i) {
    _mm512_storeu_pd(c + i * ldc, acc0[i]);
    _mm512_storeu_pd(c + i * ldc + 8, acc1[i]);
  }
}

}  // namespace

MicroKernel<float> micro_kernel_f32_avx512() {
  return {&gemm_12x32__avx512, &gemm_12x32_offsets__avx512, 12, 32, 192, 1024, "gemm_12x32__avx512"};
}
MicroKernel<double> micro_kernel_f64_avx512() {
  return {&gemm_12x16__avx512, &gemm_12x16_offsets__avx512, 12, 16, 192, 512, "gemm_12x16__avx512"};
}

}  // namespace fastconv
