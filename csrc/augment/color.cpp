// Colour jitter: brightness, contrast, saturation and hue fused into one pass over the pixels
// (plus one reduction pass for the contrast mean), NCHW or NHWC. Formulas and order follow
// torchvision.transforms.functional (adjust_brightness / _contrast / _saturation / _hue), each
// step clamped to [lo, hi]. The per-pixel code is branch-free (selects only, floor without
// libm) so the loops vectorise; HSV conversion follows torchvision's _rgb2hsv / _hsv2rgb.
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <memory>
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

constexpr int64_t kChunk = 4096;  // pixels per task
constexpr float kR = 0.2989f, kG = 0.587f, kB = 0.114f;  // torchvision rgb_to_grayscale

// Hue rotation by `shift` (fraction of a turn) of one RGB pixel, in place. RGB -> HSV follows
// torchvision's _rgb2hsv; HSV -> RGB uses the equivalent closed form
// channel_n = v - v*s*clamp(min(k, 4 - k), 0, 1), k = (n + 6h) mod 6, n = 5, 3, 1 for R, G, B
// (the sector table of _hsv2rgb written with min / max), so the loop is selects and min / max
// only and vectorises.
FASTCONV_AUG_INLINE float hue_channel(float n, float h6, float v, float vs) {
  float k = n + h6;                  // in [1, 11)
  k = k >= 6.f ? k - 6.f : k;        // mod 6 -> [0, 6)
  const float t = std::min(std::max(std::min(k, 4.f - k), 0.f), 1.f);
  return v - vs * t;
}
FASTCONV_AUG_INLINE void hue_shift(float& r, float& g, float& b, float shift) {
  const float maxc = std::max(r, std::max(g, b)), minc = std::min(r, std::min(g, b));
  const bool eq = maxc == minc;
  const float cr = maxc - minc;
  const float s = cr / (eq ? 1.f : maxc);
  const float div = eq ? 1.f : cr;
  const float rc = (maxc - r) / div, gc = (maxc - g) / div, bc = (maxc - b) / div;
  // All candidates computed unconditionally, then selected (lets the loop if-convert).
  const float hr = bc - gc, hg = 2.f + rc - bc, hb = 4.f + gc - rc;
  const float hgb = maxc == g ? hg : hb;
  float h = maxc == r ? hr : hgb;
  h = h * (1.f / 6.f) + 1.f + shift;  // in (0, 2.5)
  h -= static_cast<float>(floor_i32(h));  // wrap into [0, 1)
  const float v = maxc, h6 = h * 6.f, vs = v * s;
  r = hue_channel(5.f, h6, v, vs);
  g = hue_channel(3.f, h6, v, vs);
  b = hue_channel(1.f, h6, v, vs);
}

// RGB pixels i0..i1 of one image; PS = elements between pixels (1 planar, 3 interleaved),
// cs = elements between channels.
template <typename T, int PS>
FASTCONV_AUG_INLINE void color_rgb(const T* x, T* y, int64_t cs, int64_t i0, int64_t i1, const float* p, float m, float lo, float hi) {
  const float bright = p[0], contrast = p[1], sat = p[2], hue = p[3];
  const float cm = (1.f - contrast) * m;
  // Three call-free sweeps over float scratch (each vectorises): b/c/s, hue, store.
  float R[kChunk], G[kChunk], B[kChunk];
  const int64_t n = i1 - i0;
  const T* xs = x + i0 * PS;
  for (int64_t i = 0; i < n; ++i) {
    const int64_t e = i * PS;
    float r = clampf(bright * static_cast<float>(xs[e]), lo, hi);
    float g = clampf(bright * static_cast<float>(xs[e + cs]), lo, hi);
    float b = clampf(bright * static_cast<float>(xs[e + 2 * cs]), lo, hi);
    r = clampf(contrast * r + cm, lo, hi);
    g = clampf(contrast * g + cm, lo, hi);
    b = clampf(contrast * b + cm, lo, hi);
    const float gray = (1.f - sat) * (kR * r + kG * g + kB * b);
    R[i] = clampf(sat * r + gray, lo, hi);
    G[i] = clampf(sat * g + gray, lo, hi);
    B[i] = clampf(sat * b + gray, lo, hi);
  }
  if (hue != 0.f)
    for (int64_t i = 0; i < n; ++i) {
      float r = R[i], g = G[i], b = B[i];
      hue_shift(r, g, b, hue);
      R[i] = r; G[i] = g; B[i] = b;
    }
  T* ys = y + i0 * PS;
  for (int64_t i = 0; i < n; ++i) {
    const int64_t e = i * PS;
    ys[e] = store<T>(R[i]); ys[e + cs] = store<T>(G[i]); ys[e + 2 * cs] = store<T>(B[i]);
  }
}

