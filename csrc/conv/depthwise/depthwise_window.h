// The one computation every depthwise pass runs, described as data (DwJob), and the per-ISA
// kernels that run one work item of it (DepthwiseKernels, listed in depthwise_kernels.cpp).
//
// A correlation of "source" planes into "output" planes, per image n and group g:
//   out[n, g, k][oh][ow] (+)= sum_{ci < Cg} sum_{r, s} w[g][k][ci][r][s] * P_ci[v(oh, r)][ow*phases + s*dil_w]
// where P is the source plane seen through a window: virtual row v holds source row v / src_row_step
// (when that divides and lies in the plane, else zeros) and virtual column j holds source column
// (j - col_pad) / src_col_step (likewise), with v(oh, r) = oh*row_step - row_pad + r*dil_h.
//   forward      source x, row/col step 1, pad = padding, output stride = phases = stride
//   input grad   source dy, upsampled: src_row_step/src_col_step = stride, pad = dil*(R-1) - padding,
//                output stride 1, the forward kernel read flipped (its output channels are the input's)
// Virtual rows are materialised one at a time in a ring of `span` zero-padded window rows, each
// stored as `phases` rows of `pitch` (phase q holds columns q, q+phases, ...), so that every tap
// of a vector of output columns is one unit-stride load: tap s of column ow reads ow + tap_off[s].
// Narrow planes (`flat`) are windowed whole instead: row phase a and column phase q of the padded
// plane form a flat_rows x flat_pitch plane, and the output is computed as one row of
// out_h * flat_pitch columns (those past out_w in each flat_pitch are dropped), tap (r, s) at
// flat_row_off[r] + flat_col_off[s] (its row phase and row, then its column phase and column):
// a 7-wide map fills 14 of 16 lanes instead of 7, and the per-row work of the ring (one fill,
// one store, the tap set-up) is paid once per plane.
#pragma once
#include <algorithm>
#include <cstdint>

#include "common/kernel_list.h"
#include "common/workspace.h"

namespace fastconv {

// The widest vector any kernel uses: window rows and accumulators are sized for it, so one
// job serves every ISA.
constexpr int64_t kDepthwiseMaxLanes = 16;

template <typename T>
struct DwJob {
  const T* src;  // [batch][groups][Cg][src_h][src_w]
  int64_t src_h, src_w;
  int64_t batch, groups, Cg, Kg;
  const T* w;     // [groups][Kg][Cg][R][S], or if flipped the forward kernel [groups][Cg][Kg][R][S]
  bool flipped;   // read w as the adjoint's kernel: transposed channels, taps in reverse order
  const T* bias;  // [groups * Kg] or null
  int64_t R, S, dil_h;
  int64_t row_step, row_pad, src_row_step;
  int64_t col_pad, src_col_step, src_w_used;  // source columns >= src_w_used are never read by an output
  int64_t phases, pitch;
  const int64_t* tap_off;  // [S]
  // Where a source row lands in a window row. Column steps of 1: per phase q, window columns
  // [lo, hi) take source columns src0 + (i - lo) * phases, as {lo, hi, src0}, then the first
  // source column any phase takes and how many columns from there they span; steps > 1 (one
  // phase): source columns [lo, hi) land at t * src_col_step + col_pad, as {lo, hi, row length}.
  const int64_t* col_plan;
  int64_t span;            // window rows one output row reads: (R - 1) * dil_h + 1
  bool flat;
  int64_t flat_rows, flat_pitch, plane_stride;  // one phase plane of the flat window
  int64_t flat_len;        // out_h * flat_pitch rounded up to whole vectors of the widest ISA
  const int64_t* flat_row_off;  // [R]
  const int64_t* flat_col_off;  // [S]
  int64_t out_h, out_w;
  T* out;        // correlate: [batch][groups][Kg][out_h][out_w]
  const T* dy;   // weight_grad: [batch][groups][Kg][out_h][out_w]; P is x's window
};

// One thread's scratch, sized before the parallel loop: the ring of window rows (or the flat
// window), the row pointers of one output row, lanes * R * S accumulators for the generic
// weight gradient.
template <typename T>
struct DwScratch {
  AlignedBuffer<T> ring;
  AlignedBuffer<int64_t> held;  // per ring slot, the virtual row it holds
  AlignedBuffer<const T*> rows;
  AlignedBuffer<T> acc;
  AlignedBuffer<T> flat_out;  // flat path: Kg output rows (correlate) or dy's flat row (weight grad)
  bool prepared = false;
  void reserve(const DwJob<T>& j) {
    // the flat weight gradient falls back to the ring (see weight_grad_item), hence both sizes
    ring.resize(std::max(j.flat ? j.row_step * j.phases * j.plane_stride : 0, j.span * j.phases * j.pitch));
    flat_out.resize(j.flat ? j.Kg * j.flat_len : 0);
    held.resize(j.span);
    rows.resize(j.R);
    acc.resize(kDepthwiseMaxLanes * j.R * j.S);
  }
  // Zeroes the windows (their padding is never written again) and dy's flat row, on the thread
  // that uses them, before its first item.
  void prepare() {
    if (prepared) return;
    ring.zero();
    flat_out.zero();
    prepared = true;
  }
};

template <typename T>
struct DepthwiseKernels {
  // out rows [oh0, oh1) of image n, group g (all Kg output planes, summing all Cg sources)
  void (*correlate)(const DwJob<T>& j, int64_t n, int64_t g, int64_t oh0, int64_t oh1, DwScratch<T>& s);
  // dw_part[k][r][s] = sum over images and rows [oh0, oh1) of group g (Cg == 1)
  void (*weight_grad)(const DwJob<T>& j, int64_t g, int64_t oh0, int64_t oh1, DwScratch<T>& s, T* dw_part);
};

// The kernels for an R x S window (3x3 and 5x5 have their own, with the window in registers),
// for the active ISA.
template <typename T>
const DepthwiseKernels<T>& depthwise_kernels(int64_t R, int64_t S);

}  // namespace fastconv
