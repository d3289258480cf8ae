// Separable Gaussian blur with a per-sample sigma, NCHW or NHWC. A task is one plane of H rows
// of W pixels with P interleaved values (NCHW: one channel, P = 1; NHWC: one image, P = C):
// a horizontal pass over a border-padded copy of each row into a float scratch plane, then
// a vertical pass that accumulates whole rows. Both inner loops run over contiguous memory
// and vectorise; the symmetric kernel is folded so each pair of taps costs one multiply.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include "augment/augment.h"
#include "augment/pixels.h"
#include "common/parallel.h"

namespace fastconv {
namespace augment {
namespace {

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

// One plane: H rows of L = W * P elements (P interleaved values per pixel).
template <typename T>
FASTCONV_AUG_INLINE void blur_plane(const T* in, T* out, int64_t H, int64_t W, int64_t P, const float* k, int64_t r,
                                    int bd, float* padded, float* tmp, float* acc, const float* zeros,
                                    const float** rows) {
  const int64_t L = W * P;
  for (int64_t y = 0; y < H; ++y) {
    const T* row = in + y * L;
    for (int64_t i = -r; i < W + r; ++i) {
      const int64_t j = border_index(i, W, bd);
      for (int64_t c = 0; c < P; ++c)
        padded[(i + r) * P + c] = j < 0 ? 0.f : static_cast<float>(row[j * P + c]);
    }
    float* t = tmp + y * L;
    const float* centre = padded + r * P;
    const float k0 = k[r];
    for (int64_t x = 0; x < L; ++x) t[x] = k0 * centre[x];
    for (int64_t q = 1; q <= r; ++q) {
      const float w = k[r + q];
      const float *a = centre - q * P, *b = centre + q * P;
      for (int64_t x = 0; x < L; ++x) t[x] += w * (a[x] + b[x]);
    }
  }
  // Vertical pass: out row y = sum_q k[q] * tmp row (y + q - r), rows remapped at the border.
  // (In place is safe: every input row was read into tmp above.)
  for (int64_t y = 0; y < H; ++y) {
    for (int64_t q = -r; q <= r; ++q) {
      const int64_t j = border_index(y + q, H, bd);
      rows[q + r] = j < 0 ? zeros : tmp + j * L;
    }
    const float* c0 = rows[r];
    const float k0 = k[r];
    for (int64_t x = 0; x < L; ++x) acc[x] = k0 * c0[x];
    for (int64_t q = 1; q <= r; ++q) {
      const float w = k[r + q];
      const float *u = rows[r - q], *d = rows[r + q];
      for (int64_t x = 0; x < L; ++x) acc[x] += w * (u[x] + d[x]);
    }
    T* o = out + y * L;
    for (int64_t x = 0; x < L; ++x) o[x] = store<T>(acc[x]);
  }
}

#define FASTCONV_BLUR_ARGS int64_t H, int64_t W, int64_t P, const float* k, int64_t r, int bd, float* padded, \
    float* tmp, float* acc, const float* zeros, const float** rows
#define FASTCONV_BLUR_PASS H, W, P, k, r, bd, padded, tmp, acc, zeros, rows
FASTCONV_AUG_CLONES void blur_plane_f32(const float* in, float* out, FASTCONV_BLUR_ARGS) {
  blur_plane<float>(in, out, FASTCONV_BLUR_PASS);
}
FASTCONV_AUG_CLONES void blur_plane_u8(const uint8_t* in, uint8_t* out, FASTCONV_BLUR_ARGS) {
  blur_plane<uint8_t>(in, out, FASTCONV_BLUR_PASS);
}
inline void blur_plane_any(const float* in, float* out, FASTCONV_BLUR_ARGS) { blur_plane_f32(in, out, FASTCONV_BLUR_PASS); }
inline void blur_plane_any(const uint8_t* in, uint8_t* out, FASTCONV_BLUR_ARGS) { blur_plane_u8(in, out, FASTCONV_BLUR_PASS); }

}  // namespace

template <typename T>
void gaussian_blur(const T* src, T* dst, Image im, const double* sigma, double truncate, Border border) {
  const int64_t H = im.H, W = im.W, P = im.channels_last ? im.C : 1;
  const int64_t L = W * P;  // elements per row
  const int64_t planes = im.channels_last ? im.N : im.N * im.C;
  const int bd = static_cast<int>(border);
  parallel_for(planes, [&](int64_t pi) {
    const int64_t n = im.channels_last ? pi : pi / im.C;
    const T* in = src + pi * H * L;
    T* out = dst + pi * H * L;
    if (!(sigma[n] > 0)) {
      if (out != in) std::memcpy(out, in, sizeof(T) * H * L);
      return;
    }
    const std::vector<float> k = gaussian_kernel(sigma[n], truncate);
    const int64_t r = static_cast<int64_t>(k.size() / 2);
    std::vector<float> padded((W + 2 * r) * P), tmp(H * L), acc(L), zeros(L, 0.f);
    std::vector<const float*> rows(2 * r + 1);
    blur_plane_any(in, out, H, W, P, k.data(), r, bd, padded.data(), tmp.data(), acc.data(), zeros.data(),
                   rows.data());
  });
}

template void gaussian_blur<float>(const float*, float*, Image, const double*, double, Border);
template void gaussian_blur<uint8_t>(const uint8_t*, uint8_t*, Image, const double*, double, Border);

}  // namespace augment
}  // namespace fastconv
