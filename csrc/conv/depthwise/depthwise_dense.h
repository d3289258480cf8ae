// The depthwise family's dense 3x3 path: stride 1, padding 1, dilation 1, one output channel
// per group (MobileNet's depthwise layers). It computes straight from the NCHW planes, no
// padded window: vector lanes run along the flattened plane (one vector may span several rows
// of a narrow map: a 7x7 plane is 4 vectors, not 7 rows), and a tap whose source lies outside
// the plane is a masked-off lane of its load. Which lanes are off depends on the lane's column
// (left and right taps), on whether the vector touches the first or last row (top and bottom
// taps) and on the plane's end, all as lane bits: the column bits repeat every
// W / gcd(W, lanes) vectors, so a table of that many entries serves every plane.
//
//   forward      y[n, c] = act(x[n, c] (*) w[c] + bias[c] (+ residual))   the epilogue in registers
//   input grad   dx[n, c] = dy[n, c] (*) flip(w[c])                       (the same correlation)
//   weight grad  dw[c][r][s] = sum_{n, i} dy[n, c][i] * x[n, c][i + (r-1) W + (s-1)]   per lane,
//                                                                          summed across lanes once
// The ring / flat window path (depthwise.h) keeps every other depthwise shape.
#pragma once
#include <cstdint>
#include <vector>

#include "common/params.h"
#include "elementwise/epilogue.h"

namespace fastconv {

// Stride 1, padding 1, dilation 1, a 3x3 window, one input and one output channel per group.
inline bool depthwise_dense_fits(const ConvParams& p) {
  return p.groups > 1 && p.Cg() == 1 && p.Kg() == 1 && p.R == 3 && p.S == 3 && p.stride_h == 1 &&
         p.stride_w == 1 && p.pad_h == 1 && p.pad_w == 1 && p.dil_h == 1 && p.dil_w == 1;
}

template <typename T>
struct DwDenseJob {
  const T* src;  // [planes][H][W]: x (forward, weight grad) or dy (input grad); plane = n * channels + c
  const T* w;    // [channels][3][3]
  bool flipped;  // read each window rotated by 180 degrees (the input gradient)
  const T* bias;  // [channels] or null
  T* out;         // [planes][H][W] (correlate)
  const T* dy;    // [planes][H][W] (weight grad)
  int64_t planes, channels, H, W;
  // Per vector v of a plane, at [2 * (v % period)]: the lanes whose column is not 0 (their left
  // tap lies inside the plane); at [+1]: whose column is not W - 1.
  const uint32_t* column_bits;
  int64_t period;
  // The forward's epilogue, applied in registers (act none / relu / clamp, residual), or null.
  const OutputEpilogue<T>* ep;
};

template <typename T>
struct DepthwiseDenseKernels {
  int lanes;
  // out[plane][e0, e1) for planes [plane0, plane1) (e0 a multiple of 16, e1 one too or H * W)
  void (*correlate)(const DwDenseJob<T>& j, int64_t plane0, int64_t plane1, int64_t e0, int64_t e1);
  // dw9[r * 3 + s] = the sum over images n of channel c's output elements [e0, e1)
  void (*weight_grad)(const DwDenseJob<T>& j, int64_t c, int64_t e0, int64_t e1, T* dw9);
};

// The active ISA's kernels.
template <typename T>
const DepthwiseDenseKernels<T>& depthwise_dense_kernels();

// y[N,C,H,W] = x (*) w[C,1,3,3] + bias (may be null), then ep (may be null: none).
template <typename T>
void depthwise_dense_forward(const T* x, const T* w, const T* bias, T* y, const ConvParams& p,
                             const OutputEpilogue<T>* ep);

template <typename T>
void depthwise_dense_input_grad(const T* dy, const T* w, T* dx, const ConvParams& p);

template <typename T>
void depthwise_dense_weight_grad(const T* x, const T* dy, T* dw, const ConvParams& p);

}  // namespace fastconv
