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
#if defined(FASTCONV_X86) && defined(__GNUC__)
#include <immintrin.h>
#endif

#include "augment/augment.h"
#include "augment/pixels.h"
#include "common/isa_target.h"
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

// uint8 in 16-bit fixed point (r <= kMaxFixedRadius). Values are held as v << 8 (Q8, at most
// 65280); a tap multiplies by a weight in Q16 (centre) or Q17 (the folded pairs, whose weight
// is < 1/2) and keeps the high 16 bits (mulhi), so every product and every partial sum is a
// Q8 value below 2^16. The folded pairs are averaged with rounding up ((a + b + 1) >> 1) first.
// Errors: < 1/256 grey level per tap from the truncations and weight quantisation, so the
// result is within a fraction of a level of the float blur. Both passes vectorise (16 lanes
// per 256-bit vector).
constexpr int64_t kMaxFixedRadius = 64;

// o[x] = min(a[x] >> 8, 255).
FASTCONV_AUG_INLINE void u16_to_u8(const uint16_t* a, uint8_t* o, int64_t n) {
  for (int64_t x = 0; x < n; ++x) {
    const uint16_t v = static_cast<uint16_t>(a[x] >> 8);
    o[x] = static_cast<uint8_t>(v > 255 ? 255 : v);
  }
}

struct FixedKernel {
  uint16_t centre;               // Q16, capped at 65535
  std::vector<uint16_t> pair;    // pair[q - 1] for q = 1..r, Q17
};
FixedKernel fixed_kernel(const std::vector<float>& k) {
  const int64_t r = static_cast<int64_t>(k.size() / 2);
  FixedKernel f;
  f.centre = static_cast<uint16_t>(std::min(65535.0, std::nearbyint(double(k[r]) * 65536.0)));
  f.pair.resize(r);
  for (int64_t q = 1; q <= r; ++q)
    f.pair[q - 1] = static_cast<uint16_t>(std::min(65535.0, std::nearbyint(double(k[r + q]) * 131072.0)));
  return f;
}

FASTCONV_AUG_INLINE uint16_t mulhi16(uint16_t a, uint16_t w) {
  return static_cast<uint16_t>((static_cast<uint32_t>(a) * w) >> 16);
}
FASTCONV_AUG_INLINE uint16_t avg_up16(uint16_t a, uint16_t b) {
  return static_cast<uint16_t>((static_cast<uint32_t>(a) + b + 1) >> 1);
}

// out[x] = bias + mulhi(c[x], wc) + sum_q mulhi(avg_up(lo[q][x], hi[q][x]), wp[q]), q < r: the
// whole kernel per block of x in registers. pmulhuw / pavgw compute exactly mulhi16 / avg_up16,
// so the SIMD versions and the scalar tail agree bit for bit (results do not depend on the CPU).
FASTCONV_AUG_INLINE void taps_scalar(uint16_t* out, const uint16_t* c, const uint16_t* const* lo,
                                     const uint16_t* const* hi, uint16_t wc, const uint16_t* wp, int64_t r,
                                     uint16_t bias, int64_t x0, int64_t n) {
  for (int64_t x = x0; x < n; ++x) {
    uint16_t a = static_cast<uint16_t>(bias + mulhi16(c[x], wc));
    for (int64_t q = 0; q < r; ++q) a = static_cast<uint16_t>(a + mulhi16(avg_up16(lo[q][x], hi[q][x]), wp[q]));
    out[x] = a;
  }
}
#if defined(FASTCONV_X86) && defined(__GNUC__)
#define FASTCONV_TAPS_SIMD(NAME, TARGET, VEC, LANES, LOAD, STORE, SET1, ADD, MULHI, AVG)                         \
  TARGET FASTCONV_AUG_INLINE void NAME(uint16_t* out, const uint16_t* c, const uint16_t* const* lo,        \
                                            const uint16_t* const* hi, uint16_t wc, const uint16_t* wp,         \
                                            int64_t r, uint16_t bias, int64_t n) {                              \
    const VEC vb = SET1(static_cast<short>(bias)), vc = SET1(static_cast<short>(wc));                           \
    int64_t x = 0;                                                                                              \
    for (; x + LANES <= n; x += LANES) {                                                                        \
      VEC a = ADD(vb, MULHI(LOAD(reinterpret_cast<const VEC*>(c + x)), vc));                                    \
      for (int64_t q = 0; q < r; ++q) {                                                                         \
        const VEC m = AVG(LOAD(reinterpret_cast<const VEC*>(lo[q] + x)), LOAD(reinterpret_cast<const VEC*>(hi[q] + x))); \
        a = ADD(a, MULHI(m, SET1(static_cast<short>(wp[q]))));                                                  \
      }                                                                                                         \
      STORE(reinterpret_cast<VEC*>(out + x), a);                                                                \
    }                                                                                                           \
    taps_scalar(out, c, lo, hi, wc, wp, r, bias, x, n);                                                         \
  }
