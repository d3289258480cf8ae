// Direct convolution (implicit GEMM over an on-the-fly packed im2col) and its gradients.
// All tensors are contiguous NCHW / OIHW. Shapes come from ConvParams.
#pragma once
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>

#include "common/gemm.h"
#include "common/params.h"
#include "elementwise/epilogue.h"

namespace fastconv {

// Rows (output channels) per work item of a forward GEMM over Kg rows: the whole of Kg, unless
// outer_items (images x groups x pixel blocks) cannot give each thread two items, in which case
// Kg is cut into MR-aligned chunks so batch 1 on small maps still uses every core.
inline int64_t output_channel_step(int64_t outer_items, int64_t Kg, int mr, int threads) {
  const int64_t mpad = (Kg + mr - 1) / mr * mr;
  int64_t chunks = 1;
  if (outer_items < 2 * threads)
    chunks = std::min<int64_t>((2 * threads + outer_items - 1) / outer_items, mpad / mr);
  return ((Kg + chunks - 1) / chunks + mr - 1) / mr * mr;
}

// The input gradient of a stride-1 conv as a forward problem: dy convolved with the kernel
// flipped in space and transposed in channels (conv/flip.h), padding dil*(R-1) - pad.
inline ConvParams adjoint_params(const ConvParams& p) {
  ConvParams q = p;
  q.C = p.K; q.H = p.OH; q.W = p.OW;
  q.K = p.C; q.OH = p.H; q.OW = p.W;
  q.pad_h = p.dil_h * (p.R - 1) - p.pad_h;
  q.pad_w = p.dil_w * (p.S - 1) - p.pad_w;
  return q;
}

// Which implementation a direct-convolution pass runs for a shape (one place decides, the
// entry points below and the binding tests use to check dispatch both ask it):
//   depthwise  one input channel per group (input grad: or one output channel per group):
//              the depthwise family, conv/depthwise/ (per-channel stencils, no GEMM)
//   im2col     any stride: per-image GEMM over packed im2col panels (input grad: W^T*dy + col2im)
//   shifted    stride 1: per-image GEMM reading the padded input in place (direct_shifted.cpp)
//   batched    stride 1, small maps: one GEMM over all images' pixels (direct_batched.cpp)
//   pointwise  1x1, no padding, any stride: a plain GEMM over NCHW (conv/pointwise/)
//   polyphase  large strided kernels: stride 1 on the phase images (conv/strided/polyphase.h)
//   phase_shifted  other strides (forward): the shifted-row GEMM on the input's phase images,
//              every tap reading its own phase in place, no zero taps (direct_shifted.cpp)
enum class DirectPass { forward, input_grad, weight_grad };
// batched_pixel_rows: the batched GEMM transposed (pixels as rows; see pixel_rows_pay).
enum class DirectPath { depthwise, depthwise_dense, im2col, shifted, batched, batched_pixel_rows, pointwise, polyphase, phase_shifted };
template <typename T>
DirectPath direct_path(const ConvParams& p, DirectPass pass);
const char* direct_path_name(DirectPath path);

// y[N,K,OH,OW] = conv(x[N,C,H,W], w[K,C/g,R,S]) + bias[K] (bias may be null), then the output
// epilogue ep (activation, residual; elementwise/epilogue.h) where ep is given: inside the
// pointwise family's, the dense depthwise path's and the shifted-row paths' output passes,
// after the conv in the other families.
// prepacked: w packed by pack_conv_forward_weights for this call's layout (see below), or null.
template <typename T>
void conv2d_direct_forward(const T* x, const T* w, const T* bias, T* y, const ConvParams& p,
                           const OutputEpilogue<T>* ep = nullptr, const T* prepacked = nullptr);

// Forward weights packed once, for callers that run a layer many times with the same weights
// (the compiled plans' conv steps): the GEMM paths then read the packed panels instead of
// packing W on every call (20-25% of a 512-channel layer at 7x7 or 14x14 maps, where W is
// large against the pixels). forward_weight_layout says how the forward of p (with or without a
// bias: the small-map 1x1 path's choice counts it) packs now, decided once:
//   kind   none where the path keeps nothing (depthwise, polyphase); panels: pack_weight_panels_all
//          with (width, kc_max) (GEMM row panels, or the pixel-rows GEMM's NR-wide panels of W^T);
//          pointwise_small: the small-map 1x1 path's slices
//   name   the layout and its micro-kernel ("panels/gemm_12x32__avx512", "pixel_panels/...",
//          "pointwise_small/..."): a buffer packed earlier is used only under the name the call
//          has now (an ISA switched since, or a bias added, packs again)
//   size   values to allocate, 64-byte aligned
enum class ForwardPacking { none, panels, pointwise_small };
struct ForwardWeightLayout {
  ForwardPacking kind = ForwardPacking::none;
  int width = 0;
  int64_t kc_max = 0;
  int64_t size = 0;
  std::string name;
};
template <typename T>
ForwardWeightLayout forward_weight_layout(const ConvParams& p, bool bias);
template <typename T>
void pack_conv_forward_weights(const T* w, const ConvParams& p, const ForwardWeightLayout& layout, T* dst);

// The micro-kernel of the batched forward with pixels as rows: the row tile that pads the
// batch's pixel count least (49 pixels: 6x64, 54 rows).
template <typename T>
MicroKernel<T> batched_pixel_rows_kernel(const ConvParams& p) {
  return micro_kernel<T>(active_isa(), p.N * p.out_pixels());
}

// The shifted-row paths of conv2d_direct_forward (direct_shifted.cpp: stride 1 on the padded
// input, other strides on its phase images): no im2col packing; ep applied per output block.
template <typename T>
void conv2d_shifted_forward(const T* x, const T* w, const T* bias, T* y, const ConvParams& p,
                            const T* prepacked = nullptr, const OutputEpilogue<T>* ep = nullptr);

template <typename T>
void conv2d_shifted_input_grad(const T* dy, const T* w, T* dx, const ConvParams& p);
template <typename T>
void conv2d_shifted_weight_grad(const T* x, const T* dy, T* dw, const ConvParams& p);

// Stride-1 paths for small maps (direct_batched.cpp): one GEMM over all images' pixels.
// batched_direct_pays says where they beat the per-image shifted-row GEMM (for the input
// gradient, ask it about the adjoint forward problem, with input_grad set).
bool batched_direct_pays(const ConvParams& p, int nr, size_t elem_size, bool input_grad);
bool batched_applies(const ConvParams& p, int nr, size_t elem_size);
// Width of a row of virtual pixels of the shifted-row GEMM: the padded width, divided by the
// stride (rounded up) when the input is read as phase images.
inline int64_t shifted_row_width(const ConvParams& p) { return (p.W + 2 * p.pad_w + p.stride_w - 1) / p.stride_w; }
bool batched_weight_grad_pays(const ConvParams& p, int nr, size_t elem_size);
// Whether the batched forward of p (the adjoint's for an input gradient) computes noticeably
// fewer padded values with the batch's pixels as MR-row panels and the output channels as
// NR-column panels than the other way round (few pixels: 72 at 512->512 @3 N=8).
bool pixel_rows_pay(const ConvParams& p, int mr, int nr);
template <typename T>
void conv2d_batched_forward(const T* x, const T* w, const T* bias, T* y, const ConvParams& p, bool pixel_rows,
                            const T* prepacked = nullptr);
template <typename T>
void conv2d_batched_input_grad(const T* dy, const T* w, T* dx, const ConvParams& p, bool pixel_rows);
template <typename T>
void conv2d_batched_weight_grad(const T* x, const T* dy, T* dw, const ConvParams& p);

// dx[N,C,H,W] = d(loss)/dx given dy[N,K,OH,OW]
template <typename T>
void conv2d_direct_input_grad(const T* dy, const T* w, T* dx, const ConvParams& p);

// dw[K,C/g,R,S] = d(loss)/dw given x and dy
template <typename T>
void conv2d_direct_weight_grad(const T* x, const T* dy, T* dw, const ConvParams& p);

}  // namespace fastconv
