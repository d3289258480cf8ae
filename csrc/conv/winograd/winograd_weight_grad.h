// Winograd weight gradient of a 3x3 stride-1 dilation-1 convolution (any padding, any groups):
// F(m x m, 3 x 3) transposed, m in {2, 4, 6}; the algorithm is in winograd_weight_grad.cpp.
// Scratch, kept per calling thread: packed V and Y blocks of at most 32 MiB together (more only
// for a block of 32 tiles beyond ~1000 channels), < 1.5 MiB per pool thread, and where the tiles
// take several blocks (large maps: then the channels are few) alpha^2 * Kg * Cg values of Mw.
#pragma once
#include "common/params.h"

namespace fastconv {

// dw[K, Cg, 3, 3] = weight gradient of conv(x, w) for grad_output dy (p.R = p.S = 3, stride 1).
template <typename T>
void conv2d_winograd_weight_grad(const T* x, const T* dy, T* dw, const ConvParams& p, int m);

// Tiles per block of that weight gradient for Kg x Cg channels per group, `tiles` tiles in all, at
// tile m under the active ISA: the rule the driver runs and fastconv/_cpu.py's cost model reads.
template <typename T>
int64_t winograd_weight_grad_block(int m, int64_t Kg, int64_t Cg, int64_t tiles);

}  // namespace fastconv
