// Polyphase (space-to-depth) decomposition of a strided convolution (dilation 1): a stride-s
// conv of x is a stride-1, unpadded conv of the sh*sw phase images of the padded input,
//   xs[n][(c*sh + a)*sw + b][i][j] = xpad[n][c][i*sh + a][j*sw + b]       (0 past xpad's end)
// with the kernel cut into phases of ceil(R/sh) x ceil(S/sw) taps,
//   ws[k][(c*sh + a)*sw + b][i][j] = w[k][c][i*sh + a][j*sw + b]          (0 past R or S)
// so the stride-1 direct paths (shifted rows, batched) run it on their packed micro-kernels:
// 7x7 stride 2 on 3 channels becomes 4x4 on 12, 11x11 stride 4 on 3 becomes 3x3 on 48.
// The gradients are the stride-1 gradients of the phase problem, mapped back.
#pragma once
#include "common/params.h"

namespace fastconv {

// The stride-1 problem on the phase images.
ConvParams polyphase_params(const ConvParams& p);
// Whether the decomposition pays for p: strided, dilation 1, and the phase kernel adds few
// zero taps (R*S vs sh*sw*ceil(R/sh)*ceil(S/sw)).
bool polyphase_pays(const ConvParams& p);

// winograd_tile 2, 4 or 6 runs a 3x3 phase problem (11x11 stride 4, 5x5 / 6x6 stride 2) with
// Winograd F(m, 3) instead of the direct paths (1.5-2.2x faster on AlexNet's conv1 at one
// thread, each pass; ~1e-5 relative error); 0 runs the direct paths.
template <typename T>
void conv2d_polyphase_forward(const T* x, const T* w, const T* bias, T* y, const ConvParams& p, int winograd_tile = 0);
template <typename T>
void conv2d_polyphase_input_grad(const T* dy, const T* w, T* dx, const ConvParams& p, int winograd_tile = 0);
template <typename T>
void conv2d_polyphase_weight_grad(const T* x, const T* dy, T* dw, const ConvParams& p, int winograd_tile = 0);

}  // namespace fastconv
