// The depthwise passes as DwJobs (depthwise_window.h), and their threading (depthwise_work.h):
// work items are (image, group, block of output rows); rows are split only when images x groups
// cannot give every thread several items (batch 1 with few channels). Every buffer is sized
// before the parallel loop.
#include "conv/depthwise/depthwise.h"

#include <algorithm>
#include <vector>

#include "common/parallel.h"
#include "conv/depthwise/depthwise_window.h"
#include "conv/depthwise/depthwise_work.h"

namespace fastconv {
namespace {

constexpr int64_t kMinRowsPerBlock = 4;

// Rows per block so that outer x blocks gives each thread kDepthwiseItemsPerThread items (the
// rows a block re-reads at its top: span - row_step).
int64_t rows_per_block(int64_t outer, int64_t rows, int threads) {
  const int64_t want = kDepthwiseItemsPerThread * threads;
  if (outer >= want) return rows;
  return std::min(rows, std::max(kMinRowsPerBlock, ceil_div(rows * outer, want)));
}

int64_t floor_div(int64_t a, int64_t b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }
int64_t ceil_div_signed(int64_t a, int64_t b) { return -floor_div(-a, b); }
int64_t clamp(int64_t v, int64_t lo, int64_t hi) { return std::min(std::max(v, lo), hi); }

// DwJob::col_plan for window rows of `len` columns.
template <typename T>
void set_column_plan(DwJob<T>& j, std::vector<int64_t>& plan, int64_t len) {
  const int64_t pad = j.col_pad;
  if (j.src_col_step == 1) {
    plan.assign(3 * j.phases + 2, 0);
    int64_t first = j.src_w_used, end = 0;  // the source columns any phase takes
    for (int64_t q = 0; q < j.phases; ++q) {  // window column i holds source column i*phases + q - pad
      const int64_t lo = clamp(ceil_div_signed(pad - q, j.phases), 0, len);
      const int64_t hi = clamp(ceil_div_signed(j.src_w_used + pad - q, j.phases), lo, len);
      plan[3 * q] = lo;
      plan[3 * q + 1] = hi;
      plan[3 * q + 2] = lo * j.phases + q - pad;
      if (hi > lo) {
        first = std::min(first, plan[3 * q + 2]);
        end = std::max(end, plan[3 * q + 2] + (hi - lo - 1) * j.phases + 1);
      }
    }
    plan[3 * j.phases] = first;  // fill_window_row's one-load path for two phases
    plan[3 * j.phases + 1] = std::max<int64_t>(0, end - first);
  } else {
    const int64_t lo = std::max<int64_t>(0, ceil_div_signed(-pad, j.src_col_step));
    plan = {lo, std::max(lo, std::min(j.src_w_used, floor_div(len - 1 - pad, j.src_col_step) + 1)), len};
  }
  j.col_plan = plan.data();
}

// Ring rows are wide enough for every vector of output columns (rounded up to the widest
// vector) plus the furthest tap, then rounded to a cache line. Narrow planes whose whole window
// fits in L1 get the flat window (see DwJob) instead.
constexpr int64_t kFlatMaxWidth = 64;
constexpr int64_t kFlatMaxBytes = 32768;

template <typename T>
void set_window(DwJob<T>& j, std::vector<int64_t>& offsets, std::vector<int64_t>& plan, int64_t dil_w) {
  const int64_t line = 64 / sizeof(T), L = kDepthwiseMaxLanes;
  const int64_t reach = ((j.S - 1) * dil_w) / j.phases, reach_rows = ((j.R - 1) * j.dil_h) / j.row_step;
  j.span = (j.R - 1) * j.dil_h + 1;
  j.pitch = ceil_div((ceil_div(j.out_w, L) + 1) * L + reach, line) * line;
  j.flat_pitch = j.out_w + reach;
  j.flat_rows = j.out_h + reach_rows;
  j.flat_len = ceil_div(j.out_h * j.flat_pitch, L) * L;
  // flat reads reach flat_len - 1 + (flat_rows - out_h) * flat_pitch + reach: within the rows and one pitch + L
  j.plane_stride = ceil_div(j.flat_rows * j.flat_pitch + j.flat_pitch + L, line) * line;
  j.flat = j.out_w <= kFlatMaxWidth &&
           j.row_step * j.phases * j.plane_stride * int64_t(sizeof(T)) <= kFlatMaxBytes;
  offsets.resize(2 * j.S + j.R);
  for (int64_t s = 0; s < j.S; ++s) {
    const int64_t q = (s * dil_w) % j.phases, k = (s * dil_w) / j.phases;
    offsets[s] = q * j.pitch + k;
    offsets[j.S + j.R + s] = q * j.plane_stride + k;
  }
  for (int64_t r = 0; r < j.R; ++r)
    offsets[j.S + r] = (r * j.dil_h) % j.row_step * j.phases * j.plane_stride + (r * j.dil_h) / j.row_step * j.flat_pitch;
  j.tap_off = offsets.data();
  j.flat_row_off = offsets.data() + j.S;
  j.flat_col_off = offsets.data() + j.S + j.R;
  set_column_plan(j, plan, j.flat ? j.flat_pitch : j.pitch);
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
DwJob<T> forward_job(const T* x, const ConvParams& p, std::vector<int64_t>& offsets, std::vector<int64_t>& plan) {
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
  set_window(j, offsets, plan, p.dil_w);
  return j;
}

template <typename T>
DwScratch<T>& prepared(DwScratch<T>& s) {
  s.prepare();
  return s;
}

template <typename T>
void run_correlation(const DwJob<T>& j) {
  const DepthwiseKernels<T>& k = depthwise_kernels<T>(j.R, j.S);
  const int threads = max_threads();
  std::vector<DwScratch<T>> scratch(threads);
  for (auto& s : scratch) s.reserve(j);
  const int64_t outer = j.batch * j.groups;
  const int64_t rows = j.flat ? j.out_h : rows_per_block(outer, j.out_h, threads);
  const int64_t blocks = ceil_div(j.out_h, rows);
  const int64_t items = outer * blocks;
  parallel_for_chunks(items, depthwise_items_per_claim(items, threads), [&](int64_t first, int64_t last) {
    DwScratch<T>& s = prepared(scratch[thread_id()]);
    for (int64_t item = first; item < last; ++item) {
      const int64_t b = item % blocks, ng = item / blocks;
      k.correlate(j, ng / j.groups, ng % j.groups, b * rows, std::min(j.out_h, (b + 1) * rows), s);
    }
  });
}

}  // namespace

template <typename T>
void depthwise_forward(const T* x, const T* w, const T* bias, T* y, const ConvParams& p) {
  std::vector<int64_t> offsets, plan;
  DwJob<T> j = forward_job(x, p, offsets, plan);
  j.w = w;
  j.bias = bias;
  j.out = y;
  run_correlation(j);
}

// dx = dy upsampled by the stride, correlated with the flipped kernel at padding dil*(R-1) - pad
// (negative: a crop). Its groups have Kg sources and Cg outputs, the transposed kernel's shape.
template <typename T>
void depthwise_input_grad(const T* dy, const T* w, T* dx, const ConvParams& p) {
  std::vector<int64_t> offsets, plan;
  DwJob<T> j = job_for<T>(p);
  j.src = dy;
  j.src_h = p.OH;
  j.src_w = p.OW;
  j.Cg = p.Kg();
  j.Kg = p.Cg();
  j.w = w;
  j.flipped = true;
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
  set_window(j, offsets, plan, p.dil_w);
  run_correlation(j);
}

// Items are (group, block of rows) over all images; with several blocks each writes its own
// partial dw, summed in block order afterwards (the same result on every run).
template <typename T>
void depthwise_weight_grad(const T* x, const T* dy, T* dw, const ConvParams& p) {
  std::vector<int64_t> offsets, plan;
  DwJob<T> j = forward_job(x, p, offsets, plan);
  j.dy = dy;
  const DepthwiseKernels<T>& k = depthwise_kernels<T>(j.R, j.S);
  const int threads = max_threads();
  std::vector<DwScratch<T>> scratch(threads);
  for (auto& s : scratch) s.reserve(j);
  const int64_t rows = j.flat ? p.OH : rows_per_block(p.groups, p.OH, threads), blocks = ceil_div(p.OH, rows);
  const int64_t per_group = j.Kg * p.R * p.S;
  std::vector<T> partial(blocks > 1 ? p.groups * blocks * per_group : 0);
  const int64_t items = p.groups * blocks;
  parallel_for_chunks(items, depthwise_items_per_claim(items, threads), [&](int64_t first, int64_t last) {
    DwScratch<T>& s = prepared(scratch[thread_id()]);
    for (int64_t item = first; item < last; ++item) {
      const int64_t g = item / blocks, b = item % blocks;
      T* out = blocks > 1 ? partial.data() + item * per_group : dw + g * per_group;
      k.weight_grad(j, g, b * rows, std::min(p.OH, (b + 1) * rows), s, out);
    }
  });
  if (blocks > 1) sum_block_partials(partial.data(), p.groups, blocks, per_group, dw);
}

template void depthwise_forward<float>(const float*, const float*, const float*, float*, const ConvParams&);
template void depthwise_forward<double>(const double*, const double*, const double*, double*, const ConvParams&);
template void depthwise_input_grad<float>(const float*, const float*, float*, const ConvParams&);
template void depthwise_input_grad<double>(const double*, const double*, double*, const ConvParams&);
template void depthwise_weight_grad<float>(const float*, const float*, float*, const ConvParams&);
template void depthwise_weight_grad<double>(const double*, const double*, double*, const ConvParams&);

}  // namespace fastconv
