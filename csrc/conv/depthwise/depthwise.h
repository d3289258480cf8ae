// Depthwise convolution (one input channel per group, any channel multiplier M = K / C) as its
// own kernel family, forward and both gradients, over NCHW planes with output columns in vector
// lanes. Shapes come from ConvParams; all tensors are contiguous NCHW / OIHW.
//
// Every pass is one windowed correlation (depthwise_window.h): rows of a source plane are copied
// into a small ring of zero-padded window rows (planes up to 64 wide: the whole padded plane at
// once, computed as one long row), then each output row is R x S FMAs per vector of output
// columns, the window's weights held in registers for 3x3 and 5x5:
//   forward      y[n, c*M+m] = x[n, c] (*) w[c*M+m]          (stride s: the window keeps the
//                                                              s column phases of each row apart)
//   input grad   dx[n, c] = sum_m dy[n, c*M+m] (*) flip(w)    (stride s: dy upsampled, zeros between)
//   weight grad  dw[c*M+m][r][s] = sum_{n,oh,ow} dy * x at the tap, accumulated per lane,
//                                  summed across lanes once at the end
#pragma once
#include "common/params.h"

namespace fastconv {

// The shapes this family runs: one input channel per group (the forward and the weight
// gradient), and for the input gradient also one output channel per group (its adjoint has one
// input channel per group).
inline bool depthwise_forward_fits(const ConvParams& p) { return p.groups > 1 && p.Cg() == 1; }
inline bool depthwise_input_grad_fits(const ConvParams& p) { return p.groups > 1 && (p.Cg() == 1 || p.Kg() == 1); }

// y[N,K,OH,OW] = conv(x[N,C,H,W], w[K,1,R,S]) + bias[K] (bias may be null)
template <typename T>
void depthwise_forward(const T* x, const T* w, const T* bias, T* y, const ConvParams& p);

// dx[N,C,H,W] from dy[N,K,OH,OW]
template <typename T>
void depthwise_input_grad(const T* dy, const T* w, T* dx, const ConvParams& p);

// dw[K,1,R,S] from x and dy
template <typename T>
void depthwise_weight_grad(const T* x, const T* dy, T* dw, const ConvParams& p);

}  // namespace fastconv
