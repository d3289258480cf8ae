// Winograd input gradient of a 3x3 stride-1 dilation-1 convolution with padding <= 2 (any
// groups), F(m x m, 3 x 3), m in {2, 4, 6}, blocked so that the transformed weights are made
// per GEMM panel and never stored whole (winograd_input_grad.cpp).
// Scratch, kept per calling thread: the weights re-laid (9 K Cg values, Cg padded to the GEMM
// tile), a packed block of transformed grad_output (<= 32 MiB) and < 1.2 MiB per pool thread.
#pragma once
#include "common/params.h"

namespace fastconv {

// dx[N, C, H, W] = input gradient of conv(x, w) for grad_output dy (p.R = p.S = 3, stride 1).
template <typename T>
void conv2d_winograd_input_grad_blocked(const T* dy, const T* w, T* dx, const ConvParams& p, int m);

}  // namespace fastconv
