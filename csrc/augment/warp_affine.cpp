// Affine warp (bilinear / nearest, three border modes) and exact flips on NCHW batches.
//
// Work is split into (image, block of output rows) tasks. For each output row the source
// taps (offsets into one channel plane) and their weights are computed once and reused for
// all C channels, so the per-channel loop is a plain gather + multiply-add. Taps that fall
// outside the image are either remapped (reflect / replicate) or given weight 0 with the
// missing weight applied to the fill value (constant), which keeps one loop for every mode.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include "augment/augment.h"
#include "common/parallel.h"

namespace fastconv {
namespace augment {
namespace {

// Maps any integer index into [0, n) for the border mode; returns -1 for constant borders.
inline int64_t border_index(int64_t i, int64_t n, Border border) {
  if (i >= 0 && i < n) return i;
  switch (border) {
    case Border::constant: return -1;
    case Border::replicate: return i < 0 ? 0 : n - 1;
    case Border::reflect: {
      if (n == 1) return 0;
      const int64_t period = 2 * (n - 1);
      int64_t m = (i < 0 ? -i : i) % period;  // reflection is symmetric about 0
      return m < n ? m : period - m;
    }
  }
  return -1;
}

constexpr int64_t kRowsPerTask = 8;

// Per-row tap table: 4 offsets and 4 weights per output pixel, plus the fill weight.
struct RowTaps {
  std::vector<int32_t> o[4];
  std::vector<float> w[4];
  std::vector<float> wfill;
  explicit RowTaps(int64_t n) : wfill(n) {
    for (int k = 0; k < 4; ++k) { o[k].resize(n); w[k].resize(n); }
  }
};

void row_taps(RowTaps& t, int64_t y, int64_t OW, int64_t H, int64_t W, const double* m,
              Interp interp, Border border) {
  const double bx = m[1] * y + m[2], by = m[4] * y + m[5];
  for (int64_t x = 0; x < OW; ++x) {
    const double sx = m[0] * x + bx, sy = m[3] * x + by;
    if (interp == Interp::nearest) {
      // Round half up (floor(s + 0.5)), the convention of cv2 and torch 'nearest'.
      const int64_t ix = border_index(static_cast<int64_t>(std::floor(sx + 0.5)), W, border);
      const int64_t iy = border_index(static_cast<int64_t>(std::floor(sy + 0.5)), H, border);
      const bool ok = ix >= 0 && iy >= 0;
      t.o[0][x] = ok ? static_cast<int32_t>(iy * W + ix) : 0;
      t.w[0][x] = ok ? 1.f : 0.f;
      for (int k = 1; k < 4; ++k) { t.o[k][x] = 0; t.w[k][x] = 0.f; }
      t.wfill[x] = ok ? 0.f : 1.f;
      continue;
    }
    const double fx0 = std::floor(sx), fy0 = std::floor(sy);
    const float fx = static_cast<float>(sx - fx0), fy = static_cast<float>(sy - fy0);
    const int64_t x0 = static_cast<int64_t>(fx0), y0 = static_cast<int64_t>(fy0);
    const int64_t xs[2] = {border_index(x0, W, border), border_index(x0 + 1, W, border)};
    const int64_t ys[2] = {border_index(y0, H, border), border_index(y0 + 1, H, border)};
    const float wx[2] = {1.f - fx, fx}, wy[2] = {1.f - fy, fy};
    float missing = 0.f;
    for (int k = 0; k < 4; ++k) {
      const int64_t ix = xs[k & 1], iy = ys[k >> 1];
      const float w = wx[k & 1] * wy[k >> 1];
      const bool ok = ix >= 0 && iy >= 0;
      t.o[k][x] = ok ? static_cast<int32_t>(iy * W + ix) : 0;
      t.w[k][x] = ok ? w : 0.f;
      missing += ok ? 0.f : w;
    }
    t.wfill[x] = missing;
  }
}

template <typename T>
void warp_row(const T* plane, T* out, const RowTaps& t, int64_t OW, Interp interp, float fill) {
  const int32_t *o0 = t.o[0].data(), *o1 = t.o[1].data(), *o2 = t.o[2].data(), *o3 = t.o[3].data();
  const float *w0 = t.w[0].data(), *w1 = t.w[1].data(), *w2 = t.w[2].data(), *w3 = t.w[3].data();
  const float* wf = t.wfill.data();
  if (interp == Interp::nearest) {
    for (int64_t x = 0; x < OW; ++x)
      out[x] = static_cast<T>(w0[x] * plane[o0[x]] + wf[x] * fill);
    return;
  }
  for (int64_t x = 0; x < OW; ++x)
    out[x] = static_cast<T>(w0[x] * plane[o0[x]] + w1[x] * plane[o1[x]] + w2[x] * plane[o2[x]] +
                            w3[x] * plane[o3[x]] + wf[x] * fill);
}

}  // namespace

template <typename T>
void warp_affine(const T* src, T* dst, Batch b, int64_t OH, int64_t OW, const double* inv,
                 Interp interp, Border border, float fill) {
  const int64_t blocks = (OH + kRowsPerTask - 1) / kRowsPerTask;
  parallel_for(b.N * blocks, [&](int64_t task) {
    const int64_t n = task / blocks, y_begin = (task % blocks) * kRowsPerTask;
    const int64_t y_end = std::min(OH, y_begin + kRowsPerTask);
    const double* m = inv + 6 * n;
    RowTaps taps(OW);
    for (int64_t y = y_begin; y < y_end; ++y) {
      row_taps(taps, y, OW, b.H, b.W, m, interp, border);
      for (int64_t c = 0; c < b.C; ++c) {
        const T* plane = src + (n * b.C + c) * b.H * b.W;
        T* out = dst + ((n * b.C + c) * OH + y) * OW;
        warp_row(plane, out, taps, OW, interp, fill);
      }
    }
  });
}

template <typename T>
void flip(const T* src, T* dst, Batch b, const uint8_t* hflip, const uint8_t* vflip) {
  // One task per (image, channel) plane; a row is reversed or copied whole.
  parallel_for(b.N * b.C, [&](int64_t nc) {
    const int64_t n = nc / b.C;
    const T* in = src + nc * b.H * b.W;
    T* out = dst + nc * b.H * b.W;
    for (int64_t y = 0; y < b.H; ++y) {
      const T* row = in + (vflip[n] ? b.H - 1 - y : y) * b.W;
      T* o = out + y * b.W;
      if (hflip[n]) {
        for (int64_t x = 0; x < b.W; ++x) o[x] = row[b.W - 1 - x];
      } else {
        std::memcpy(o, row, sizeof(T) * b.W);
      }
    }
  });
}

template void warp_affine<float>(const float*, float*, Batch, int64_t, int64_t, const double*, Interp, Border, float);
template void warp_affine<double>(const double*, double*, Batch, int64_t, int64_t, const double*, Interp, Border, float);
template void flip<float>(const float*, float*, Batch, const uint8_t*, const uint8_t*);
template void flip<double>(const double*, double*, Batch, const uint8_t*, const uint8_t*);

}  // namespace augment
}  // namespace fastconv