// x86-64's baseline has SSE2, so the scalar-ISA variant uses it too.
FASTCONV_TAPS_SIMD(taps_sse2, FASTCONV_TARGET(scalar), __m128i, 8, _mm_loadu_si128, _mm_storeu_si128, _mm_set1_epi16, _mm_add_epi16,
                   _mm_mulhi_epu16, _mm_avg_epu16)
FASTCONV_TAPS_SIMD(taps_avx2, FASTCONV_TARGET(avx2), __m256i, 16, _mm256_loadu_si256, _mm256_storeu_si256, _mm256_set1_epi16,
                   _mm256_add_epi16, _mm256_mulhi_epu16, _mm256_avg_epu16)
FASTCONV_TAPS_SIMD(taps_avx512, FASTCONV_TARGET(avx512), __m512i, 32, _mm512_loadu_si512, _mm512_storeu_si512,
                   _mm512_set1_epi16, _mm512_add_epi16, _mm512_mulhi_epu16, _mm512_avg_epu16)
#undef FASTCONV_TAPS_SIMD
#define taps_scalar_isa taps_sse2
#else
FASTCONV_AUG_INLINE void taps_scalar_isa(uint16_t* out, const uint16_t* c, const uint16_t* const* lo,
                                         const uint16_t* const* hi, uint16_t wc, const uint16_t* wp, int64_t r,
                                         uint16_t bias, int64_t n) {
  taps_scalar(out, c, lo, hi, wc, wp, r, bias, 0, n);
}
#endif

template <typename Taps>
FASTCONV_AUG_INLINE void blur_plane_u8_fixed(Taps taps, const uint8_t* in, uint8_t* out, int64_t H, int64_t W, int64_t P, uint16_t wc,
                         const uint16_t* wp, int64_t r, int bd, uint16_t* padded, uint16_t* tmp, uint16_t* acc,
                         const uint16_t* zeros, const uint16_t** rows) {
  const int64_t L = W * P;
  std::vector<const uint16_t*> lo(r), hi(r);
  for (int64_t y = 0; y < H; ++y) {
    const uint8_t* row = in + y * L;
    uint16_t* pc = padded + r * P;
    for (int64_t x = 0; x < L; ++x) pc[x] = static_cast<uint16_t>(row[x] << 8);
    for (int64_t i = -r; i < W + r; i = i == -1 ? W : i + 1) {  // the border columns only
      const int64_t j = border_index(i, W, bd);
      for (int64_t c = 0; c < P; ++c)
        padded[(i + r) * P + c] = j < 0 ? 0 : static_cast<uint16_t>(row[j * P + c] << 8);
    }
    for (int64_t q = 1; q <= r; ++q) { lo[q - 1] = pc - q * P; hi[q - 1] = pc + q * P; }
    taps(tmp + y * L, pc, lo.data(), hi.data(), wc, wp, r, 0, L);
  }
  for (int64_t y = 0; y < H; ++y) {
    for (int64_t q = -r; q <= r; ++q) {
      const int64_t j = border_index(y + q, H, bd);
      rows[q + r] = j < 0 ? zeros : tmp + j * L;
    }
    for (int64_t q = 1; q <= r; ++q) { lo[q - 1] = rows[r - q]; hi[q - 1] = rows[r + q]; }
    taps(acc, rows[r], lo.data(), hi.data(), wc, wp, r, 128, L);  // + 128: rounding to the nearest level
    u16_to_u8(acc, out + y * L, L);
  }
}

// The per-ISA kernels of one blur call (chosen by use_isa()): the float plane pass, and for uint8
// the fixed-point plane pass (r <= kMaxFixedRadius) with the float one for wider kernels.
#define FASTCONV_FIXED_ARGS const uint8_t *in, uint8_t *out, int64_t H, int64_t W, int64_t P, uint16_t wc, \
    const uint16_t *wp, int64_t r, int bd, uint16_t *padded, uint16_t *tmp, uint16_t *acc, const uint16_t *zeros, \
    const uint16_t **rows
