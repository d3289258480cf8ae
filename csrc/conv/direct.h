// Direct convolution (implicit GEMM over an on-the-fly packed im2col) and its gradients.
// All tensors are contiguous NCHW / OIHW. Shapes come from ConvParams.
#pragma once
#include "common/params.h"

namespace fastconv {

// y[N,K,OH,OW] = conv(x[N,C,H,W], w[K,C/g,R,S]) + bias[K] (bias may be null)
template <typename T>
void conv2d_direct_forward(const T* x, const T* w, const T* bias, T* y, const ConvParams& p);

// The stride-1 path of conv2d_direct_forward (direct_shifted.cpp): no im2col packing.
template <typename T>
void conv2d_shifted_forward(const T* x, const T* w, const T* bias, T* y, const ConvParams& p);

template <typename T>
void conv2d_shifted_input_grad(const T* dy, const T* w, T* dx, const ConvParams& p);
template <typename T>
void conv2d_shifted_weight_grad(const T* x, const T* dy, T* dw, const ConvParams& p);

// dx[N,C,H,W] = d(loss)/dx given dy[N,K,OH,OW]
template <typename T>
void conv2d_direct_input_grad(const T* dy, const T* w, T* dx, const ConvParams& p);

// dw[K,C/g,R,S] = d(loss)/dw given x and dy
template <typename T>
void conv2d_direct_weight_grad(const T* x, const T* dy, T* dw, const ConvParams& p);

}  // namespace fastconv
