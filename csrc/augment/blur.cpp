// Separable Gaussian blur with a per-sample sigma. One task per (image, channel) plane:
// a horizontal pass over a border-padded copy of each row into a float scratch plane, then a
// vertical pass that accumulates whole rows (both inner loops run over x and vectorise).
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

inline int64_t border_index(int64_t i, int64_t n, Border border) {
  if (i >= 0 && i < n) return i;
  if (border == Border::constant) return -1;
  if (border == Border::replicate) return i < 0 ? 0 : n - 1;
  if (n == 1) return 0;
  const int64_t period = 2 * (n - 1);
  const int64_t m = (i < 0 ? -i : i) % period;
  return m < n ? m : period - m;
}

// Normalised 1-D Gaussian of radius int(truncate * sigma + 0.5), as scipy.ndimage.
std::vector<float> gaussian_kernel(double sigma, double truncate) {
  const int64_t r = static_cast<int64_t>(truncate * sigma + 0.5);
  std::vector<double> k(2 * r + 1);
  double sum = 0;
  for (int64_t i = -r; i <= r; ++i) sum += k[i + r] = std::exp(-0.5 * (i * i) / (sigma * sigma));
  std::vector<float> out(k.size());
  for (size_t i = 0; i < k.size(); ++i) out[i] = static_cast<float>(k[i] / sum);
  return out;
}

}  // namespace

template <typename T>
void gaussian_blur(const T* src, T* dst, Batch b, const double* sigma, double truncate, Border border) {
  const int64_t H = b.H, W = b.W;
  parallel_for(b.N * b.C, [&](int64_t nc) {
    const int64_t n = nc / b.C;
    const T* in = src + nc * H * W;
    T* out = dst + nc * H * W;
    if (!(sigma[n] > 0)) {
      std::memcpy(out, in, sizeof(T) * H * W);
      return;
    }
    const std::vector<float> k = gaussian_kernel(sigma[n], truncate);
    const int64_t r = static_cast<int64_t>(k.size() / 2), taps = static_cast<int64_t>(k.size());
    std::vector<float> padded(W + 2 * r), tmp(H * W), acc(W), zeros(W, 0.f);
    // Horizontal pass: padded row -> tmp.
    for (int64_t y = 0; y < H; ++y) {
      const T* row = in + y * W;
      for (int64_t i = -r; i < W + r; ++i) {
        const int64_t j = border_index(i, W, border);
        padded[i + r] = j < 0 ? 0.f : static_cast<float>(row[j]);
      }
      float* t = tmp.data() + y * W;
      for (int64_t x = 0; x < W; ++x) t[x] = 0.f;
      for (int64_t q = 0; q < taps; ++q) {
        const float w = k[q];
        const float* p = padded.data() + q;
        for (int64_t x = 0; x < W; ++x) t[x] += w * p[x];
      }
    }
    // Vertical pass: out row y = sum_q k[q] * tmp row (y + q - r), rows remapped at the border.
    for (int64_t y = 0; y < H; ++y) {
      float* a = acc.data();
      for (int64_t x = 0; x < W; ++x) a[x] = 0.f;
      for (int64_t q = 0; q < taps; ++q) {
        const int64_t j = border_index(y + q - r, H, border);
        const float* p = j < 0 ? zeros.data() : tmp.data() + j * W;
        const float w = k[q];
        for (int64_t x = 0; x < W; ++x) a[x] += w * p[x];
      }
      T* o = out + y * W;
      for (int64_t x = 0; x < W; ++x) o[x] = static_cast<T>(a[x]);
    }
  });
}

template void gaussian_blur<float>(const float*, float*, Batch, const double*, double, Border);
template void gaussian_blur<double>(const double*, double*, Batch, const double*, double, Border);

}  // namespace augment
}  // namespace fastconv