template <typename T>
FASTCONV_AUG_INLINE void color_rgb_layout(const T* x, T* y, bool interleaved, int64_t cs, int64_t i0, int64_t i1,
                                          const float* p, float m, float lo, float hi) {
  if (interleaved) color_rgb<T, 3>(x, y, cs, i0, i1, p, m, lo, hi);
  else color_rgb<T, 1>(x, y, cs, i0, i1, p, m, lo, hi);
}

// Mean over the image of gray(clamp(b * x)) (C == 3) or of clamp(b * x) (other C). Sixteen
// independent partial sums per block let the reduction vectorise without reassociation flags.
template <typename T>
FASTCONV_AUG_INLINE double gray_mean(const T* x, int64_t HW, int64_t C, int64_t cs, int64_t ps, float b, float lo,
                                     float hi) {
  constexpr int L = 16;
  double total = 0;
  const int64_t nc = C == 3 ? 1 : C;
  for (int64_t c = 0; c < nc; ++c) {
    const T* xc = x + c * cs;
    for (int64_t i0 = 0; i0 < HW; i0 += kChunk) {
      const int64_t i1 = std::min(HW, i0 + kChunk);
      float lanes[L] = {0};
      int64_t i = i0;
      for (; i + L <= i1; i += L)
        for (int l = 0; l < L; ++l) {
          const int64_t e = (i + l) * ps;
          lanes[l] += C == 3 ? kR * clampf(b * static_cast<float>(xc[e]), lo, hi) +
                                   kG * clampf(b * static_cast<float>(xc[e + cs]), lo, hi) +
                                   kB * clampf(b * static_cast<float>(xc[e + 2 * cs]), lo, hi)
                             : clampf(b * static_cast<float>(xc[e]), lo, hi);
        }
      float s = 0;
      for (; i < i1; ++i) {
        const int64_t e = i * ps;
        s += C == 3 ? kR * clampf(b * static_cast<float>(xc[e]), lo, hi) +
                          kG * clampf(b * static_cast<float>(xc[e + cs]), lo, hi) +
                          kB * clampf(b * static_cast<float>(xc[e + 2 * cs]), lo, hi)
                    : clampf(b * static_cast<float>(xc[e]), lo, hi);
      }
      for (int l = 0; l < L; ++l) s += lanes[l];
      total += s;
    }
  }
  return total / static_cast<double>(HW * nc);
}
// uint8: per-channel histograms, then the mean of the formula over the 256 possible values.
// Four (planar) or two (interleaved) tables per channel break the increment dependency chains.
FASTCONV_AUG_INLINE void channel_histograms(const uint8_t* x, int64_t HW, int64_t C, int64_t cs, int64_t ps,
                                            uint32_t (*hist)[256]) {
  if (ps == 3 && cs == 1) {  // NHWC RGB: two pixels per step
    uint32_t h2[3][256] = {{0}};
    int64_t i = 0;
    for (; i + 2 <= HW; i += 2) {
      const uint8_t* p = x + 3 * i;
      ++hist[0][p[0]]; ++hist[1][p[1]]; ++hist[2][p[2]];
      ++h2[0][p[3]]; ++h2[1][p[4]]; ++h2[2][p[5]];
    }
    for (; i < HW; ++i)
      for (int c = 0; c < 3; ++c) ++hist[c][x[3 * i + c]];
    for (int c = 0; c < 3; ++c)
      for (int v = 0; v < 256; ++v) hist[c][v] += h2[c][v];
    return;
  }
  for (int64_t c = 0; c < C; ++c) {
    const uint8_t* xc = x + c * cs;
    uint32_t h[4][256] = {{0}};
    int64_t i = 0;
    for (; i + 4 <= HW; i += 4) {
      ++h[0][xc[i * ps]]; ++h[1][xc[(i + 1) * ps]]; ++h[2][xc[(i + 2) * ps]]; ++h[3][xc[(i + 3) * ps]];
    }
    for (; i < HW; ++i) ++h[0][xc[i * ps]];
    for (int v = 0; v < 256; ++v) hist[c][v] = h[0][v] + h[1][v] + h[2][v] + h[3][v];
  }
}
// Per channel: sum of min(v, T) and count of v > T over HW pixels of P = 3 interleaved
// channels or P = 1 (one plane). The pixels are walked as a flat run of blocks of 192 bytes
// (a multiple of 3 and of a 64-byte vector) into 192 uint16 lanes, lane j holding channel
// j % P; a lane gains at most 255 per block, so lanes are flushed every 256 blocks. The inner
// loop vectorises (whole vectors: 48-byte blocks were ~10% slower).
FASTCONV_AUG_INLINE void clamped_sums(const uint8_t* x, int64_t HW, int P, uint8_t T, uint64_t* sum, uint64_t* cnt) {
  constexpr int L = 192;
  const int64_t n = HW * P, blocks = n / L;
  for (int64_t b0 = 0; b0 < blocks; b0 += 256) {
    const int64_t b1 = std::min(blocks, b0 + 256);
    uint16_t s[L] = {0}, k[L] = {0};
    for (int64_t b = b0; b < b1; ++b) {
      const uint8_t* p = x + L * b;
      for (int j = 0; j < L; ++j) {
        const uint8_t v = p[j];
        s[j] = static_cast<uint16_t>(s[j] + std::min(v, T));
        k[j] = static_cast<uint16_t>(k[j] + static_cast<uint16_t>(v > T));
      }
    }
    for (int j = 0; j < L; ++j) { sum[j % P] += s[j]; cnt[j % P] += k[j]; }
  }
  for (int64_t e = blocks * L; e < n; ++e) {
    const uint8_t v = x[e];
    sum[e % P] += v < T ? v : T;
    cnt[e % P] += v > T ? 1 : 0;
  }
}

