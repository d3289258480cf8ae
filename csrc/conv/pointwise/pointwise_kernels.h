// The transposed GEMM tile of the small-map 1x1 path (pointwise.cpp, pointwise_small_gemm):
// output channels in the vector lanes, pixels broadcast. The shared GEMM tiles (common/gemm.h)
// put pixels in the lanes, so a 7x7 map (49 columns) computes 64 or 96 columns; here a block
// of channels (a multiple of the vector width: every ResNet / MobileNetV2 width) times 1 to
// max_np pixels wastes nothing, and a transposing store writes the tile back to NCHW rows.
//
// Variants (KernelTable "pointwise_tile", float32; pointwise_kernels.cpp):
//   pointwise_tile_48x8__avx512   up to 3 zmm of channels x 8 pixels (24 accumulators)
//   pointwise_tile_16x6__avx2     up to 2 ymm of channels x 6 pixels (12 accumulators)
//   pointwise_tile_16x8__scalar   up to 16 channels x 8 pixels, plain loops
#pragma once
#include <cstdint>

#include "common/cpu.h"
#include "common/gemm.h"

namespace fastconv {

struct PointwiseTileKernels {
  // c[p*ldc + i] (+)= sum_k w[k*ch + i] * b[k*ldb + p]     for i < ch, p < np
  // w: a packed [kc][ch] panel, 64-byte aligned; ch a multiple of vec, at most max_ch;
  // 1 <= np <= max_np. b is read in place (row k at b + k*ldb: a channel plane, or a packed
  // [kc][np'] panel). c: pixel-major, ch values per pixel.
  using TileFn = void (*)(int64_t kc, const float* w, int ch, const float* b, int64_t ldb, int np, float* c,
                          int64_t ldc, bool accumulate);
  // The transposing store: y[i*ldy + q] = epilogue(ct[q*ldct + i])   for i < rows, q < count,
  // the epilogue (common/gemm.h: bias[i], activation, residual laid out as y) on the way.
  // ct rows hold at least round_up(rows, vec) readable values.
  using StoreFn = void (*)(const float* ct, int64_t ldct, int rows, int64_t count, float* y, int64_t ldy,
                           const TileEpilogue<float>& e);
  TileFn tile;
  StoreFn store;
  int vec, max_ch, max_np;
  // The cost rule's terms for this variant (pointwise.cpp, small_maps): the largest GEMM width
  // (Q) it is considered for, and the per-output-vector cost of its stores, in reduction steps.
  int max_q, store_cost;
};

// The variant for the given ISA (the scalar one always exists).
const PointwiseTileKernels& pointwise_tile_kernels(Isa isa);
const char* pointwise_tile_kernel_name(Isa isa);

}  // namespace fastconv
