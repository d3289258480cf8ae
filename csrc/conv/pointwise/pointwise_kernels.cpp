// The transposed-tile kernel table of the small-map 1x1 path (see pointwise_kernels.h): the
// scalar variant, and the list dispatch, kernel_list() and tests/test_kernel_variants.py read.
#include "conv/pointwise/pointwise_kernels.h"

#include "common/kernel_list.h"

namespace fastconv {

// Defined in pointwise_kernels__avx512.cpp / __avx2.cpp (x86 builds only).
void pointwise_tile__avx512(int64_t kc, const float* w, int ch, const float* b, int64_t ldb, int np, float* c,
                            int64_t ldc, bool accumulate);
void pointwise_store__avx512(const float* ct, int64_t ldct, int rows, int64_t count, float* y, int64_t ldy,
                             const TileEpilogue<float>& e);
void pointwise_tile__avx2(int64_t kc, const float* w, int ch, const float* b, int64_t ldb, int np, float* c,
                          int64_t ldc, bool accumulate);

namespace {

template <int NP>
void tile_np(int64_t kc, const float* w, int ch, const float* b, int64_t ldb, float* c, int64_t ldc,
             bool accumulate) {
  float acc[NP][16];
  for (int p = 0; p < NP; ++p)
    for (int i = 0; i < ch; ++i) acc[p][i] = accumulate ? c[p * ldc + i] : 0.0f;
  for (int64_t k = 0; k < kc; ++k, w += ch, b += ldb)
    for (int p = 0; p < NP; ++p) {
      const float bp = b[p];
      for (int i = 0; i < ch; ++i) acc[p][i] += w[i] * bp;
    }
  for (int p = 0; p < NP; ++p)
    for (int i = 0; i < ch; ++i) c[p * ldc + i] = acc[p][i];
}

void pointwise_tile__scalar(int64_t kc, const float* w, int ch, const float* b, int64_t ldb, int np, float* c,
                            int64_t ldc, bool accumulate) {
  switch (np) {
    case 1: return tile_np<1>(kc, w, ch, b, ldb, c, ldc, accumulate);
    case 2: return tile_np<2>(kc, w, ch, b, ldb, c, ldc, accumulate);
    case 3: return tile_np<3>(kc, w, ch, b, ldb, c, ldc, accumulate);
    case 4: return tile_np<4>(kc, w, ch, b, ldb, c, ldc, accumulate);
    case 5: return tile_np<5>(kc, w, ch, b, ldb, c, ldc, accumulate);
    case 6: return tile_np<6>(kc, w, ch, b, ldb, c, ldc, accumulate);
    case 7: return tile_np<7>(kc, w, ch, b, ldb, c, ldc, accumulate);
    default: return tile_np<8>(kc, w, ch, b, ldb, c, ldc, accumulate);
  }
}

void pointwise_store__scalar(const float* ct, int64_t ldct, int rows, int64_t count, float* y, int64_t ldy,
                             const TileEpilogue<float>& e) {
  for (int i = 0; i < rows; ++i) {
    float* yi = y + i * ldy;
    for (int64_t q = 0; q < count; ++q) yi[q] = tile_epilogue_value(e, ct[q * ldct + i], i, q, ldy);
  }
}

// max_q / store_cost measured on Zen 4 against the shared tile of the same ISA (forced both
// ways): AVX-512 wins to 28x28 maps unless the reduction is short (the store's 8 steps); the
// AVX2 tile (12 accumulators, scalar store) wins at 7x7 and 14x14 (1.1-2x) but loses 15-45%
// at 28x28, so it stops at 256 columns; the scalar tile beats the scalar 4x16 GEMM 2.4-6x
// everywhere up to 28x28, its store included.
const KernelTable<PointwiseTileKernels> kPointwiseTile("pointwise_tile", "float32", {
    {Isa::scalar, "pointwise_tile_16x8__scalar", {&pointwise_tile__scalar, &pointwise_store__scalar, 1, 16, 8, 1024, 0}},
#ifdef FASTCONV_X86
    {Isa::avx2, "pointwise_tile_16x6__avx2", {&pointwise_tile__avx2, &pointwise_store__scalar, 8, 16, 6, 256, 8}},
    {Isa::avx512, "pointwise_tile_48x8__avx512",
     {&pointwise_tile__avx512, &pointwise_store__avx512, 16, 48, 8, 1024, 8}},
#endif
});

}  // namespace

const PointwiseTileKernels& pointwise_tile_kernels(Isa isa) { return kPointwiseTile.pick(isa).kernels; }
const char* pointwise_tile_kernel_name(Isa isa) { return kPointwiseTile.pick(isa).name; }

}  // namespace fastconv
