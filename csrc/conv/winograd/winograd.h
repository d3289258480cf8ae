// Winograd minimal-filtering convolution F(m x m, r x r): 3x3 kernels (r = 3) with m in {2, 4, 6}
// and 5x5 kernels (r = 5) with m in {2, 4}, alpha = m + r - 1; stride 1 and dilation 1 (any
// padding, any groups: each group is its own problem).
//
//   U[xi][k][c] = (G g_kc G^T)[xi]            transformed weights, packed as GEMM A panels
//   V[xi][c][t] = (B^T d_ct B)[xi]            transformed input tiles of a block of tiles
//   M[xi][k][t] = sum_c U[xi][k][c] V[xi][c][t]   alpha^2 GEMMs [Kg x Cg] x [Cg x tiles]
//   y tile(k,t) = A^T M[.][k][t] A + bias[k]  (ReLU optional), fused in the output transform
//
// Tiles of all images of a group are processed in blocks (winograd.cpp), so the scratch is
// bounded: the V and M blocks of all threads together take at most 32 MiB in the tile-block
// driver and kWinoElementBytes in the element-major one (nb * alpha^2 * (Cg + Kg) values each;
// a floor of 32 tiles per block exceeds that only beyond ~1000 channels), plus per thread
// < 2 MiB of transform scratch and transformed-weight panels. A whole U (alpha^2 * K * Cg
// values: 9 MiB for VGG-16's largest 512x512 layer at F(2,3), 36 MiB at F(4,3), 64 MiB at
// F(6,3)) is built when a call without cached weights runs element-major or has many tile
// blocks. The buffers are kept per calling thread between calls (no page faults on reuse).
#pragma once
#include <cstdint>

#include "common/params.h"

namespace fastconv {

// The layout of packed transformed weights: the GEMM micro-kernel's row panel height and
// reduction block they were packed for (they depend on the ISA active at packing time).
struct WinoPackInfo {
  int mr = 0, kc = 0;
};

// Number of values of U for K r x r filters of Cg channels in `groups` groups at tile m.
int64_t winograd_weights_size(int64_t K, int64_t Cg, int64_t groups, int m, int r, int mr);
// Micro-kernel panel layout U must have for the current ISA and element type.
template <typename T> WinoPackInfo winograd_pack_info();

// U <- transformed, packed weights of w[K, Cg, r, r]; U holds winograd_weights_size values.
template <typename T>
WinoPackInfo winograd_transform_weights(const T* w, int64_t K, int64_t Cg, int64_t groups, int m, int r, T* U);

// y = conv(x, w) + bias (p.R x p.S = 3x3 or 5x5, stride 1). U: transformed weights from
// winograd_transform_weights (packed as `info`), or null to transform w here.
template <typename T>
void conv2d_winograd_forward(const T* x, const T* w, const T* U, WinoPackInfo info, const T* bias,
                             T* y, const ConvParams& p, int m, bool relu);

// dx = input gradient of an r x r (3x3 or 5x5) stride-1 conv with padding <= r - 1: a Winograd
// convolution of dy with the flipped, channel-transposed kernel and padding r - 1 - pad.
template <typename T>
void conv2d_winograd_input_grad(const T* dy, const T* w, T* dx, const ConvParams& p, int m);

// Most bytes of V + M one element-major block holds.
constexpr int64_t kWinoElementBytes = int64_t(64) << 20;
// Whether the forward runs element-major (one GEMM per transform element over a block of all
// tiles) rather than in L2-sized tile blocks: Cg + Kg input + output channels per group, tiles
// over all images, weights_cached: U comes transformed.
bool winograd_by_element(int64_t Cg, int64_t Kg, int64_t tiles, bool weights_cached);

// Whether the forward runs the tile-rows driver (tiles per group in the micro-kernel's MR-row
// panels, output channels in its NR columns; winograd.cpp): few tiles, no cached U, and a
// padded GEMM at least 10% smaller than the tile-column orientation's. Returns that padded GEMM's
// size (tile rows x output-channel columns, both rounded up to the tile), 0 where it does not run.
template <typename T> int64_t winograd_tile_rows(int64_t tiles, int64_t Kg, bool weights_cached);

// Whether Winograd handles p (a reason string when it does not; null when it does).
const char* winograd_unsupported(const ConvParams& p);

}  // namespace fastconv
