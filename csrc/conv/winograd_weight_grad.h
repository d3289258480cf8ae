// Winograd weight gradient of a 3x3 stride-1 dilation-1 convolution (any padding, any groups):
// F(m x m, 3 x 3) transposed, m in {2, 4, 6}; the algorithm is in winograd_weight_grad.cpp.
// Scratch: V and Y blocks of at most 64 MiB together, plus alpha^2 * Kg * Cg values of Mw
// (36 MiB for a 512x512 layer at F(4,3), 64 MiB at F(6,3)), kept per calling thread.
#pragma once
#include "common/params.h"

namespace fastconv {

// dw[K, Cg, 3, 3] = weight gradient of conv(x, w) for grad_output dy (p.R = p.S = 3, stride 1).
template <typename T>
void conv2d_winograd_weight_grad(const T* x, const T* dy, T* dw, const ConvParams& p, int m);

}  // namespace fastconv