#define FASTCONV_FIXED_PASS in, out, H, W, P, wc, wp, r, bd, padded, tmp, acc, zeros, rows
struct BlurKernelsF32 {
  void (*plane)(const float* in, float* out, FASTCONV_BLUR_ARGS);
};
struct BlurKernelsU8 {
  void (*plane)(const uint8_t* in, uint8_t* out, FASTCONV_BLUR_ARGS);
  void (*fixed)(FASTCONV_FIXED_ARGS);
};
#define FASTCONV_BLUR_KERNELS(ISA)                                                                              \
  FASTCONV_TARGET(ISA) void plane_f32__##ISA(const float* in, float* out, FASTCONV_BLUR_ARGS) {                 \
    blur_plane<float>(in, out, FASTCONV_BLUR_PASS);                                                            \
  }                                                                                                            \
  FASTCONV_TARGET(ISA) void plane_u8__##ISA(const uint8_t* in, uint8_t* out, FASTCONV_BLUR_ARGS) {              \
    blur_plane<uint8_t>(in, out, FASTCONV_BLUR_PASS);                                                          \
  }                                                                                                            \
  FASTCONV_TARGET(ISA) void fixed_u8__##ISA(FASTCONV_FIXED_ARGS) {                                              \
    blur_plane_u8_fixed(taps_##ISA##_isa, FASTCONV_FIXED_PASS);                                                \
  }                                                                                                            \
  const BlurKernelsF32 blur_f32__##ISA = {&plane_f32__##ISA};                                                  \
  const BlurKernelsU8 blur_u8__##ISA = {&plane_u8__##ISA, &fixed_u8__##ISA};
#define taps_avx2_isa taps_avx2
#define taps_avx512_isa taps_avx512
FASTCONV_FOR_EACH_ISA(FASTCONV_BLUR_KERNELS)
#undef taps_avx2_isa
#undef taps_avx512_isa
#undef taps_scalar_isa
#undef FASTCONV_BLUR_KERNELS
#undef FASTCONV_FIXED_PASS
#undef FASTCONV_FIXED_ARGS
const KernelTable<BlurKernelsF32> kBlurF32("gaussian_blur", "float32", FASTCONV_ISA_VARIANTS(blur_f32, "gaussian_blur_f32"));
const KernelTable<BlurKernelsU8> kBlurU8("gaussian_blur", "uint8", FASTCONV_ISA_VARIANTS(blur_u8, "gaussian_blur_u8"));
const KernelTable<BlurKernelsF32>& blur_kernels(const float*) { return kBlurF32; }
const KernelTable<BlurKernelsU8>& blur_kernels(const uint8_t*) { return kBlurU8; }

bool blur_fixed(const BlurKernelsF32&, const float*, float*, int64_t, int64_t, int64_t, const std::vector<float>&,
                int64_t, int) {
  return false;
}
bool blur_fixed(const BlurKernelsU8& kernels, const uint8_t* in, uint8_t* out, int64_t H, int64_t W, int64_t P, const std::vector<float>& k,
                int64_t r, int bd) {
  if (r > kMaxFixedRadius) return false;
  const FixedKernel f = fixed_kernel(k);
  const int64_t L = W * P;
  std::vector<uint16_t> padded((W + 2 * r) * P), tmp(H * L), acc(L), zeros(L, 0);
  std::vector<const uint16_t*> rows(2 * r + 1);
  kernels.fixed(in, out, H, W, P, f.centre, f.pair.data(), r, bd, padded.data(), tmp.data(), acc.data(),
                      zeros.data(), rows.data());
  return true;
}

}  // namespace

template <typename T>
void gaussian_blur(const T* src, T* dst, Image im, const double* sigma, double truncate, Border border) {
  const int64_t H = im.H, W = im.W, P = im.channels_last ? im.C : 1;
  const int64_t L = W * P;  // elements per row
  const int64_t planes = im.channels_last ? im.N : im.N * im.C;
  const int bd = static_cast<int>(border);
  const auto& kernels = blur_kernels(src).active();
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
    if (blur_fixed(kernels, in, out, H, W, P, k, r, bd)) return;
    std::vector<float> padded((W + 2 * r) * P), tmp(H * L), acc(L), zeros(L, 0.f);
    std::vector<const float*> rows(2 * r + 1);
    kernels.plane(in, out, H, W, P, k.data(), r, bd, padded.data(), tmp.data(), acc.data(), zeros.data(),
                   rows.data());
  });
}

template void gaussian_blur<float>(const float*, float*, Image, const double*, double, Border);
template void gaussian_blur<uint8_t>(const uint8_t*, uint8_t*, Image, const double*, double, Border);

}  // namespace augment
}  // namespace fastconv
