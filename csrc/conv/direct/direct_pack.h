// One MR-row panel of a convolution's weights, packed for the GEMM micro-kernel
// ([k][MR], rows past the end zero) straight from the OIHW tensor, for one reduction slice.
#pragma once
#include <algorithm>
#include <cstdint>

#include "common/pack.h"
#include "common/params.h"
#include "common/transpose.h"

namespace fastconv {

// Forward: rows are output channels k of group g, the reduction runs over (c, r, s):
//   dst[t*MR + i] = w[g*Kg + row0 + i][pc + t]
template <typename T>
void pack_weight_panel(const T* w, const ConvParams& p, TransposePanelFn<T> transpose, int mr, int64_t g,
                       int64_t row0, int64_t pc, int64_t kc, T* dst) {
  const int64_t Kg = p.Kg(), KK = p.patch();
  const T* rowp[64];
  for (int i = 0; i < mr; ++i)
    rowp[i] = row0 + i < Kg ? w + (g * Kg + row0 + i) * KK + pc : nullptr;
  transpose(rowp, mr, kc, dst);
}

// Every group's forward weights (Kg x Cg*R*S, row-major) as panels of `width` rows for the
// reduction slices of slice_kc(Cg*R*S, kc_max): group g at g * round_up(Kg, width) * Cg*R*S,
// each in pack_a_rowmajor_all's layout. With a micro-kernel's (mr, kc) that is what gemm_driver
// and the batched GEMM read; with (nr, kc), the pixel-rows GEMM's B panels of W^T.
template <typename T>
void pack_weight_panels_all(const T* w, const ConvParams& p, int width, int64_t kc_max, T* dst) {
  const int64_t Kg = p.Kg(), KK = p.patch();
  for (int64_t g = 0; g < p.groups; ++g)
    pack_a_rowmajor_all(w + g * Kg * KK, KK, Kg, KK, width, kc_max, dst + g * round_up(Kg, width) * KK);
}

// Input gradient (stride 1): the weights of the adjoint convolution, flipped in space and
// transposed in channels, wt[g*Cg + c][k][r][s] = w[g*Kg + k][c][R-1-r][S-1-s]; rows are input
// channels c, the reduction runs over (k, r, s). wt is never built: for one k, the MR x R*S
// block a panel needs is contiguous in w.
//   dst[t*MR + i] = wt[g*Cg + row0 + i][pc + t]
template <typename T>
void pack_flipped_weight_panel(const T* w, const ConvParams& p, int mr, int64_t g, int64_t row0, int64_t pc,
                               int64_t kc, T* dst) {
  const int64_t Kg = p.Kg(), Cg = p.Cg(), RS = p.R * p.S;
  const int64_t rows = std::min<int64_t>(mr, Cg - row0);
  int64_t k = pc / RS, rs = pc % RS;
  for (int64_t t = 0; t < kc; ++t) {  // t = kk - pc, kk = k*RS + rs
    const T* src = w + ((g * Kg + k) * Cg + row0) * RS + (RS - 1 - rs);
    T* d = dst + t * mr;
    int64_t i = 0;
    for (; i < rows; ++i) d[i] = src[i * RS];
    for (; i < mr; ++i) d[i] = T(0);
    if (++rs == RS) { rs = 0; ++k; }
  }
}

}  // namespace fastconv
