// The depthwise passes as DwJobs (depthwise_window.h), and their threading: work items are
// (image, group, block of output rows); rows are split only when images x groups cannot give
// every thread several items (batch 1 with few channels). Every buffer is sized before the
// parallel loop.
#include "conv/depthwise/depthwise.h"

#include <algorithm>
#include <vector>

#include "common/parallel.h"
#include "conv/depthwise/depthwise_window.h"
#include "conv/flip.h"

namespace fastconv {
namespace {

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// Items per thread below which output rows are split: enough for dynamic scheduling to even
// out, few enough that the rows a block re-reads at its top (span - row_step) stay cheap.
constexpr int64_t kItemsPerThread = 4;
constexpr int64_t kMinRowsPerBlock = 4;

// Rows per block so that outer x blocks gives each thread kItemsPerThread items.
int64_t rows_per_block(int64_t outer, int64_t rows, int threads) {
  const int64_t want = kItemsPerThread * threads;
  if (outer >= want) return rows;
  return std::min(rows, std::max(kMinRowsPerBlock, ceil_div(rows * outer, want)));
}

// Window rows are wide enough for every vector of output columns (rounded up to the widest
// vector) plus the furthest tap, then rounded to a cache line.
template <typename T>
void set_window(DwJob<T>& j, std::vector<int64_t>& tap_off, int64_t dil_w) {
  const int64_t reach = ((j.S - 1) * dil_w) / j.phases;
  j.pitch = (ceil_div(j.out_w, kDepthwiseMaxLanes) + 1) * kDepthwiseMaxLanes + reach;
  j.pitch = ceil_div(j.pitch, int64_t(64 / sizeof(T))) * int64_t(64 / sizeof(T));
  tap_off.resize(j.S);
  for (int64_t s = 0; s < j.S; ++s) tap_off[s] = ((s * dil_w) % j.phases) * j.pitch + (s * dil_w) / j.phases;
  j.tap_off = tap_off.data();
  j.span = (j.R - 1) * j.dil_h + 1;
}

// The common part of every job: x's or dy's planes, the window size, the groups.
template <typename T>
DwJob<T> job_for(const ConvParams& p) {
  DwJob<T> j{};
  j.batch = p.N;
  j.groups = p.groups;
  j.R = p.R;
  j.S = p.S;
  j.dil_h = p.dil_h;
  return j;
}

// The forward window over x: column phases = stride, columns past the last tap left out.
template <typename T>
DwJob<T> forward_job(const T* x, const ConvParams& p, std::vector<int64_t>& tap_off) {
  DwJob<T> j = job_for<T>(p);
  j.src = x;
  j.src_h = p.H;
  j.src_w = p.W;
  j.Cg = 1;
  j.Kg = p.Kg();
  j.row_step = p.stride_h;
  j.row_pad = p.pad_h;
  j.src_row_step = 1;
  j.col_pad = p.pad_w;
  j.src_col_step = 1;
  j.src_w_used = std::min(p.W, (p.OW - 1) * p.stride_w - p.pad_w + (p.S - 1) * p.dil_w + 1);
  j.phases = p.stride_w;
  j.out_h = p.OH;
  j.out_w = p.OW;
  set_window(j, tap_off, p.dil_w);
  return j;
}

template <typename T>
void run_correlation(const DwJob<T>& j) {
  const DepthwiseKernels<T>& k = depthwise_kernels<T>(j.R, j.S);
  const int threads = max_threads();
  std::vector<DwScratch<T>> scratch(threads);
  for (auto& s : scratch) s.reserve(j);
  const int64_t outer = j.batch * j.groups, rows = rows_per_block(outer, j.out_h, threads);
  const int64_t blocks = ceil_div(j.out_h, rows);
  parallel_for(outer * blocks, [&](int64_t item) {
    const int64_t b = item % blocks, ng = item / blocks;
    k.correlate(j, ng / j.groups, ng % j.groups, b * rows, std::min(j.out_h, (b + 1) * rows), scratch[thread_id()]);
  });
}

}  // namespace

template <typename T>
void depthwise_forward(const T* x, const T* w, const T* bias, T* y, const ConvParams& p) {
  std::vector<int64_t> tap_off;
  DwJob<T> j = forward_job(x, p, tap_off);
  j.w = w;
  j.bias = bias;
  j.out = y;
  run_correlation(j);
}

// dx = dy upsampled by the stride, correlated with the flipped kernel at padding dil*(R-1) - pad
// (negative: a crop). Its groups have Kg sources and Cg outputs, the transposed kernel's shape.
template <typename T>
void depthwise_input_grad(const T* dy, const T* w, T* dx, const ConvParams& p) {
  const std::vector<T> wt = flipped_transposed_kernel(w, p);
  std::vector<int64_t> tap_off;
  DwJob<T> j = job_for<T>(p);
  j.src = dy;
  j.src_h = p.OH;
  j.src_w = p.OW;
  j.Cg = p.Kg();
  j.Kg = p.Cg();
  j.w = wt.data();
  j.row_step = 1;
  j.row_pad = p.dil_h * (p.R - 1) - p.pad_h;
  j.src_row_step = p.stride_h;
  j.col_pad = p.dil_w * (p.S - 1) - p.pad_w;
  j.src_col_step = p.stride_w;
  j.src_w_used = p.OW;
  j.phases = 1;
  j.out_h = p.H;
  j.out_w = p.W;
  j.out = dx;
  set_window(j, tap_off, p.dil_w);
  run_correlation(j);
}

// Items are (group, block of rows) over all images; with several blocks each writes its own
// partial dw, summed in block order afterwards (the same result on every run).
template <typename T>
void depthwise_weight_grad(const T* x, const T* dy, T* dw, const ConvParams& p) {
  std::vector<int64_t> tap_off;
  DwJob<T> j = forward_job(x, p, tap_off);
  j.dy = dy;
  const DepthwiseKernels<T>& k = depthwise_kernels<T>(j.R, j.S);
  const int threads = max_threads();
  std::vector<DwScratch<T>> scratch(threads);
  for (auto& s : scratch) s.reserve(j);
  const int64_t rows = rows_per_block(p.groups, p.OH, threads), blocks = ceil_div(p.OH, rows);
  const int64_t per_group = j.Kg * p.R * p.S;
  std::vector<T> partial(blocks > 1 ? p.groups * blocks * per_group : 0);
  parallel_for(p.groups * blocks, [&](int64_t item) {
    const int64_t g = item / blocks, b = item % blocks;
    T* out = blocks > 1 ? partial.data() + item * per_group : dw + g * per_group;
    k.weight_grad(j, g, b * rows, std::min(p.OH, (b + 1) * rows), scratch[thread_id()], out);
  });
  if (blocks == 1) return;
  parallel_for(p.groups, [&](int64_t g) {
    for (int64_t i = 0; i < per_group; ++i) {
      T sum = T(0);
      for (int64_t b = 0; b < blocks; ++b) sum += partial[(g * blocks + b) * per_group + i];
      dw[g * per_group + i] = sum;
    }
  });
}

template void depthwise_forward<float>(const float*, const float*, const float*, float*, const ConvParams&);
template void depthwise_forward<double>(const double*, const double*, const double*, double*, const ConvParams&);
template void depthwise_input_grad<float>(const float*, const float*, float*, const ConvParams&);
template void depthwise_input_grad<double>(const double*, const double*, double*, const ConvParams&);
template void depthwise_weight_grad<float>(const float*, const float*, float*, const ConvParams&);
template void depthwise_weight_grad<double>(const double*, const double*, double*, const ConvParams&);

}  // namespace fastconv
