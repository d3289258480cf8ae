// How both depthwise paths (the window path, depthwise.cpp; the dense path, depthwise_dense.cpp)
// share their work out: items (image x group, or group alone, times a block of the output) claimed
// a few at a time, and the weight gradient's per-block partial sums added in block order.
#pragma once
#include <algorithm>
#include <cstdint>

#include "common/parallel.h"

namespace fastconv {

// Items per thread below which an output plane is cut into blocks: enough for dynamic
// scheduling to even out, few enough that each block's set-up (the rows it re-reads at its top,
// its first vectors' masks) stays cheap.
constexpr int64_t kDepthwiseItemsPerThread = 4;

// Items per claim of the parallel loop: a 7x7 plane takes less time than two threads spend
// claiming items one at a time; 4 * kDepthwiseItemsPerThread claims per thread still even out.
inline int64_t depthwise_items_per_claim(int64_t items, int threads) {
  return std::max<int64_t>(1, items / (4 * kDepthwiseItemsPerThread * threads));
}

// dw[g * per_group + i] = the sum over b of partial[(g * blocks + b) * per_group + i], in block
// order (the same result on every run, whatever thread computed which block).
template <typename T>
void sum_block_partials(const T* partial, int64_t groups, int64_t blocks, int64_t per_group, T* dw) {
  parallel_for(groups, [&](int64_t g) {
    for (int64_t i = 0; i < per_group; ++i) {
      T sum = T(0);
      for (int64_t b = 0; b < blocks; ++b) sum += partial[(g * blocks + b) * per_group + i];
      dw[g * per_group + i] = sum;
    }
  });
}

}  // namespace fastconv
