// The dense 3x3 depthwise passes (depthwise_dense.h) and their threading: work items are
// (plane, block of output elements); a plane is split into blocks only when the planes alone
// cannot give every thread several items (batch 1 with few channels). The column-bit table is
// built once per call for the active kernel's lane count; stride 2's phase scratch once per
// thread, before the parallel loop.
#include "conv/depthwise/depthwise_dense.h"

#include <algorithm>
#include <numeric>
#include <vector>

#include "common/parallel.h"
#include "common/workspace.h"
#include "conv/depthwise/depthwise_work.h"

namespace fastconv {
namespace {

constexpr int64_t kMinBlock = 256;  // elements: a smaller block costs more in set-up than it computes
constexpr int64_t kAlign = 16;      // blocks start on a multiple of every ISA's lane count

// Lane bits per vector position (DwDenseJob::column_bits) for vectors of `lanes`.
std::vector<uint32_t> column_bits(int64_t W, int lanes, int64_t& period) {
  period = W / std::gcd(W, int64_t(lanes));
  std::vector<uint32_t> bits(2 * period, 0u);
  for (int64_t v = 0; v < period; ++v)
    for (int l = 0; l < lanes; ++l) {
      const int64_t col = (v * lanes + l) % W;
      if (col != 0) bits[2 * v] |= 1u << l;
      if (col != W - 1) bits[2 * v + 1] |= 1u << l;
    }
  return bits;
}

// Elements per block of a plane so that `outer` x blocks gives each thread
// kDepthwiseItemsPerThread items.
int64_t block_elements(int64_t outer, int64_t plane, int threads) {
  const int64_t want = kDepthwiseItemsPerThread * threads;
  if (outer >= want) return plane;
  const int64_t block = std::max(kMinBlock, ceil_div(plane * outer, want));
  return std::min(plane, ceil_div(block, kAlign) * kAlign);
}

// The job over source planes src (H x W) into the output planes (OH x OW).
template <typename T>
DwDenseJob<T> job_for(const T* src, const T* w, const ConvParams& p, std::vector<uint32_t>& bits, int lanes) {
  DwDenseJob<T> j{};
  j.src = src;
  j.src_h = p.H;
  j.src_w = p.W;
  j.stride = int(p.stride_h);
  j.w = w;
  j.planes = p.N * p.C;
  j.channels = p.C;
  j.H = p.OH;
  j.W = p.OW;
  j.phase_stride = depthwise_dense_phase_stride(p.OH, p.OW);
  bits = column_bits(p.OW, lanes, j.period);
  j.column_bits = bits.data();
  return j;
}

// Stride 2's phase planes, one set per thread (zeroed: the lanes a masked load drops may still
// read them, and stay defined); nothing at stride 1.
template <typename T>
std::vector<AlignedBuffer<T>> phase_scratch(const DwDenseJob<T>& j, int threads) {
  std::vector<AlignedBuffer<T>> scratch(j.stride == 2 ? threads : 0);
  for (auto& s : scratch) {
    s.resize(4 * j.phase_stride);
    s.zero();
  }
  return scratch;
}

template <typename T>
T* scratch_of(std::vector<AlignedBuffer<T>>& scratch) {
  return scratch.empty() ? nullptr : scratch[thread_id()].data();
}

// Runs every (plane, block) of the correlation; `after` (may be empty) runs on each finished
// stretch of the output, given as (offset, length). Whole planes go to the kernel a claim at a
// time.
template <typename T, class After>
void run_correlation(const DwDenseJob<T>& j, const DepthwiseDenseKernels<T>& k, After&& after) {
  const int threads = max_threads();
  const int64_t HW = j.H * j.W, block = block_elements(j.planes, HW, threads), blocks = ceil_div(HW, block);
  std::vector<AlignedBuffer<T>> scratch = phase_scratch(j, threads);
  if (blocks == 1) {
    parallel_for_chunks(j.planes, depthwise_items_per_claim(j.planes, threads), [&](int64_t first, int64_t last) {
      k.correlate(j, first, last, 0, HW, scratch_of(scratch));
      after(first * HW, (last - first) * HW);
    });
    return;
  }
  parallel_for(j.planes * blocks, [&](int64_t item) {
    const int64_t plane = item / blocks, e0 = (item % blocks) * block, e1 = std::min(HW, e0 + block);
    k.correlate(j, plane, plane + 1, e0, e1, scratch_of(scratch));
    after(plane * HW + e0, e1 - e0);
  });
}

}  // namespace

template <typename T>
void depthwise_dense_forward(const T* x, const T* w, const T* bias, T* y, const ConvParams& p,
                             const OutputEpilogue<T>* ep) {
  const DepthwiseDenseKernels<T>& k = depthwise_dense_kernels<T>();
  std::vector<uint32_t> bits;
  DwDenseJob<T> j = job_for(x, w, p, bits, k.lanes);
  j.bias = bias;
  j.out = y;
  // SiLU is no register op of the kernels: it runs on each block while the block is in cache.
  const bool in_registers = !ep || ep->act != kActSilu;
  j.ep = in_registers ? ep : nullptr;
  run_correlation(j, k, [&](int64_t at, int64_t n) {
    if (!in_registers) epilogue_in_place_rows(*ep, y + at, 0, 1, static_cast<const T*>(nullptr), n);
  });
}

// Stride 1: the forward's correlation of dy with the flipped window. Stride 2: over dy's grid
// (OH x OW), dx's phases zipped into dx (H x W).
template <typename T>
void depthwise_dense_input_grad(const T* dy, const T* w, T* dx, const ConvParams& p) {
  const DepthwiseDenseKernels<T>& k = depthwise_dense_kernels<T>();
  std::vector<uint32_t> bits;
  DwDenseJob<T> j = job_for(dy, w, p, bits, k.lanes);
  j.src_h = p.OH;
  j.src_w = p.OW;
  j.dx_h = p.H;
  j.dx_w = p.W;
  j.flipped = true;
  j.out = dx;
  run_correlation(j, k, [](int64_t, int64_t) {});
}

// Items are (channel, block of elements) over all images; with several blocks each writes its
// own partial dw, summed in block order afterwards (the same result on every run).
template <typename T>
void depthwise_dense_weight_grad(const T* x, const T* dy, T* dw, const ConvParams& p) {
  const DepthwiseDenseKernels<T>& k = depthwise_dense_kernels<T>();
  std::vector<uint32_t> bits;
  DwDenseJob<T> j = job_for(x, static_cast<const T*>(nullptr), p, bits, k.lanes);
  j.dy = dy;
  const int threads = max_threads();
  const int64_t HW = p.OH * p.OW, block = block_elements(p.C, HW, threads), blocks = ceil_div(HW, block);
  std::vector<T> partial(blocks > 1 ? p.C * blocks * 9 : 0);
  std::vector<AlignedBuffer<T>> scratch = phase_scratch(j, threads);
  parallel_for(p.C * blocks, [&](int64_t item) {
    const int64_t c = item / blocks, e0 = (item % blocks) * block;
    k.weight_grad(j, c, e0, std::min(HW, e0 + block), blocks > 1 ? partial.data() + item * 9 : dw + c * 9,
                  scratch_of(scratch));
  });
  if (blocks > 1) sum_block_partials(partial.data(), p.C, blocks, int64_t(9), dw);
}

template void depthwise_dense_forward<float>(const float*, const float*, const float*, float*, const ConvParams&,
                                             const OutputEpilogue<float>*);
template void depthwise_dense_forward<double>(const double*, const double*, const double*, double*,
                                              const ConvParams&, const OutputEpilogue<double>*);
template void depthwise_dense_input_grad<float>(const float*, const float*, float*, const ConvParams&);
template void depthwise_dense_input_grad<double>(const double*, const double*, double*, const ConvParams&);
template void depthwise_dense_weight_grad<float>(const float*, const float*, float*, const ConvParams&);
template void depthwise_dense_weight_grad<double>(const double*, const double*, double*, const ConvParams&);

}  // namespace fastconv
