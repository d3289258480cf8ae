// One row of the (virtual) im2col matrix of a single input channel plane: the values the
// kernel tap (kh, kw) sees at output pixels [p0, p0+count). Padding reads as zero.
// dst[i * dst_stride] receives pixel p0+i. Nothing is ever read outside the plane.
#pragma once
#include <algorithm>
#include <cstdint>
#include <cstring>

#include "common/params.h"

namespace fastconv {

template <typename T>
inline void im2col_row(const T* plane, const ConvParams& p, int64_t kh, int64_t kw, int64_t p0,
                       int64_t count, T* dst, int64_t dst_stride) {
  int64_t oh = p0 / p.OW, ow = p0 % p.OW;
  int64_t i = 0;
  while (i < count) {
    const int64_t seg = std::min<int64_t>(count - i, p.OW - ow);
    const int64_t ih = oh * p.stride_h - p.pad_h + kh * p.dil_h;
    T* d = dst + i * dst_stride;
    if (ih < 0 || ih >= p.H) {
      for (int64_t t = 0; t < seg; ++t) d[t * dst_stride] = T(0);
    } else {
      const T* row = plane + ih * p.W;
      const int64_t sw = p.stride_w;
      const int64_t iw0 = ow * sw - p.pad_w + kw * p.dil_w;
      // valid t: 0 <= iw0 + t*sw < W
      int64_t lo = iw0 >= 0 ? 0 : (-iw0 + sw - 1) / sw;
      int64_t hi = iw0 >= p.W ? 0 : (p.W - iw0 + sw - 1) / sw;
      lo = std::min(lo, seg);
      hi = std::max(lo, std::min(hi, seg));
      for (int64_t t = 0; t < lo; ++t) d[t * dst_stride] = T(0);
      if (dst_stride == 1 && sw == 1) {
        std::memcpy(d + lo, row + iw0 + lo, (hi - lo) * sizeof(T));
      } else {
        for (int64_t t = lo; t < hi; ++t) d[t * dst_stride] = row[iw0 + t * sw];
      }
      for (int64_t t = hi; t < seg; ++t) d[t * dst_stride] = T(0);
    }
    i += seg;
    ++oh;
    ow = 0;
  }
}

// The adjoint of im2col_row: scatter-adds src[i * src_stride] back into the plane.
template <typename T>
inline void col2im_row_add(T* plane, const ConvParams& p, int64_t kh, int64_t kw, int64_t p0,
                           int64_t count, const T* src, int64_t src_stride) {
  int64_t oh = p0 / p.OW, ow = p0 % p.OW;
  int64_t i = 0;
  while (i < count) {
    const int64_t seg = std::min<int64_t>(count - i, p.OW - ow);
    const int64_t ih = oh * p.stride_h - p.pad_h + kh * p.dil_h;
    if (ih >= 0 && ih < p.H) {
      T* row = plane + ih * p.W;
      const T* s = src + i * src_stride;
      const int64_t sw = p.stride_w;
      const int64_t iw0 = ow * sw - p.pad_w + kw * p.dil_w;
      int64_t lo = iw0 >= 0 ? 0 : (-iw0 + sw - 1) / sw;
      int64_t hi = iw0 >= p.W ? 0 : (p.W - iw0 + sw - 1) / sw;
      lo = std::min(lo, seg);
      hi = std::max(lo, std::min(hi, seg));
      for (int64_t t = lo; t < hi; ++t) row[iw0 + t * sw] += s[t * src_stride];
    }
    i += seg;
    ++oh;
    ow = 0;
  }
}

}  // namespace fastconv