// y[i] = lut[x[i]], eight bytes per step (one 64-bit load and store; x86 is little-endian).
inline void apply_lut(const uint8_t* x, uint8_t* y, int64_t i0, int64_t i1, const uint8_t* lut) {
  int64_t i = i0;
  for (; i + 8 <= i1; i += 8) {
    uint64_t v, o = 0;
    std::memcpy(&v, x + i, 8);
    for (int b = 0; b < 8; ++b) o |= static_cast<uint64_t>(lut[(v >> (8 * b)) & 0xff]) << (8 * b);
    std::memcpy(y + i, &o, 8);
  }
  for (; i < i1; ++i) y[i] = lut[x[i]];
}

#if defined(FASTCONV_X86) && defined(__GNUC__)
// The same with SIMD byte shuffles: the table as 16 rows of 16 bytes; each row is looked up by
// the low nibble (pshufb) and kept where the high nibble selects that row. 16 rounds of 4
// (AVX2) or 2 (AVX-512BW, masked shuffle) instructions per 32 / 64 values.
FASTCONV_TARGET(avx2) void apply_lut_avx2(const uint8_t* x, uint8_t* y, int64_t i0, int64_t i1, const uint8_t* lut) {
  __m256i rows[16];
  for (int r = 0; r < 16; ++r)
    rows[r] = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(lut + 16 * r)));
  const __m256i nibble = _mm256_set1_epi8(0x0f), one = _mm256_set1_epi8(1);
  int64_t i = i0;
  for (; i + 32 <= i1; i += 32) {
    const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + i));
    const __m256i lo = _mm256_and_si256(v, nibble), hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), nibble);
    __m256i out = _mm256_setzero_si256(), row = _mm256_setzero_si256();
    for (int r = 0; r < 16; ++r, row = _mm256_add_epi8(row, one))
      out = _mm256_or_si256(out, _mm256_and_si256(_mm256_cmpeq_epi8(hi, row), _mm256_shuffle_epi8(rows[r], lo)));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(y + i), out);
  }
  apply_lut(x, y, i, i1, lut);
}
// With AVX-512 VBMI (Ice Lake and later, Zen 4) the whole table sits in four registers and
// vpermi2b looks up 64 values in 128 entries at once: two lookups and a blend on bit 7 per 64
// values instead of 32 instructions. albumentations' uint8 LUT (albucore) runs at this speed.
__attribute__((target("avx512f,avx512bw,avx512vbmi"))) void apply_lut_avx512vbmi(const uint8_t* x, uint8_t* y,
                                                                                  int64_t i0, int64_t i1,
                                                                                  const uint8_t* lut) {
  const __m512i t0 = _mm512_loadu_si512(lut), t1 = _mm512_loadu_si512(lut + 64);
  const __m512i t2 = _mm512_loadu_si512(lut + 128), t3 = _mm512_loadu_si512(lut + 192);
  int64_t i = i0;
  for (; i + 64 <= i1; i += 64) {
    const __m512i v = _mm512_loadu_si512(x + i);
    const __m512i low = _mm512_permutex2var_epi8(t0, v, t1), high = _mm512_permutex2var_epi8(t2, v, t3);
    _mm512_storeu_si512(y + i, _mm512_mask_blend_epi8(_mm512_movepi8_mask(v), low, high));
  }
  if (i < i1) {  // the tail under a mask
    const __mmask64 m = ~__mmask64(0) >> (64 - (i1 - i));
    const __m512i v = _mm512_maskz_loadu_epi8(m, x + i);
    const __m512i low = _mm512_permutex2var_epi8(t0, v, t1), high = _mm512_permutex2var_epi8(t2, v, t3);
    _mm512_mask_storeu_epi8(y + i, m, _mm512_mask_blend_epi8(_mm512_movepi8_mask(v), low, high));
  }
}
FASTCONV_TARGET(avx512) void apply_lut_avx512(const uint8_t* x, uint8_t* y, int64_t i0, int64_t i1,
                                              const uint8_t* lut) {
  static const bool vbmi = __builtin_cpu_supports("avx512vbmi");
  if (vbmi) return apply_lut_avx512vbmi(x, y, i0, i1, lut);
  __m512i rows[16];
  for (int r = 0; r < 16; ++r) {  // the row in each 128-bit lane (plain copies: GCC 12 warns on vbroadcasti32x4)
    alignas(64) uint8_t lanes[64];
    for (int q = 0; q < 4; ++q) std::memcpy(lanes + 16 * q, lut + 16 * r, 16);
    rows[r] = _mm512_load_si512(lanes);
  }
  const __m512i nibble = _mm512_set1_epi8(0x0f);
  int64_t i = i0;
  for (; i + 64 <= i1; i += 64) {
    const __m512i v = _mm512_loadu_si512(x + i);
    const __m512i lo = _mm512_and_si512(v, nibble), hi = _mm512_and_si512(_mm512_srli_epi16(v, 4), nibble);
    __m512i out = _mm512_setzero_si512();
    for (int r = 0; r < 16; ++r)
      out = _mm512_mask_shuffle_epi8(out, _mm512_cmpeq_epi8_mask(hi, _mm512_set1_epi8(static_cast<char>(r))), rows[r], lo);
    _mm512_storeu_si512(y + i, out);
  }
  apply_lut(x, y, i, i1, lut);
}
#endif
#define apply_lut_scalar apply_lut  // the baseline variant is the portable loop above

