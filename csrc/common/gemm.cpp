// The GEMM micro-kernels' table (one list per dtype, read by dispatch, kernel_list() and
// the tests), the portable tiles, and the choice by row count.
#include "common/gemm.h"

#include "common/kernel_list.h"

namespace fastconv {

// Defined in gemm__avx512.cpp / gemm__avx2.cpp (x86 builds only): each tile, its variant that
// reads B rows in place at offsets, and its variant with the output epilogue in registers.
#define FASTCONV_DECLARE_TILE(T, name)                                                             \
  void name(int64_t kc, const T* a, const T* b, T* c, int64_t ldc, bool acc);                      \
  void name##_offsets(int64_t kc, const T* a, const T* b, const int64_t* off, T* c, int64_t ldc, bool acc); \
  void name##_epilogue(int64_t kc, const T* a, const T* b, T* c, int64_t ldc, bool acc, const TileEpilogue<T>& e);
FASTCONV_DECLARE_TILE(float, gemm_12x32__avx512)
FASTCONV_DECLARE_TILE(float, gemm_8x48__avx512)
FASTCONV_DECLARE_TILE(float, gemm_6x64__avx512)
FASTCONV_DECLARE_TILE(float, gemm_6x16__avx2)
FASTCONV_DECLARE_TILE(double, gemm_12x16__avx512)
FASTCONV_DECLARE_TILE(double, gemm_6x8__avx2)
#undef FASTCONV_DECLARE_TILE

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
void micro_kernel_epilogue_generic(int64_t kc, const T* a, const T* b, T* c, int64_t ldc, bool accumulate,
                                   const TileEpilogue<T>& e) {
  micro_kernel_generic<T, MR, NR>(kc, a, b, c, ldc, accumulate);
  for (int i = 0; i < MR; ++i)
    for (int j = 0; j < NR; ++j) c[i * ldc + j] = tile_epilogue_value(e, c[i * ldc + j], i, j, ldc);
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

// A table row: the name is written once, here (the ISA files only define the functions).
template <typename T>
KernelVariant<MicroKernel<T>> tile(Isa isa, const char* name, typename MicroKernel<T>::Fn fn,
                                   typename MicroKernel<T>::OffsetsFn fn_offsets,
                                   typename MicroKernel<T>::EpilogueFn fn_epilogue, int mr, int nr, int kc, int nc) {
  return {isa, name, {fn, fn_offsets, fn_epilogue, mr, nr, kc, nc, name}};
}

// Lowest ISA first; within an ISA the default tile comes first and the alternatives after it
// (micro_kernel_f32_for_rows picks among them by row count). kc rows of a B panel stay in L1,
// kc x nc of B in L2.
const KernelTable<MicroKernel<float>> kGemmF32("gemm", "float32", {
    tile<float>(Isa::scalar, "gemm_4x16__scalar", &micro_kernel_generic<float, 4, 16>,
                &micro_kernel_offsets_generic<float, 4, 16>, &micro_kernel_epilogue_generic<float, 4, 16>, 4, 16, 256, 512),
#ifdef FASTCONV_X86
    tile<float>(Isa::avx2, "gemm_6x16__avx2", &gemm_6x16__avx2, &gemm_6x16__avx2_offsets, &gemm_6x16__avx2_epilogue,
                6, 16, 256, 1024),
    tile<float>(Isa::avx512, "gemm_12x32__avx512", &gemm_12x32__avx512, &gemm_12x32__avx512_offsets, &gemm_12x32__avx512_epilogue,
                12, 32, 192, 1024),
    // For row counts that are multiples of 8 but waste rows in 12-row panels (64 channels).
    tile<float>(Isa::avx512, "gemm_8x48__avx512", &gemm_8x48__avx512, &gemm_8x48__avx512_offsets, &gemm_8x48__avx512_epilogue,
                8, 48, 192, 960),
    // For row counts that pad least in 6-row panels: the pixel rows of a 7x7 map (49 -> 54, not
    // 56 or 60). On Zen 4 it also ran 1.1x the 8x48 tile on such GEMMs (4 B loads and 6
    // broadcasts per 24 FMAs; 49 x 512 x 4608 on one core: 89 against 81-85 GFLOP/s).
    tile<float>(Isa::avx512, "gemm_6x64__avx512", &gemm_6x64__avx512, &gemm_6x64__avx512_offsets, &gemm_6x64__avx512_epilogue,
                6, 64, 192, 1024),
#endif
});
const KernelTable<MicroKernel<double>> kGemmF64("gemm", "float64", {
    tile<double>(Isa::scalar, "gemm_4x8__scalar", &micro_kernel_generic<double, 4, 8>,
                 &micro_kernel_offsets_generic<double, 4, 8>, &micro_kernel_epilogue_generic<double, 4, 8>, 4, 8, 256, 512),
#ifdef FASTCONV_X86
    tile<double>(Isa::avx2, "gemm_6x8__avx2", &gemm_6x8__avx2, &gemm_6x8__avx2_offsets, &gemm_6x8__avx2_epilogue,
                 6, 8, 256, 512),
    tile<double>(Isa::avx512, "gemm_12x16__avx512", &gemm_12x16__avx512, &gemm_12x16__avx512_offsets, &gemm_12x16__avx512_epilogue,
                 12, 16, 192, 512),
#endif
});

}  // namespace

template <> const KernelTable<MicroKernel<float>>& gemm_kernels<float>() { return kGemmF32; }
template <> const KernelTable<MicroKernel<double>>& gemm_kernels<double>() { return kGemmF64; }

MicroKernel<float> micro_kernel_f32(Isa isa) { return kGemmF32.pick(isa).kernels; }
MicroKernel<double> micro_kernel_f64(Isa isa) { return kGemmF64.pick(isa).kernels; }

MicroKernel<float> micro_kernel_f32_for_rows(Isa isa, int64_t M) {
  // An alternative tile only where the default's panels would pad noticeably more (64 rows:
  // 72 in 12-row panels, 64 in 8-row ones): the default streams fewer broadcasts per FMA.
  const auto candidates = kGemmF32.candidates(isa);
  MicroKernel<float> best = candidates.front()->kernels;
  const int64_t padded_default = round_up(M, best.mr);
  for (const auto* v : candidates)
    if (padded_default * 100 > round_up(M, v->kernels.mr) * 106 && round_up(M, v->kernels.mr) < round_up(M, best.mr))
      best = v->kernels;
  return best;
}

}  // namespace fastconv
