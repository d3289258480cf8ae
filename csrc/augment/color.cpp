// Colour jitter on NCHW batches: brightness, contrast, saturation and hue fused into one pass
// over the pixels (plus one reduction pass for the contrast mean). Formulas and order follow
// torchvision.transforms.functional (adjust_brightness / _contrast / _saturation / _hue), each
// step clamped to [lo, hi]. The per-pixel loops are branch-free (selects, no switch) so they
// vectorise; HSV conversion follows torchvision's _rgb2hsv / _hsv2rgb.
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

constexpr int64_t kChunk = 4096;  // pixels per task
constexpr float kR = 0.2989f, kG = 0.587f, kB = 0.114f;  // torchvision rgb_to_grayscale

inline float clampf(float v, float lo, float hi) { return std::min(std::max(v, lo), hi); }

// Hue rotation by `shift` (fraction of a turn) of one RGB pixel, in place.
inline void hue_shift(float& r, float& g, float& b, float shift) {
  const float maxc = std::max(r, std::max(g, b)), minc = std::min(r, std::min(g, b));
  const bool eq = maxc == minc;
  const float cr = maxc - minc;
  const float s = cr / (eq ? 1.f : maxc);
  const float div = eq ? 1.f : cr;
  const float rc = (maxc - r) / div, gc = (maxc - g) / div, bc = (maxc - b) / div;
  float h = maxc == r ? bc - gc : (maxc == g ? 2.f + rc - bc : 4.f + gc - rc);
  h = h / 6.f + 1.f + shift;
  h -= std::floor(h);  // wrap into [0, 1)
  const float v = maxc;
  const float h6 = h * 6.f;
  const float fi = std::floor(h6);
  const float f = h6 - fi;
  const int i = static_cast<int>(fi) % 6;
  const float p = clampf(v * (1.f - s), 0.f, 1.f);
  const float q = clampf(v * (1.f - s * f), 0.f, 1.f);
  const float t = clampf(v * (1.f - s * (1.f - f)), 0.f, 1.f);
  // Sector tables of _hsv2rgb written as selects.
  r = i == 0 || i == 5 ? v : (i == 1 ? q : (i == 4 ? t : p));
  g = i == 1 || i == 2 ? v : (i == 0 ? t : (i == 3 ? q : p));
  b = i == 3 || i == 4 ? v : (i == 2 ? t : (i == 5 ? q : p));
}

}  // namespace

template <typename T>
void color_adjust(const T* src, T* dst, Batch b, const float* params, float lo, float hi) {
  const int64_t HW = b.H * b.W, C = b.C;
  const int64_t chunks = (HW + kChunk - 1) / kChunk;
  // Pass 1: per-image mean of the grayscale of the brightness-adjusted image (contrast anchor).
  std::vector<double> mean(b.N, 0.0);
  parallel_for(b.N, [&](int64_t n) {
    const float* p = params + 4 * n;
    if (p[1] == 1.f) return;
    const T* x = src + n * C * HW;
    double total = 0;
    for (int64_t i0 = 0; i0 < HW; i0 += kChunk) {
      const int64_t i1 = std::min(HW, i0 + kChunk);
      float s = 0;
      for (int64_t i = i0; i < i1; ++i) {
        if (C == 3) {
          const float r = clampf(p[0] * x[i], lo, hi), g = clampf(p[0] * x[HW + i], lo, hi),
                      bl = clampf(p[0] * x[2 * HW + i], lo, hi);
          s += kR * r + kG * g + kB * bl;
        } else {
          s += clampf(p[0] * x[i], lo, hi);
        }
      }
      total += s;
    }
    mean[n] = total / HW;
  });
  // Pass 2: the fused per-pixel chain.
  parallel_for(b.N * chunks, [&](int64_t task) {
    const int64_t n = task / chunks, i0 = (task % chunks) * kChunk, i1 = std::min(HW, i0 + kChunk);
    const float* p = params + 4 * n;
    const float bright = p[0], contrast = p[1], sat = p[2], hue = p[3];
    const float m = static_cast<float>(mean[n]);
    const T* x = src + n * C * HW;
    T* y = dst + n * C * HW;
    if (C != 3) {
      for (int64_t c = 0; c < C; ++c)
        for (int64_t i = i0; i < i1; ++i) {
          float v = clampf(bright * x[c * HW + i], lo, hi);
          v = clampf(contrast * v + (1.f - contrast) * m, lo, hi);
          y[c * HW + i] = static_cast<T>(v);
        }
      return;
    }
    const T *xr = x, *xg = x + HW, *xb = x + 2 * HW;
    T *yr = y, *yg = y + HW, *yb = y + 2 * HW;
    const bool do_hue = hue != 0.f;
    for (int64_t i = i0; i < i1; ++i) {
      float r = clampf(bright * xr[i], lo, hi), g = clampf(bright * xg[i], lo, hi),
            bl = clampf(bright * xb[i], lo, hi);
      r = clampf(contrast * r + (1.f - contrast) * m, lo, hi);
      g = clampf(contrast * g + (1.f - contrast) * m, lo, hi);
      bl = clampf(contrast * bl + (1.f - contrast) * m, lo, hi);
      const float gray = kR * r + kG * g + kB * bl;
      r = clampf(sat * r + (1.f - sat) * gray, lo, hi);
      g = clampf(sat * g + (1.f - sat) * gray, lo, hi);
      bl = clampf(sat * bl + (1.f - sat) * gray, lo, hi);
      yr[i] = static_cast<T>(r); yg[i] = static_cast<T>(g); yb[i] = static_cast<T>(bl);
    }
    if (do_hue)
      for (int64_t i = i0; i < i1; ++i) {
        float r = static_cast<float>(yr[i]), g = static_cast<float>(yg[i]), bl = static_cast<float>(yb[i]);
        hue_shift(r, g, bl, hue);
        yr[i] = static_cast<T>(r); yg[i] = static_cast<T>(g); yb[i] = static_cast<T>(bl);
      }
  });
}

template void color_adjust<float>(const float*, float*, Batch, const float*, float, float);
template void color_adjust<double>(const double*, double*, Batch, const float*, float, float);

}  // namespace augment
}  // namespace fastconv
