// The kernel of the adjoint of a stride-1 convolution: flipped in space, transposed in channels,
//   wt[g*Cg + c][k][r][s] = w[g*Kg + k][c][R-1-r][S-1-s]
// (the input gradient of a stride-1 conv is a stride-1 conv of grad_output with wt).
#pragma once
#include <cstdint>
#include <vector>

#include "common/params.h"
#include "common/parallel.h"

namespace fastconv {

template <typename T>
std::vector<T> flipped_transposed_kernel(const T* w, const ConvParams& p) {
  const int64_t Kg = p.Kg(), Cg = p.Cg(), RS = p.R * p.S;
  std::vector<T> wt(p.K * Cg * RS);
  // One (g, c) per item: writes wt contiguously and reads R*S-value runs of w (writing in w's
  // order instead scatters every store across pages).
  parallel_for(p.groups * Cg, [&](int64_t gc) {
    const int64_t g = gc / Cg, c = gc % Cg;
    T* dst = wt.data() + gc * Kg * RS;
    for (int64_t k = 0; k < Kg; ++k) {
      const T* src = w + ((g * Kg + k) * Cg + c) * RS;
      for (int64_t rs = 0; rs < RS; ++rs) dst[k * RS + rs] = src[RS - 1 - rs];
    }
  });
  return wt;
}

}  // namespace fastconv
