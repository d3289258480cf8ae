// Pixel noise from a counter-based generator: element i of sample n gets its random bits from
// hash(key[n], i), so the result is the same for any thread count or batch chunking, and the
// loops have no carried state (they vectorise). Gaussian variates use Box-Muller with
// polynomial log / sin / cos (|error| < 1e-5, far below any noise level used for augmentation).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>

#include "augment/augment.h"
#include "augment/pixels.h"
#include "common/isa_target.h"
#include "common/parallel.h"

namespace fastconv {
namespace augment {
namespace {

constexpr int64_t kChunk = 8192;
constexpr int64_t kBlock = 512;  // normal pairs made per inner block

// "lowbias32" integer hash (C. Wellons): a bijection on 32-bit words with good avalanche.
inline uint32_t mix32(uint32_t x) {
  x ^= x >> 16; x *= 0x7feb352dU;
  x ^= x >> 15; x *= 0x846ca68bU;
  x ^= x >> 16;
  return x;
}

inline uint32_t bits(uint64_t key, uint32_t counter) {
  return mix32(mix32(counter ^ static_cast<uint32_t>(key)) + static_cast<uint32_t>(key >> 32));
}

// Uniform in (0, 1]: 24 random bits, never 0 (log is taken).
inline float uniform_open0(uint32_t h) { return static_cast<float>((h >> 8) + 1) * (1.0f / 16777216.0f); }

// ln(u) for u in (0, 1]: exponent from the bits, mantissa m through
// ln m = 2 atanh(t), t = (m - 1) / (m + 1), odd series to t^9.
inline float fast_log(float u) {
  uint32_t i;
  std::memcpy(&i, &u, 4);
  const float e = static_cast<float>(static_cast<int32_t>(i >> 23) - 127);
  i = (i & 0x007fffffU) | 0x3f800000U;
  float m;
  std::memcpy(&m, &i, 4);
  // Centre the mantissa on 1 (m in [0.707, 1.414)): |t| <= 0.172, and no cancellation for u near 1.
  // Selects of constants only (no arithmetic under a condition), so the loop if-converts
  // and vectorises without -fno-trapping-math.
  const bool big = m > 1.41421356f;
  m *= big ? 0.5f : 1.f;
  const float e2 = e + (big ? 1.f : 0.f);
  const float t = (m - 1.f) / (m + 1.f), t2 = t * t;
  const float series = t * (2.f + t2 * (2.f / 3 + t2 * (2.f / 5 + t2 * (2.f / 7 + t2 * (2.f / 9)))));
  return e2 * 0.69314718f + series;
}

// sin and cos of 2*pi*v for v in [0, 1): fold to a in [-pi/2, pi/2] and Taylor to degree 11/12.
inline void sincos_turn(float v, float& s, float& c) {
  float a = (v - 0.5f) * 6.28318531f;           // a in [-pi, pi); sin(2 pi v) = -sin(a), cos = -cos(a)
  const bool fold = std::fabs(a) > 1.57079633f;  // use sin(pi - a) = sin(a), cos(pi - a) = -cos(a)
  const float sel = fold ? 1.f : 0.f;
  const float a2 = sel * std::copysign(3.14159265f, a) + (1.f - 2.f * sel) * a;
  const float x2 = a2 * a2;
  float sn = a2 * (1.f + x2 * (-1.f / 6 + x2 * (1.f / 120 + x2 * (-1.f / 5040 + x2 * (1.f / 362880 + x2 * (-1.f / 39916800))))));
  float cs = 1.f + x2 * (-0.5f + x2 * (1.f / 24 + x2 * (-1.f / 720 + x2 * (1.f / 40320 + x2 * (-1.f / 3628800 + x2 * (1.f / 479001600))))));
  cs *= 1.f - 2.f * sel;
  s = -sn;
  c = -cs;
}

// One chunk [i0, i1) of one sample.
template <typename T>
FASTCONV_AUG_INLINE void noise_chunk(const T* x, T* y, int64_t i0, int64_t i1, uint64_t k, float sd, float lo, float hi) {
    // Element pairs (2j, 2j+1) share one Box-Muller draw from counters 2j and 2j+1 (i0 is even).
    // Normals are made a block at a time in a branch-free loop (it vectorises), then added.
    float zc[kBlock], zs[kBlock];
    for (int64_t b0 = i0; b0 < i1; b0 += 2 * kBlock) {
      const int64_t m = std::min<int64_t>(kBlock, (i1 - b0 + 1) / 2);
      const uint32_t c0 = static_cast<uint32_t>(b0);
      for (int64_t j = 0; j < m; ++j) {
        const uint32_t c = c0 + 2 * static_cast<uint32_t>(j);
        const float u1 = static_cast<float>(static_cast<int32_t>((bits(k, c) >> 8) + 1)) * (1.0f / 16777216.0f);
        const float u2 = static_cast<float>(static_cast<int32_t>(bits(k, c + 1) >> 8)) * (1.0f / 16777216.0f);
        const float r = std::sqrt(-2.f * fast_log(u1));
        float sn, cs;
        sincos_turn(u2, sn, cs);
        zc[j] = r * cs;
        zs[j] = r * sn;
      }
      const int64_t e = std::min(i1, b0 + 2 * m);
      for (int64_t j = 0; b0 + 2 * j < e; ++j) {
        const int64_t i = b0 + 2 * j;
        y[i] = store<T>(clampf(static_cast<float>(x[i]) + sd * zc[j], lo, hi));
        if (i + 1 < e) y[i + 1] = store<T>(clampf(static_cast<float>(x[i + 1]) + sd * zs[j], lo, hi));
      }
    }
}

// One chunk of one sample, compiled per ISA and chosen by use_isa().
template <typename T>
using NoiseChunkFn = void (*)(const T*, T*, int64_t, int64_t, uint64_t, float, float, float);
#define FASTCONV_NOISE_KERNELS(ISA)                                                                            \
  FASTCONV_TARGET(ISA) void noise_f32__##ISA(const float* x, float* y, int64_t i0, int64_t i1, uint64_t k,     \
                                             float sd, float lo, float hi) {                                  \
    noise_chunk<float>(x, y, i0, i1, k, sd, lo, hi);                                                          \
  }                                                                                                           \
  FASTCONV_TARGET(ISA) void noise_u8__##ISA(const uint8_t* x, uint8_t* y, int64_t i0, int64_t i1, uint64_t k,  \
                                            float sd, float lo, float hi) {                                   \
    noise_chunk<uint8_t>(x, y, i0, i1, k, sd, lo, hi);                                                        \
  }
FASTCONV_FOR_EACH_ISA(FASTCONV_NOISE_KERNELS)
#undef FASTCONV_NOISE_KERNELS
const KernelTable<NoiseChunkFn<float>> kNoiseF32("gaussian_noise", "float32",
                                                 FASTCONV_ISA_VARIANTS(noise_f32, "gaussian_noise_f32"));
const KernelTable<NoiseChunkFn<uint8_t>> kNoiseU8("gaussian_noise", "uint8",
                                                  FASTCONV_ISA_VARIANTS(noise_u8, "gaussian_noise_u8"));
const KernelTable<NoiseChunkFn<float>>& noise_kernels(const float*) { return kNoiseF32; }
const KernelTable<NoiseChunkFn<uint8_t>>& noise_kernels(const uint8_t*) { return kNoiseU8; }

}  // namespace

