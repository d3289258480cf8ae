// The zero-padded input both stride-1 paths read instead of bounds-checking every tap:
// the shifted-row path (direct_shifted.cpp) reads it in place, the batched path
// (direct_batched.cpp) gathers its im2col panels from it.
#pragma once
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#include "common/params.h"
#include "common/parallel.h"
#include "common/workspace.h"

namespace fastconv {

// Zero-padded copy of the whole input batch, (N*C) planes of Hp x Wp, followed by `slack`
// zeros so that a rounded-up last tile of the last plane reads nothing out of bounds.
template <typename T>
AlignedBuffer<T> padded_input(const T* x, const ConvParams& p, int64_t slack) {
  const int64_t Hp = p.H + 2 * p.pad_h, Wp = p.W + 2 * p.pad_w, HpWp = Hp * Wp;
  AlignedBuffer<T> xpad(p.N * p.C * HpWp + slack);
  std::fill(xpad.data() + p.N * p.C * HpWp, xpad.data() + p.N * p.C * HpWp + slack, T(0));
  parallel_for(p.N * p.C, [&](int64_t plane) {
    T* dst = xpad.data() + plane * HpWp;
    const T* src = x + plane * p.H * p.W;
    std::fill(dst, dst + p.pad_h * Wp, T(0));
    for (int64_t h = 0; h < p.H; ++h) {
      T* row = dst + (p.pad_h + h) * Wp;
      std::fill(row, row + p.pad_w, T(0));
      std::memcpy(row + p.pad_w, src + h * p.W, p.W * sizeof(T));
      std::fill(row + p.pad_w + p.W, row + Wp, T(0));
    }
    std::fill(dst + (p.pad_h + p.H) * Wp, dst + HpWp, T(0));
  });
  return xpad;
}

// Offset of tap (c, r, s) (im2col row c*R*S + r*S + s) from the top-left corner of an output
// pixel's window, in the padded planes of one group of one image.
inline std::vector<int64_t> tap_offsets(const ConvParams& p) {
  const int64_t Wp = p.W + 2 * p.pad_w, HpWp = (p.H + 2 * p.pad_h) * Wp, RS = p.R * p.S;
  std::vector<int64_t> offsets(p.patch());
  for (int64_t kk = 0; kk < p.patch(); ++kk) {
    const int64_t c = kk / RS, r = (kk / p.S) % p.R, s = kk % p.S;
    offsets[kk] = c * HpWp + r * p.dil_h * Wp + s * p.dil_w;
  }
  return offsets;
}

}  // namespace fastconv