// The per-ISA kernels one color_adjust call uses (chosen by use_isa(); each wraps the
// always-inlined bodies above, compiled for its ISA).
template <typename T>
using ColorRgbFn = void (*)(const T*, T*, bool, int64_t, int64_t, int64_t, const float*, float, float, float);
struct ColorKernelsF32 {
  ColorRgbFn<float> rgb;
  double (*gray_mean)(const float* x, int64_t HW, int64_t C, int64_t cs, int64_t ps, float b, float lo, float hi);
};
struct ColorKernelsU8 {
  ColorRgbFn<uint8_t> rgb;
  void (*histograms)(const uint8_t* x, int64_t HW, int64_t C, int64_t cs, int64_t ps, uint32_t (*hist)[256]);
  void (*clamped_sums)(const uint8_t* x, int64_t HW, int P, uint8_t T, uint64_t* sum, uint64_t* cnt);
  void (*lut)(const uint8_t* x, uint8_t* y, int64_t i0, int64_t i1, const uint8_t* lut);  // y = lut[x]
};
#define FASTCONV_COLOR_RGB_ARGS bool il, int64_t cs, int64_t i0, int64_t i1, const float* p, float m, float lo, float hi
#define FASTCONV_COLOR_KERNELS(ISA)                                                                            \
  FASTCONV_TARGET(ISA) void rgb_f32__##ISA(const float* x, float* y, FASTCONV_COLOR_RGB_ARGS) {               \
    color_rgb_layout<float>(x, y, il, cs, i0, i1, p, m, lo, hi);                                              \
  }                                                                                                           \
  FASTCONV_TARGET(ISA) void rgb_u8__##ISA(const uint8_t* x, uint8_t* y, FASTCONV_COLOR_RGB_ARGS) {            \
    color_rgb_layout<uint8_t>(x, y, il, cs, i0, i1, p, m, lo, hi);                                            \
  }                                                                                                           \
  FASTCONV_TARGET(ISA) double gray_mean_f32__##ISA(const float* x, int64_t HW, int64_t C, int64_t cs,         \
                                                   int64_t ps, float b, float lo, float hi) {                 \
    return gray_mean<float>(x, HW, C, cs, ps, b, lo, hi);                                                     \
  }                                                                                                           \
  FASTCONV_TARGET(ISA) void histograms__##ISA(const uint8_t* x, int64_t HW, int64_t C, int64_t cs, int64_t ps, \
                                              uint32_t (*hist)[256]) {                                        \
    channel_histograms(x, HW, C, cs, ps, hist);                                                               \
  }                                                                                                           \
  FASTCONV_TARGET(ISA) void clamped_sums__##ISA(const uint8_t* x, int64_t HW, int P, uint8_t T, uint64_t* sum, \
                                                uint64_t* cnt) {                                              \
    clamped_sums(x, HW, P, T, sum, cnt);                                                                      \
  }                                                                                                           \
  const ColorKernelsF32 color_f32__##ISA = {&rgb_f32__##ISA, &gray_mean_f32__##ISA};                          \
  const ColorKernelsU8 color_u8__##ISA = {&rgb_u8__##ISA, &histograms__##ISA, &clamped_sums__##ISA, &apply_lut_##ISA};
