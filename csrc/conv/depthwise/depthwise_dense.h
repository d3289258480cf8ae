// The depthwise family's dense 3x3 path: stride 1 or 2, padding 1, dilation 1, one output
// channel per group (MobileNet's depthwise layers). Vector lanes run along the flattened output
// plane (one vector may span several rows of a narrow map: a 7x7 plane is 4 vectors, not 7
// rows), and a tap whose source lies outside the plane is a masked-off lane. Which lanes are off
// depends on the lane's column (left and right taps), on whether the vector touches the first or
// last row (top and bottom taps) and on the plane's end, all as lane bits: the column bits
// repeat every OW / gcd(OW, lanes) vectors, so a table of that many entries serves every plane.
//
// Stride 1 reads the source plane in place: tap (r, s) of output i is source i + (r-1) W + (s-1).
// Stride 2 first splits the source plane into its four phases (even / odd rows x even / odd
// columns, each OH x OW, zero where the plane ends), in a per-thread scratch: output (oh, ow)
// then reads each phase at (oh, ow), (oh, ow - 1), (oh - 1, ow) or (oh - 1, ow - 1), flat offsets
// 0, -1, -OW, -OW - 1 of the output's own index, so the same flat vectors serve it.
//
//   forward      y[n, c] = act(x[n, c] (*) w[c] + bias[c] (+ residual))   the epilogue in registers
//   input grad   dx[n, c] = dy[n, c] (*) flip(w[c])                       (stride 1: the same correlation;
//                stride 2: dx's phases from dy, then interleaved into dx's rows)
//   weight grad  dw[c][r][s] = sum_{n, i} dy[n, c][i] * (tap (r, s) of output i)   per lane,
//                                                                          summed across lanes once
// The ring / flat window path (depthwise.h) keeps every other depthwise shape.
#pragma once
#include <cstdint>
#include <vector>

#include "common/params.h"
#include "elementwise/epilogue.h"

namespace fastconv {

// Stride 1 or 2 (both axes alike), padding 1, dilation 1, a 3x3 window, one input and one output
// channel per group: every pass (the input gradient at stride 1 is the same correlation, the
// window flipped; at stride 2, dx's four phases, each a correlation of dy with 1, 2 or 4 taps at
// offsets (0, 0) .. (+1, +1)).
inline bool depthwise_dense_fits(const ConvParams& p) {
  return p.groups > 1 && p.Cg() == 1 && p.Kg() == 1 && p.R == 3 && p.S == 3 && p.stride_h == p.stride_w &&
         (p.stride_h == 1 || p.stride_h == 2) && p.pad_h == 1 && p.pad_w == 1 && p.dil_h == 1 && p.dil_w == 1;
}

template <typename T>
struct DwDenseJob {
  const T* src;  // [planes][src_h][src_w]: x (forward, weight grad) or dy (input grad); plane = n * channels + c
  int64_t src_h, src_w;
  int stride;    // 1 or 2
  const T* w;    // [channels][3][3]
  bool flipped;  // read each window rotated by 180 degrees (the input gradient)
  const T* bias;  // [channels] or null
  T* out;         // [planes][H][W] (correlate)
  const T* dy;    // [planes][H][W] (weight grad)
  int64_t planes, channels, H, W;  // H x W: the output plane
  int64_t phase_stride;  // stride 2: elements from one phase plane to the next in the scratch
  int64_t dx_h, dx_w;    // the stride-2 input gradient: dx's plane (the grid is dy's, H x W)
  // Per vector v of a plane, at [2 * (v % period)]: the lanes whose column is not 0 (their left
  // tap lies inside the plane); at [+1]: whose column is not W - 1.
  const uint32_t* column_bits;
  int64_t period;
  // The forward's epilogue, applied in registers (act none / relu / clamp, residual), or null.
  const OutputEpilogue<T>* ep;
};

// Stride 2's per-thread scratch: the four phase planes, and a margin the masked-off lanes of the
// row above may point into.
inline int64_t depthwise_dense_phase_stride(int64_t OH, int64_t OW) { return (OH * OW + 15) / 16 * 16 + 16; }

template <typename T>
struct DepthwiseDenseKernels {
  int lanes;
  // out[plane][e0, e1) for planes [plane0, plane1) (e0 a multiple of 16, e1 one too or H * W);
  // phases: stride 2's scratch (4 * phase_stride elements), unused at stride 1
  void (*correlate)(const DwDenseJob<T>& j, int64_t plane0, int64_t plane1, int64_t e0, int64_t e1, T* phases);
  // dw9[r * 3 + s] = the sum over images n of channel c's output elements [e0, e1)
  void (*weight_grad)(const DwDenseJob<T>& j, int64_t c, int64_t e0, int64_t e1, T* dw9, T* phases);
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
