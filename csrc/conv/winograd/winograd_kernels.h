// Winograd transform kernels, one set per ISA (winograd_kernels.inc compiled three times:
// winograd_kernels.cpp, winograd_kernels__avx2.cpp, winograd_kernels__avx512.cpp).
// Every kernel works on a chunk of `cnt` tiles at once, with the tile index innermost, so
// each step of a transform is a contiguous vector loop over tiles the compiler vectorises
// with the ISA's full width (16 fp32 lanes under AVX-512).
// Tiles are numbered over (image n, tile row th, tile column tw) of one group.
#pragma once
#include <cstdint>

#include "common/cpu.h"

namespace fastconv {

struct WinoTiling {
  int m, alpha;                 // output tile m x m, input tile alpha x alpha (alpha = m + r - 1)
  int64_t H, W, OH, OW;         // input / output plane size
  int64_t pad_h, pad_w;
  int64_t TH, TW;               // tiles per image: ceil(OH / m) x ceil(OW / m)
};

// Most tiles one kernel call handles (sizes the per-thread scratch: 2 * alpha^2 * CHUNK).
constexpr int64_t kWinoChunk = 64;

template <typename T>
struct WinoKernels {
  // V[(i*alpha + j) * vstride + t] = (B^T d_t B)[i][j] for tiles t0 + t, t < cnt, of one
  // input channel: x points at image 0 of that channel, planes of image n at n * img_stride.
  void (*input)(const WinoTiling& g, const T* BT, const T* x, int64_t img_stride, int64_t t0,
                int64_t cnt, T* V, int64_t vstride, T* scratch);
  // y tile t = A^T M_t A + bias (then max(., 0) if relu), clipped to the OH x OW plane;
  // M_t[i][j] = M[(i*alpha + j) * mstride + t]; y points at image 0 of that output channel.
  void (*output)(const WinoTiling& g, const T* AT, const T* M, int64_t mstride, int64_t t0,
                 int64_t cnt, T bias, bool relu, T* y, int64_t img_stride, T* scratch);
  // Weight transform of L interleaved r x r filters (r = 3 or 5): src[(a*r + b) * L + l] =
  // g_l[a][b]; U[(i*alpha + j) * ustride + l] = (G g_l G^T)[i][j], G alpha x r.
  void (*weight)(int alpha, int r, const T* G, const T* src, int64_t L, T* U, int64_t ustride);
};

WinoKernels<float> wino_kernels_f32(Isa isa);
WinoKernels<double> wino_kernels_f64(Isa isa);
template <typename T> WinoKernels<T> wino_kernels(Isa isa);
template <> inline WinoKernels<float> wino_kernels<float>(Isa isa) { return wino_kernels_f32(isa); }
template <> inline WinoKernels<double> wino_kernels<double>(Isa isa) { return wino_kernels_f64(isa); }

}  // namespace fastconv