FASTCONV_FOR_EACH_ISA(FASTCONV_COLOR_KERNELS)
#undef FASTCONV_COLOR_KERNELS
#undef apply_lut_scalar
#undef FASTCONV_COLOR_RGB_ARGS
const KernelTable<ColorKernelsF32> kColorF32("color_adjust", "float32",
                                             FASTCONV_ISA_VARIANTS(color_f32, "color_adjust_f32"));
const KernelTable<ColorKernelsU8> kColorU8("color_adjust", "uint8", FASTCONV_ISA_VARIANTS(color_u8, "color_adjust_u8"));
const KernelTable<ColorKernelsF32>& color_kernels(const float*) { return kColorF32; }
const KernelTable<ColorKernelsU8>& color_kernels(const uint8_t*) { return kColorU8; }

inline double gray_mean_any(const ColorKernelsF32& k, const float* x, int64_t HW, int64_t C, int64_t cs, int64_t ps,
                            float b, float lo, float hi) {
  return k.gray_mean(x, HW, C, cs, ps, b, lo, hi);
}
// The weight of channel c in the contrast anchor: grayscale for RGB, the plain mean otherwise.
inline double channel_weight(int64_t c, int64_t C) { return C == 3 ? (c == 0 ? kR : (c == 1 ? kG : kB)) : 1.0 / C; }

// The contrast anchor of an image whose value v in channel c reads as map[v], from the
// per-channel histograms of the stored values: mean of gray(clamp(b * map[v], lo, hi)).
inline double mean_from_histograms(const uint32_t (*hist)[256], int64_t C, int64_t HW, const uint8_t* map, float b,
                                   float lo, float hi) {
  double total = 0;
  for (int64_t c = 0; c < C; ++c) {
    double s = 0;
    for (int v = 0; v < 256; ++v) s += static_cast<double>(hist[c][v]) * clampf(b * static_cast<float>(map[v]), lo, hi);
    total += channel_weight(c, C) * s;
  }
  return total / static_cast<double>(HW);
}

struct IdentityMap {
  uint8_t v[256];
  IdentityMap() { for (int i = 0; i < 256; ++i) v[i] = static_cast<uint8_t>(i); }
};
const IdentityMap kIdentity;

