// Portable (scalar / compiler-vectorised) micro-kernels and the per-ISA kernel table.
#include "common/gemm.h"

namespace fastconv {

// Defined in gemm__avx512.cpp / gemm__avx2.cpp (x86 builds only).
MicroKernel<float> micro_kernel_f32_avx512();
MicroKernel<float> micro_kernel_f32_avx512_8rows();
MicroKernel<float> micro_kernel_f32_avx2();
MicroKernel<double> micro_kernel_f64_avx512();
MicroKernel<double> micro_kernel_f64_avx2();

namespace {

template <typename T, int MR, int NR>
void micro_kernel_generic(int64_t kc, const T* a, const T* b, T* c, int64_t ldc, bool accumulate) {
  T acc[MR][NR];
  for (int i = 0; i < MR; ++i)
    for (int j = 0; j < NR; ++j) acc[i][j] = accumulate ? c[i * ldc + j] : T(0);
  for (int64_t k = 0; k < kc; ++k) {
    for (int i = 0; i < MR; ++i) {
      const T ai = a[k * MR + i];
      for (int j = 0; j < NR; ++j) acc[i][j] += ai * b[k * NR + j];
    }
  }
  for (int i = 0; i < MR; ++i)
    for (int j = 0; j < NR; ++j) c[i * ldc + j] = acc[i][j];
}

template <typename T, int MR, int NR>
void micro_kernel_offsets_generic(int64_t kc, const T* a, const T* b, const int64_t* offsets, T* c,
                                  int64_t ldc, bool accumulate) {
  T acc[MR][NR];
  for (int i = 0; i < MR; ++i)
    for (int j = 0; j < NR; ++j) acc[i][j] = accumulate ? c[i * ldc + j] : T(0);
  for (int64_t k = 0; k < kc; ++k) {
    const T* bk = b + offsets[k];
    for (int i = 0; i < MR; ++i) {
      const T ai = a[k * MR + i];
      for (int j = 0; j < NR; ++j) acc[i][j] += ai * bk[j];
    }
  }
  for (int i = 0; i < MR; ++i)
    for (int j = 0; j < NR; ++j) c[i * ldc + j] = acc[i][j];
}

}  // namespace

MicroKernel<float> micro_kernel_f32(Isa isa) {
#ifdef FASTCONV_X86
  if (isa == Isa::avx512) return micro_kernel_f32_avx512();
  if (isa == Isa::avx2) return micro_kernel_f32_avx2();
#endif
  return {&micro_kernel_generic<float, 4, 16>, &micro_kernel_offsets_generic<float, 4, 16>, 4, 16, 256, 512,
          "gemm_4x16__scalar"};
}

MicroKernel<float> micro_kernel_f32_for_rows(Isa isa, int64_t M) {
  const MicroKernel<float> best = micro_kernel_f32(isa);
#ifdef FASTCONV_X86
  if (isa == Isa::avx512) {
    // Only when 12-row panels would pad noticeably (64 rows -> 72): the 12x32 tile streams
    // fewer broadcasts per FMA and rounds the pixel dimension to 32 instead of 48.
    const MicroKernel<float> eight = micro_kernel_f32_avx512_8rows();
    if (round_up(M, best.mr) * 100 > round_up(M, eight.mr) * 106) return eight;
  }
#endif
  return best;
}

MicroKernel<double> micro_kernel_f64(Isa isa) {
#ifdef FASTCONV_X86
  if (isa == Isa::avx512) return micro_kernel_f64_avx512();
  if (isa == Isa::avx2) return micro_kernel_f64_avx2();
#endif
  return {&micro_kernel_generic<double, 4, 8>, &micro_kernel_offsets_generic<double, 4, 8>, 4, 8, 256, 512,
          "gemm_4x8__scalar"};
}

}  // namespace fastconv