template <typename T>
void gaussian_noise(const T* src, T* dst, int64_t N, int64_t per_sample, const uint64_t* key,
                    const float* std, float lo, float hi) {
  const int64_t chunks = (per_sample + kChunk - 1) / kChunk;
  const NoiseChunkFn<T> noise_chunk_isa = noise_kernels(src).active();
  parallel_for(N * chunks, [&](int64_t task) {
    const int64_t n = task / chunks, i0 = (task % chunks) * kChunk;
    const int64_t i1 = std::min(per_sample, i0 + kChunk);
    const T* x = src + n * per_sample;
    T* y = dst + n * per_sample;
    if (std[n] == 0.f) {
      if (x != y) std::memcpy(y + i0, x + i0, sizeof(T) * (i1 - i0));
      return;
    }
    noise_chunk_isa(x, y, i0, i1, key[n], std[n], lo, hi);
  });
}

template <typename T>
void salt_pepper(const T* src, T* dst, int64_t N, int64_t per_sample, const uint64_t* key,
                 const float* amount, float salt, float pepper) {
  const int64_t chunks = (per_sample + kChunk - 1) / kChunk;
  parallel_for(N * chunks, [&](int64_t task) {
    const int64_t n = task / chunks, i0 = (task % chunks) * kChunk;
    const int64_t i1 = std::min(per_sample, i0 + kChunk);
    const T* x = src + n * per_sample;
    T* y = dst + n * per_sample;
    const float a = amount[n], half = 0.5f * amount[n];
    const uint64_t k = key[n];
    for (int64_t i = i0; i < i1; ++i) {
      const float u = static_cast<float>(bits(k, static_cast<uint32_t>(i)) >> 8) * (1.0f / 16777216.0f);
      y[i] = u < half ? store<T>(pepper) : (u < a ? store<T>(salt) : x[i]);
    }
  });
}

template void gaussian_noise<float>(const float*, float*, int64_t, int64_t, const uint64_t*, const float*, float, float);
template void gaussian_noise<uint8_t>(const uint8_t*, uint8_t*, int64_t, int64_t, const uint64_t*, const float*, float, float);
template void salt_pepper<float>(const float*, float*, int64_t, int64_t, const uint64_t*, const float*, float, float);
template void salt_pepper<uint8_t>(const uint8_t*, uint8_t*, int64_t, int64_t, const uint64_t*, const float*, float, float);

}  // namespace augment
}  // namespace fastconv