inline double gray_mean_any(const ColorKernelsU8& k, const uint8_t* x, int64_t HW, int64_t C, int64_t cs, int64_t ps, float b, float lo, float hi) {
  const double inv_hw = 1.0 / static_cast<double>(HW);
  auto weight = [&](int64_t c) { return channel_weight(c, C); };
  // Common case, no lower clamp (b >= 0, lo <= 0): clamp(b * v, lo, hi) = b * v for v <= T and
  // hi above, T the largest value with b * v <= hi (found on the same float formula), so the
  // mean needs only sums of min(v, T) and counts of v > T, which vectorise.
  if (lo <= 0.f && hi >= 0.f && (ps == 1 || (cs == 1 && ps == 3))) {
    int T = -1;
    for (int v = 0; v < 256; ++v) if (b * static_cast<float>(v) <= hi) T = v;
    if (T >= 0) {
      double total = 0;
      const uint8_t t8 = static_cast<uint8_t>(T);
      // hi * cnt: values clamped to hi (none when hi is +inf, where inf * 0 would be NaN).
      auto above = [&](uint64_t cnt) { return cnt ? static_cast<double>(hi) * cnt : 0.0; };
      if (ps == 3) {
        uint64_t sum[3] = {0}, cnt[3] = {0};
        k.clamped_sums(x, HW, 3, t8, sum, cnt);
        for (int c = 0; c < 3; ++c)
          total += weight(c) * (static_cast<double>(b) * (static_cast<double>(sum[c]) - static_cast<double>(T) * cnt[c]) +
                                above(cnt[c]));
      } else {
        for (int64_t c = 0; c < C; ++c) {
          uint64_t sum = 0, cnt = 0;
          k.clamped_sums(x + c * cs, HW, 1, t8, &sum, &cnt);
          total += weight(c) * (static_cast<double>(b) * (static_cast<double>(sum) - static_cast<double>(T) * cnt) +
                                above(cnt));
        }
      }
      return total * inv_hw;
    }
  }
  std::vector<uint32_t[256]> hist(C);
  for (auto& h : hist) std::fill(h, h + 256, 0u);
  k.histograms(x, HW, C, cs, ps, hist.data());
  return mean_from_histograms(hist.data(), C, HW, kIdentity.v, b, lo, hi);
}

// uint8 without saturation / hue: every channel value maps through one 256-entry table per
// image (the same formula, evaluated once per possible value), built once per image.
inline bool lut_applies(const float* p, bool is_u8) { return is_u8 && p[2] == 1.f && p[3] == 0.f; }
inline void build_lut(uint8_t* lut, const float* p, float m, float lo, float hi) {
  for (int v = 0; v < 256; ++v) {
    const float b = clampf(p[0] * static_cast<float>(v), lo, hi);
    lut[v] = store<uint8_t>(clampf(p[1] * b + (1.f - p[1]) * m, lo, hi));
  }
}
// Image pixels [i0, i1) through the image's table, in either layout (uint8 only).
inline void apply_image_lut(const ColorKernelsF32&, const float*, float*, bool, int64_t, int64_t, int64_t, int64_t,
                            const uint8_t*) {}
inline void apply_image_lut(const ColorKernelsU8& k, const uint8_t* x, uint8_t* y, bool channels_last, int64_t C,
                            int64_t HW, int64_t i0, int64_t i1, const uint8_t* lut) {
  if (channels_last) k.lut(x, y, i0 * C, i1 * C, lut);
  else
    for (int64_t c = 0; c < C; ++c) k.lut(x, y, c * HW + i0, c * HW + i1, lut);
}

}  // namespace

