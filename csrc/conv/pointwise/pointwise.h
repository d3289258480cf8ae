// 1x1 convolutions (no padding, any stride, any groups) as plain GEMMs over NCHW, per group:
//   forward      y[Kg x Q]  = W[Kg x Cg]   * x[Cg x Q]
//   input grad   dx[Cg x Q] = W^T[Cg x Kg] * dy[Kg x Q]     (stride s: only every s-th row and
//                                                          column of dx is written, the rest is 0)
//   weight grad  dW[Kg x Cg] = dy[Kg x Q] * x^T[Q x Cg]
// where the Q columns are every image's output pixels, q = n*OH*OW + pixel, so small maps fold
// the batch into one GEMM. No im2col, no padded copy: a stride-s input is read in place, every
// s-th row and column, while the GEMM's panels are packed.
#pragma once
#include "elementwise/epilogue.h"
#include "common/params.h"

namespace fastconv {

// Whether p is a 1x1 convolution with no padding (dilation is then irrelevant).
bool pointwise_applies(const ConvParams& p);

// Which GEMM a pass of a pointwise convolution runs under the active ISA: "small_maps" (the
// transposed tile of pointwise_kernels.h: float32, at most 1024 output columns (256 on AVX2) or
// a batch of maps under 256 pixels, where the cost rule in pointwise.cpp says it is cheaper) or "gemm" (the shared micro-kernels;
// always for the weight gradient and float64). bias: whether the forward has one. For tests of dispatch
// (fastconv._C.pointwise_variant).
enum class PointwisePass { forward, input_grad, weight_grad };
const char* pointwise_variant(const ConvParams& p, PointwisePass pass, bool float32, bool bias);
// For tests: "small_maps" or "gemm" makes every float32 forward and input gradient of the path
// take that GEMM, whatever the shape; "auto" (the default) restores the cost rule. Process-wide.
void set_pointwise_variant(const char* variant);  // throws std::invalid_argument

// ep: an activation / residual applied in the output pass (elementwise/epilogue.h), or null.
// prepacked: the weights as pack_conv_forward_weights (conv/direct/direct.h) packed them for
// this call's layout (forward_weight_layout), or null to pack them here.
template <typename T>
void conv2d_pointwise_forward(const T* x, const T* w, const T* bias, T* y, const ConvParams& p,
                              const OutputEpilogue<T>* ep = nullptr, const T* prepacked = nullptr);

// The small-map path's whole packed A: its size in floats, and the packing.
int64_t pointwise_small_packed_size(const ConvParams& p);
void pack_pointwise_small_weights(const float* w, const ConvParams& p, float* dst);
template <typename T>
void conv2d_pointwise_input_grad(const T* dy, const T* w, T* dx, const ConvParams& p);
template <typename T>
void conv2d_pointwise_weight_grad(const T* x, const T* dy, T* dw, const ConvParams& p);

}  // namespace fastconv
