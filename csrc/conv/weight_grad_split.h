// How the weight gradient's work is split, shared by its im2col and shifted-row paths.
// dw[Kg x KK] = sum over q of dy[Kg x q] * patches[q x KK], q running over every image's
// output pixels. Threads either split the reduction (each chunk of q sums into its own
// partial dw; the partials are added in chunk order, so the result does not depend on which
// thread ran which chunk) or, when there is little to reduce but dw is wide, split dw's
// columns (disjoint outputs, no partials).
#pragma once
#include <algorithm>
#include <cstdint>
#include <vector>

#include "common/gemm.h"
#include "common/parallel.h"
#include "common/workspace.h"

namespace fastconv {

struct WeightGradSplit {
  int64_t qchunks, qstep;  // reduction chunks
  int64_t cchunks, cstep;  // column chunks (multiples of NR)
};

inline WeightGradSplit split_weight_grad(int64_t Q, int64_t KK, int nr, int threads) {
  int64_t cchunks = 1, qchunks = 1;
  if (threads > 1) {
    if (Q < 2048 * threads && KK >= 4 * nr * threads) cchunks = threads;
    else qchunks = std::min<int64_t>(threads, (Q + 63) / 64);
  }
  const int64_t cstep = round_up((KK + cchunks - 1) / cchunks, nr);
  const int64_t qstep = (Q + qchunks - 1) / qchunks;
  return {(Q + qstep - 1) / qstep, qstep, (KK + cstep - 1) / cstep, cstep};
}

// One partial sum per reduction chunk; chunk 0 accumulates into the output itself.
template <typename T>
class ChunkPartials {
 public:
  ChunkPartials(T* out, int64_t size, int64_t chunks) : out_(out), size_(size), extra_(chunks > 1 ? chunks - 1 : 0) {
    std::fill(out, out + size, T(0));
    for (auto& b : extra_) {
      b.resize(size);
      b.zero();
    }
  }
  T* chunk(int64_t c) { return c == 0 ? out_ : extra_[c - 1].data(); }
  // out += every other chunk, in chunk order.
  void reduce() {
    if (extra_.empty()) return;
    parallel_for((size_ + 4095) / 4096, [&](int64_t blk) {
      const int64_t i0 = blk * 4096, i1 = std::min(size_, i0 + 4096);
      for (const auto& b : extra_) {
        const T* src = b.data();
        for (int64_t i = i0; i < i1; ++i) out_[i] += src[i];
      }
    });
  }

 private:
  T* out_;
  int64_t size_;
  std::vector<AlignedBuffer<T>> extra_;
};

}  // namespace fastconv