template <typename T>
void color_adjust(const T* src, T* dst, Image im, const float* params, float lo, float hi) {
  const int64_t HW = im.H * im.W, C = im.C;
  const bool cl = im.channels_last;
  const int64_t cs = cl ? 1 : HW, ps = cl ? C : 1;
  const int64_t chunks = (HW + kChunk - 1) / kChunk;
  // Pass 1: per-image mean of the grayscale of the brightness-adjusted image (contrast anchor).
  const auto& kernels = color_kernels(src).active();
  std::vector<double> mean(im.N, 0.0);
  constexpr bool is_u8 = sizeof(T) == 1;
  std::vector<uint8_t> luts(is_u8 ? im.N * 256 : 0);
  parallel_for(im.N, [&](int64_t n) {
    const float* p = params + 4 * n;
    if (p[1] != 1.f) mean[n] = gray_mean_any(kernels, src + n * C * HW, HW, C, cs, ps, p[0], lo, hi);
    if (lut_applies(p, is_u8)) build_lut(luts.data() + 256 * n, p, static_cast<float>(mean[n]), lo, hi);
  });
  // Pass 2: the fused per-pixel chain, in chunks of pixels.
  parallel_for(im.N * chunks, [&](int64_t task) {
    const int64_t n = task / chunks, i0 = (task % chunks) * kChunk, i1 = std::min(HW, i0 + kChunk);
    const float* p = params + 4 * n;
    const float m = static_cast<float>(mean[n]);
    const T* x = src + n * C * HW;
    T* y = dst + n * C * HW;
    // A chunk of pixels is a contiguous run of elements in NHWC; in NCHW take every channel's run.
    if (lut_applies(p, is_u8)) {
      apply_image_lut(kernels, x, y, cl, C, HW, i0, i1, luts.data() + 256 * n);
      return;
    }
    if (C == 3) {
      kernels.rgb(x, y, cl, cl ? 1 : HW, i0, i1, p, m, lo, hi);
      return;
    }
    const float cm = (1.f - p[1]) * m;
    for (int64_t c = 0; c < C; ++c)
      for (int64_t i = i0; i < i1; ++i) {
        const int64_t e = i * ps + c * cs;
        const float v = clampf(p[0] * static_cast<float>(x[e]), lo, hi);
        y[e] = store<T>(clampf(p[1] * v + cm, lo, hi));
      }
  });
}

void color_lut_chain(const uint8_t* src, uint8_t* dst, Image im, int64_t steps, const float* params,
                     const float* ranges) {
  const int64_t HW = im.H * im.W, C = im.C;
  const int64_t cs = im.channels_last ? 1 : HW, ps = im.channels_last ? C : 1;
  const ColorKernelsU8& kernels = kColorU8.active();
  // Pass 1, per image: the tables composed step by step. A step with contrast needs the anchor
  // of the image the steps before it stored, g[x]: the same gray_mean_any that adjust_color runs
  // on a stored image, here on g[x] written to a per-thread scratch image by the (SIMD) table
  // lookup. Two vector passes; a per-pixel histogram of the input (one serves every step) cost
  // ~3x more, its increments being one dependent load-add-store per byte.
  std::vector<uint8_t> luts(im.N * 256);
  parallel_for(im.N, [&](int64_t n) {
    thread_local std::vector<uint8_t> stored;
    const uint8_t* x = src + n * C * HW;
    uint8_t* g = luts.data() + 256 * n;
    std::copy(kIdentity.v, kIdentity.v + 256, g);
    bool identity = true;
    for (int64_t s = 0; s < steps; ++s) {
      const float* q = params + 2 * (n * steps + s);
      const float p[4] = {q[0], q[1], 1.f, 0.f}, lo = ranges[2 * s], hi = ranges[2 * s + 1];
      double mean = 0;
      if (p[1] != 1.f) {
        const uint8_t* seen = x;
        if (!identity) {
          stored.resize(static_cast<size_t>(C * HW));
          kernels.lut(x, stored.data(), 0, C * HW, g);
          seen = stored.data();
        }
        mean = gray_mean_any(kernels, seen, HW, C, cs, ps, p[0], lo, hi);
      }
      uint8_t step[256];
      build_lut(step, p, static_cast<float>(mean), lo, hi);
      for (int v = 0; v < 256; ++v) g[v] = step[g[v]];
      identity = identity && std::equal(g, g + 256, kIdentity.v);
    }
  });
  // Pass 2: one table lookup per value, in chunks of pixels.
  const int64_t chunks = (HW + kChunk - 1) / kChunk;
  parallel_for(im.N * chunks, [&](int64_t task) {
    const int64_t n = task / chunks, i0 = (task % chunks) * kChunk, i1 = std::min(HW, i0 + kChunk);
    apply_image_lut(kernels, src + n * C * HW, dst + n * C * HW, im.channels_last, C, HW, i0, i1,
                    luts.data() + 256 * n);
  });
}

template void color_adjust<float>(const float*, float*, Image, const float*, float, float);
template void color_adjust<uint8_t>(const uint8_t*, uint8_t*, Image, const float*, float, float);

}  // namespace augment
}  // namespace fastconv
