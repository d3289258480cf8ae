// Packing a whole row-major A (weights) into the layout gemm_driver reads, in parallel.
// Layout: for each reduction slice pc (length slice_kc(cols, kc_max)), all row panels:
//   dst[pc * round_up(rows, MR) + panel * kc * MR + k * MR + i] = a[(panel*MR + i) * lda + pc + k]
// Weights are packed on every call, so at batch 1 on wide layers (512x4608) this must not be a
// serial scalar loop: each (slice, panel) is one in-register transpose of MR rows.
#pragma once
#include <algorithm>
#include <cstdint>

#include "common/gemm.h"
#include "common/parallel.h"
#include "common/transpose.h"

namespace fastconv {

// mr rows per panel, reduction slices of slice_kc(cols, kc_max) (a micro-kernel's mr and kc, or
// its nr for panels of the transposed operand).
template <typename T>
void pack_a_rowmajor_all(const T* a, int64_t lda, int64_t rows, int64_t cols, int mr, int64_t kc_max, T* dst) {
  const int64_t mpad = round_up(rows, mr), panels = mpad / mr, kcb = slice_kc(cols, kc_max);
  const int64_t slices = (cols + kcb - 1) / kcb;
  const TransposePanelFn<T> transpose = transpose_panel<T>(active_isa());
  parallel_for(slices * panels, [&](int64_t item) {
    const int64_t s = item / panels, panel = item % panels;
    const int64_t pc = s * kcb, kc = std::min(kcb, cols - pc);
    const T* rowp[64];
    for (int i = 0; i < mr; ++i) {
      const int64_t r = panel * mr + i;
      rowp[i] = r < rows ? a + r * lda + pc : nullptr;
    }
    transpose(rowp, mr, kc, dst + pc * mpad + panel * kc * mr);
  });
}

// Where the layout above puts a[r][c]: the same rule as one offset, for code that reads packed
// weights back (fastconv._C.packed_a_offsets, which WinogradWeights.unpacked uses).
inline int64_t packed_a_offset(int64_t r, int64_t c, int64_t rows, int64_t cols, int mr, int64_t kc_max) {
  const int64_t mpad = round_up(rows, mr), kcb = slice_kc(cols, kc_max);
  const int64_t pc = c / kcb * kcb, kc = std::min(kcb, cols - pc);
  return pc * mpad + (r / mr) * kc * mr + (c - pc) * mr + r % mr;
}

}  // namespace fastconv
