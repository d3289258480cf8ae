// Max pooling with indices. One (n, c) plane per work item; windows follow PyTorch exactly:
// the first maximum in row-major order wins and a NaN replaces the running maximum.
#include <algorithm>
#include <atomic>
#include <limits>
#include <vector>


#include "common/isa_target.h"
#if defined(FASTCONV_X86) && defined(__GNUC__)
#include <immintrin.h>
#endif
#include "common/parallel.h"
#include "pool/pool.h"

namespace fastconv {

namespace {
// The VGG/LeNet case, 2x2 windows with stride 2 that all lie inside the input: the same
// comparisons as the general loop, unrolled, without per-window bounds arithmetic. Compiled
// once per ISA (the selects vectorise only with AVX2 / AVX-512) and chosen by use_isa().
template <typename T>
FASTCONV_ALWAYS_INLINE void max_pool_2x2(const T* __restrict in, T* __restrict out, int64_t* __restrict ind,
                                         const PoolParams& p) {
  const int64_t OH = p.OH, OW = p.OW, W = p.W;  // locals: stores through out/ind cannot alias them
  for (int64_t oh = 0; oh < OH; ++oh) {
    const T* r0 = in + 2 * oh * W;
    const T* r1 = r0 + W;
    T* o = out + oh * OW;
    int64_t* id = ind + oh * OW;
    const int64_t row0 = 2 * oh * W;
    // Branch-free selects (a data-dependent branch per comparison mispredicts half the
    // time on real activations); written so the loop vectorises over ow.
    for (int64_t ow = 0; ow < OW; ++ow) {
      const T a = r0[2 * ow], b = r0[2 * ow + 1], c = r1[2 * ow], d = r1[2 * ow + 1];
      T best = a;
      int64_t off = 0;  // offset of the winner from the window's first element
      bool take = (b > best) | (b != b);
      best = take ? b : best;
      off = take ? 1 : off;
      take = (c > best) | (c != c);
      best = take ? c : best;
      off = take ? W : off;
      take = (d > best) | (d != d);
      best = take ? d : best;
      off = take ? W + 1 : off;
      o[ow] = best;
      id[ow] = row0 + 2 * ow + off;
    }
  }
}

// One (n, c) plane: input, output, indices.
template <typename T>
using MaxPoolPlaneFn = void (*)(const T*, T*, int64_t*, const PoolParams&);
#define FASTCONV_MAX_POOL_2X2(ISA)                                                                                  \
  FASTCONV_TARGET(ISA) void max_pool_2x2_f64__##ISA(const double* in, double* out, int64_t* ind,                    \
                                                    const PoolParams& p) {                                         \
    max_pool_2x2<double>(in, out, ind, p);                                                                         \
  }
FASTCONV_FOR_EACH_ISA(FASTCONV_MAX_POOL_2X2)
#define FASTCONV_MAX_POOL_2X2_F32(ISA)                                                                              \
  FASTCONV_TARGET(ISA) void max_pool_2x2_f32__##ISA(const float* in, float* out, int64_t* ind, const PoolParams& p) { \
    max_pool_2x2<float>(in, out, ind, p);                                                                          \
  }
#if defined(FASTCONV_X86) && defined(__GNUC__)  // the ISA variants exist (isa_target.h)
FASTCONV_MAX_POOL_2X2_F32(scalar)
// GCC 12 warns about its own intrinsic headers here (a false -Wmaybe-uninitialized).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
// float32 with AVX2: 8 outputs per step, the tail of a row under a mask (why: see the AVX-512
// kernel below).
// The even (SHUF 0x88) or odd (0xDD) elements of lo:hi in order: shuffle_ps gives lanes
// (0 2 8 10 | 4 6 12 14), permute4x64 puts them in order.
template <int SHUF>
FASTCONV_TARGET(avx2) FASTCONV_ALWAYS_INLINE __m256 deinterleave_avx2(__m256 lo, __m256 hi) {
  return _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(_mm256_shuffle_ps(lo, hi, SHUF)), 0xD8));
}
FASTCONV_TARGET(avx2) FASTCONV_ALWAYS_INLINE void take_if_larger_avx2(__m256 v, __m256i v_off, __m256& best, __m256i& off) {
  const __m256 take = _mm256_or_ps(_mm256_cmp_ps(v, best, _CMP_GT_OQ), _mm256_cmp_ps(v, v, _CMP_UNORD_Q));
  best = _mm256_blendv_ps(best, v, take);
  off = _mm256_castps_si256(_mm256_blendv_ps(_mm256_castsi256_ps(off), _mm256_castsi256_ps(v_off), take));
}
FASTCONV_TARGET(avx2) void max_pool_2x2_f32__avx2(const float* in, float* out, int64_t* ind, const PoolParams& p) {
  const int64_t OH = p.OH, OW = p.OW, W = p.W;
  if (p.H * W >= (int64_t(1) << 31)) return max_pool_2x2<float>(in, out, ind, p);  // int32 offsets below
  const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  const __m256i off_b = _mm256_set1_epi32(1), off_c = _mm256_set1_epi32(int(W)), off_d = _mm256_set1_epi32(int(W + 1));
  for (int64_t oh = 0; oh < OH; ++oh) {
    const float* r0 = in + 2 * oh * W;
    const float* r1 = r0 + W;
    for (int64_t ow = 0; ow < OW; ow += 8) {
      const int n = int(std::min<int64_t>(8, OW - ow));
      const __m256i m = _mm256_cmpgt_epi32(_mm256_set1_epi32(n), lane);  // lanes < n
      // input floats 2*ow .. 2*ow + 2n - 1 of each row, as two masked 8-float loads
      const __m256i m_lo = _mm256_cmpgt_epi32(_mm256_set1_epi32(2 * n), lane);
      const __m256i m_hi = _mm256_cmpgt_epi32(_mm256_set1_epi32(2 * n - 8), lane);
      const __m256 x0 = _mm256_maskload_ps(r0 + 2 * ow, m_lo), x1 = _mm256_maskload_ps(r0 + 2 * ow + 8, m_hi);
      const __m256 y0 = _mm256_maskload_ps(r1 + 2 * ow, m_lo), y1 = _mm256_maskload_ps(r1 + 2 * ow + 8, m_hi);
      const __m256 a = deinterleave_avx2<0x88>(x0, x1), b = deinterleave_avx2<0xDD>(x0, x1);
      const __m256 c = deinterleave_avx2<0x88>(y0, y1), d = deinterleave_avx2<0xDD>(y0, y1);
      __m256 best = a;
      __m256i off = _mm256_setzero_si256();
      take_if_larger_avx2(b, off_b, best, off);
      take_if_larger_avx2(c, off_c, best, off);
      take_if_larger_avx2(d, off_d, best, off);
      _mm256_maskstore_ps(out + oh * OW + ow, m, best);
      // flat index = 2*oh*W + 2*(ow + lane) + off, in int32 (checked above), widened to int64
      const __m256i flat = _mm256_add_epi32(_mm256_add_epi32(_mm256_add_epi32(lane, lane), off),
                                            _mm256_set1_epi32(int(2 * oh * W + 2 * ow)));
      const __m256i m64_lo = _mm256_cvtepi32_epi64(_mm256_castsi256_si128(m));
      const __m256i m64_hi = _mm256_cvtepi32_epi64(_mm256_extracti128_si256(m, 1));
      long long* id = reinterpret_cast<long long*>(ind + oh * OW + ow);
      _mm256_maskstore_epi64(id, m64_lo, _mm256_cvtepi32_epi64(_mm256_castsi256_si128(flat)));
      _mm256_maskstore_epi64(id + 4, m64_hi, _mm256_cvtepi32_epi64(_mm256_extracti128_si256(flat, 1)));
    }
  }
}
// float32 with AVX-512: 16 outputs per step, the tail of a row under a mask. The generic loop
// above vectorises too, but only for whole vectors: rows narrower than a vector (VGG's 7- and
// 14-wide maps, LeNet's 14 and 5) ran its scalar epilogue at ~12 ns per output, 6x slower than
// a 16-wide row. Same comparisons and tie/NaN rules as max_pool_2x2.
FASTCONV_TARGET(avx512) void max_pool_2x2_f32__avx512(const float* in, float* out, int64_t* ind, const PoolParams& p) {
  const int64_t OH = p.OH, OW = p.OW, W = p.W;
  if (p.H * W >= (int64_t(1) << 31)) return max_pool_2x2<float>(in, out, ind, p);  // int32 offsets below
  const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  const __m512i odd = _mm512_add_epi32(even, _mm512_set1_epi32(1));
  const __m512i lane2 = even;  // 2 * lane: a window's first column relative to the step's start
  const __m512i off_b = _mm512_set1_epi32(1), off_c = _mm512_set1_epi32(int(W)), off_d = _mm512_set1_epi32(int(W + 1));
  for (int64_t oh = 0; oh < OH; ++oh) {
    const float* r0 = in + 2 * oh * W;
    const float* r1 = r0 + W;
    for (int64_t ow = 0; ow < OW; ow += 16) {
      const int n = int(std::min<int64_t>(16, OW - ow));
      const __mmask16 m = __mmask16((1u << n) - 1);
      const int pairs = 2 * n;  // input floats read in each row: two masked 16-float loads
      const __mmask16 m_lo = __mmask16(pairs >= 16 ? 0xFFFF : (1u << pairs) - 1);
      const __mmask16 m_hi = __mmask16(pairs <= 16 ? 0 : (1u << (pairs - 16)) - 1);
      const __m512 x0 = _mm512_maskz_loadu_ps(m_lo, r0 + 2 * ow), x1 = _mm512_maskz_loadu_ps(m_hi, r0 + 2 * ow + 16);
      const __m512 y0 = _mm512_maskz_loadu_ps(m_lo, r1 + 2 * ow), y1 = _mm512_maskz_loadu_ps(m_hi, r1 + 2 * ow + 16);
      const __m512 a = _mm512_permutex2var_ps(x0, even, x1), b = _mm512_permutex2var_ps(x0, odd, x1);
      const __m512 c = _mm512_permutex2var_ps(y0, even, y1), d = _mm512_permutex2var_ps(y0, odd, y1);
      __m512 best = a;
      __m512i off = _mm512_setzero_si512();
      __mmask16 take = _mm512_cmp_ps_mask(b, best, _CMP_GT_OQ) | _mm512_cmp_ps_mask(b, b, _CMP_UNORD_Q);
      best = _mm512_mask_blend_ps(take, best, b);
      off = _mm512_mask_blend_epi32(take, off, off_b);
      take = _mm512_cmp_ps_mask(c, best, _CMP_GT_OQ) | _mm512_cmp_ps_mask(c, c, _CMP_UNORD_Q);
      best = _mm512_mask_blend_ps(take, best, c);
      off = _mm512_mask_blend_epi32(take, off, off_c);
      take = _mm512_cmp_ps_mask(d, best, _CMP_GT_OQ) | _mm512_cmp_ps_mask(d, d, _CMP_UNORD_Q);
      best = _mm512_mask_blend_ps(take, best, d);
      off = _mm512_mask_blend_epi32(take, off, off_d);
      _mm512_mask_storeu_ps(out + oh * OW + ow, m, best);
      // flat index = 2*oh*W + 2*(ow + lane) + off, in int32 (checked above), widened to int64
      const __m512i flat = _mm512_add_epi32(_mm512_add_epi32(lane2, off), _mm512_set1_epi32(int(2 * oh * W + 2 * ow)));
      int64_t* id = ind + oh * OW + ow;
      _mm512_mask_storeu_epi64(id, __mmask8(m), _mm512_cvtepi32_epi64(_mm512_castsi512_si256(flat)));
      _mm512_mask_storeu_epi64(id + 8, __mmask8(m >> 8), _mm512_cvtepi32_epi64(_mm512_extracti64x4_epi64(flat, 1)));
    }
  }
}
#pragma GCC diagnostic pop
#else
FASTCONV_FOR_EACH_ISA(FASTCONV_MAX_POOL_2X2_F32)
#endif
#undef FASTCONV_MAX_POOL_2X2
#undef FASTCONV_MAX_POOL_2X2_F32
const KernelTable<MaxPoolPlaneFn<float>> kMaxPool2x2F32("max_pool2d", "float32",
                                                       FASTCONV_ISA_VARIANTS(max_pool_2x2_f32, "max_pool_2x2_f32"));
const KernelTable<MaxPoolPlaneFn<double>> kMaxPool2x2F64("max_pool2d", "float64",
                                                        FASTCONV_ISA_VARIANTS(max_pool_2x2_f64, "max_pool_2x2_f64"));
const KernelTable<MaxPoolPlaneFn<float>>& max_pool_2x2_kernels(const float*) { return kMaxPool2x2F32; }
const KernelTable<MaxPoolPlaneFn<double>>& max_pool_2x2_kernels(const double*) { return kMaxPool2x2F64; }

// Any other window without dilation (AlexNet's and ResNet's 3x3 stride 2, padded or not): per
// output row, the taps in row-major order, each a pass over the row's interior outputs (those
// whose window lies inside the input horizontally) that vectorises over ow; the few edge outputs
// take the per-window loop. The same comparisons, so the same winner, ties and NaNs as the
// general loop: out and ind hold the running maximum and its index.
// One output's window, any dilation: the general loop (dilated windows run only this) and the
// edge outputs of max_pool_window below.
template <typename T>
FASTCONV_ALWAYS_INLINE void max_pool_window_at(const T* in, int64_t oh, int64_t ow, T* out, int64_t* ind,
                                               const PoolParams& p) {
  int64_t h0 = oh * p.stride_h - p.pad_h, w0 = ow * p.stride_w - p.pad_w;
  const int64_t h1 = std::min<int64_t>(h0 + (p.kh - 1) * p.dil_h + 1, p.H);
  const int64_t w1 = std::min<int64_t>(w0 + (p.kw - 1) * p.dil_w + 1, p.W);
  while (h0 < 0) h0 += p.dil_h;
  while (w0 < 0) w0 += p.dil_w;
  T best = -std::numeric_limits<T>::infinity();
  int64_t best_i = h0 * p.W + w0;
  for (int64_t h = h0; h < h1; h += p.dil_h)
    for (int64_t w = w0; w < w1; w += p.dil_w) {
      const T v = in[h * p.W + w];
      if (v > best || v != v) {
        best = v;
        best_i = h * p.W + w;
      }
    }
  *out = best;
  *ind = best_i;
}

template <typename T, int S>  // S: the horizontal stride, or 0 for one known only at run time
FASTCONV_ALWAYS_INLINE void max_pool_window(const T* __restrict in, T* __restrict out, int64_t* __restrict ind,
                                            const PoolParams& p) {
  const int64_t W = p.W, OW = p.OW, kw = p.kw, pad_w = p.pad_w;
  const int64_t sw = S ? S : p.stride_w;
  // interior outputs: ow * sw - pad_w >= 0 and ow * sw - pad_w + kw <= W
  const int64_t lo = std::min<int64_t>(OW, (pad_w + sw - 1) / sw);
  const int64_t hi = W - kw + pad_w < 0 ? lo : std::max<int64_t>(lo, std::min<int64_t>(OW, (W - kw + pad_w) / sw + 1));
  for (int64_t oh = 0; oh < p.OH; ++oh) {
    T* o = out + oh * OW;
    int64_t* id = ind + oh * OW;
    for (int64_t ow = 0; ow < lo; ++ow) max_pool_window_at(in, oh, ow, o + ow, id + ow, p);
    for (int64_t ow = hi; ow < OW; ++ow) max_pool_window_at(in, oh, ow, o + ow, id + ow, p);
    if (hi == lo) continue;
    const int64_t h0 = std::max<int64_t>(oh * p.stride_h - p.pad_h, 0);
    const int64_t h1 = std::min<int64_t>(oh * p.stride_h - p.pad_h + p.kh, p.H);
    for (int64_t ow = lo; ow < hi; ++ow) {
      o[ow] = -std::numeric_limits<T>::infinity();
      id[ow] = h0 * W + ow * sw - pad_w;
    }
    for (int64_t h = h0; h < h1; ++h)
      for (int64_t k = 0; k < kw; ++k) {
        const int64_t base = h * W + k - pad_w;  // input index of output ow's tap: base + ow * sw
        const T* row = in + base;
        // Branch-free selects, as in max_pool_2x2.
        for (int64_t ow = lo; ow < hi; ++ow) {
          const T v = row[ow * sw];
          const bool take = (v > o[ow]) | (v != v);
          o[ow] = take ? v : o[ow];
          id[ow] = take ? base + ow * sw : id[ow];
        }
      }
  }
}

template <typename T>
FASTCONV_ALWAYS_INLINE void max_pool_window_any(const T* in, T* out, int64_t* ind, const PoolParams& p) {
  if (p.stride_w == 2) return max_pool_window<T, 2>(in, out, ind, p);
  if (p.stride_w == 1) return max_pool_window<T, 1>(in, out, ind, p);
  max_pool_window<T, 0>(in, out, ind, p);
}

#define FASTCONV_MAX_POOL_WINDOW(ISA)                                                                          \
  FASTCONV_TARGET(ISA) void max_pool_window_f32__##ISA(const float* in, float* out, int64_t* ind,             \
                                                       const PoolParams& p) {                                \
    max_pool_window_any<float>(in, out, ind, p);                                                              \
  }                                                                                                           \
  FASTCONV_TARGET(ISA) void max_pool_window_f64__##ISA(const double* in, double* out, int64_t* ind,          \
                                                       const PoolParams& p) {                                \
    max_pool_window_any<double>(in, out, ind, p);                                                             \
  }
FASTCONV_FOR_EACH_ISA(FASTCONV_MAX_POOL_WINDOW)
#undef FASTCONV_MAX_POOL_WINDOW
const KernelTable<MaxPoolPlaneFn<float>> kMaxPoolWindowF32("max_pool2d_window", "float32",
                                                          FASTCONV_ISA_VARIANTS(max_pool_window_f32, "max_pool_window_f32"));
const KernelTable<MaxPoolPlaneFn<double>> kMaxPoolWindowF64("max_pool2d_window", "float64",
                                                           FASTCONV_ISA_VARIANTS(max_pool_window_f64, "max_pool_window_f64"));
const KernelTable<MaxPoolPlaneFn<float>>& max_pool_window_kernels(const float*) { return kMaxPoolWindowF32; }
const KernelTable<MaxPoolPlaneFn<double>>& max_pool_window_kernels(const double*) { return kMaxPoolWindowF64; }

// Values only (inference: nobody asked for the indices), no dilation: per output row, the
// element-wise maximum of its window's input rows (contiguous, vectorises), written into a
// row padded with -inf on both sides, then per output the maximum of its kw taps in that row.
// The indexed kernels spend most of their time on the int64 index selects and stores (ResNet's
// 3x3/2 on 64 x 112 x 112: 0.75 ms with indices). NaN propagates as there: a NaN tap replaces
// the running maximum, and a NaN maximum stays.
template <typename T>
FASTCONV_ALWAYS_INLINE T max_or_nan(T best, T v) {
  return (v > best) | (v != v) ? v : best;
}

// The padded row's length: the left padding and the input row, or as far as the last window reads.
inline int64_t values_row_length(const PoolParams& p) {
  return std::max<int64_t>(p.pad_w + p.W, (p.OW - 1) * p.stride_w + p.kw);
}

template <typename T, int S>  // S: the horizontal stride, or 0 for one known only at run time
FASTCONV_ALWAYS_INLINE void max_pool_values(const T* __restrict in, T* __restrict out, const PoolParams& p,
                                            T* __restrict row) {
  const int64_t W = p.W, OW = p.OW, kw = p.kw, sw = S ? S : p.stride_w, pad_w = p.pad_w;
  const int64_t span = values_row_length(p);
  for (int64_t w = 0; w < pad_w; ++w) row[w] = -std::numeric_limits<T>::infinity();
  for (int64_t w = pad_w + W; w < span; ++w) row[w] = -std::numeric_limits<T>::infinity();
  T* mid = row + pad_w;
  for (int64_t oh = 0; oh < p.OH; ++oh) {
    const int64_t h0 = std::max<int64_t>(oh * p.stride_h - p.pad_h, 0);
    const int64_t h1 = std::min<int64_t>(oh * p.stride_h - p.pad_h + p.kh, p.H);
    const T* first = in + h0 * W;
    for (int64_t w = 0; w < W; ++w) mid[w] = first[w];
    for (int64_t h = h0 + 1; h < h1; ++h) {
      const T* r = in + h * W;
      for (int64_t w = 0; w < W; ++w) mid[w] = max_or_nan(mid[w], r[w]);
    }
    // A pass per tap, each over the whole output row (branch-free selects that vectorise over
    // ow; a loop over the taps per output compiled to a mispredicted branch per tap).
    T* o = out + oh * OW;
    for (int64_t ow = 0; ow < OW; ++ow) o[ow] = row[ow * sw];
    for (int64_t k = 1; k < kw; ++k) {
      const T* t = row + k;
      for (int64_t ow = 0; ow < OW; ++ow) o[ow] = max_or_nan(o[ow], t[ow * sw]);
    }
  }
}

template <typename T>
FASTCONV_ALWAYS_INLINE void max_pool_values_any(const T* in, T* out, const PoolParams& p, T* row) {
  if (p.stride_w == 2) return max_pool_values<T, 2>(in, out, p, row);
  if (p.stride_w == 1) return max_pool_values<T, 1>(in, out, p, row);
  max_pool_values<T, 0>(in, out, p, row);
}

template <typename T>
using MaxPoolValuesFn = void (*)(const T*, T*, const PoolParams&, T*);
#define FASTCONV_MAX_POOL_VALUES(ISA)                                                                         \
  FASTCONV_TARGET(ISA) void max_pool_values_f32__##ISA(const float* in, float* out, const PoolParams& p,     \
                                                       float* row) {                                        \
    max_pool_values_any<float>(in, out, p, row);                                                                 \
  }                                                                                                          \
  FASTCONV_TARGET(ISA) void max_pool_values_f64__##ISA(const double* in, double* out, const PoolParams& p,  \
                                                       double* row) {                                       \
    max_pool_values_any<double>(in, out, p, row);                                                                \
  }
FASTCONV_FOR_EACH_ISA(FASTCONV_MAX_POOL_VALUES)
#undef FASTCONV_MAX_POOL_VALUES
const KernelTable<MaxPoolValuesFn<float>> kMaxPoolValuesF32("max_pool2d_values", "float32",
                                                           FASTCONV_ISA_VARIANTS(max_pool_values_f32, "max_pool_values_f32"));
const KernelTable<MaxPoolValuesFn<double>> kMaxPoolValuesF64("max_pool2d_values", "float64",
                                                            FASTCONV_ISA_VARIANTS(max_pool_values_f64, "max_pool_values_f64"));
const KernelTable<MaxPoolValuesFn<float>>& max_pool_values_kernels(const float*) { return kMaxPoolValuesF32; }
const KernelTable<MaxPoolValuesFn<double>>& max_pool_values_kernels(const double*) { return kMaxPoolValuesF64; }

bool is_plain_2x2(const PoolParams& p) {
  return p.kh == 2 && p.kw == 2 && p.stride_h == 2 && p.stride_w == 2 && p.pad_h == 0 && p.pad_w == 0 &&
         p.dil_h == 1 && p.dil_w == 1 && 2 * p.OH <= p.H && 2 * p.OW <= p.W;
}
}  // namespace

template <typename T>
void max_pool2d_forward(const T* x, T* y, int64_t* idx, const PoolParams& p) {
  const int64_t HW = p.H * p.W, OHW = p.OH * p.OW;
  if (!idx && p.dil_h == 1 && p.dil_w == 1) {
    const MaxPoolValuesFn<T> pool = max_pool_values_kernels(x).active();
    std::vector<std::vector<T>> rows(max_threads(), std::vector<T>(values_row_length(p)));
    parallel_for(p.N * p.C, [&](int64_t plane) { pool(x + plane * HW, y + plane * OHW, p, rows[thread_id()].data()); });
    return;
  }
  std::vector<int64_t> scratch;  // indices nobody asked for, on the dilated path
  if (!idx) {
    scratch.resize(p.N * p.C * OHW);
    idx = scratch.data();
  }
  if (p.dil_h != 1 || p.dil_w != 1) {
    parallel_for(p.N * p.C, [&](int64_t plane) {
      for (int64_t oh = 0; oh < p.OH; ++oh)
        for (int64_t ow = 0; ow < p.OW; ++ow)
          max_pool_window_at(x + plane * HW, oh, ow, y + plane * OHW + oh * p.OW + ow,
                             idx + plane * OHW + oh * p.OW + ow, p);
    });
    return;
  }
  const MaxPoolPlaneFn<T> pool = is_plain_2x2(p) ? max_pool_2x2_kernels(x).active() : max_pool_window_kernels(x).active();
  parallel_for(p.N * p.C, [&](int64_t plane) { pool(x + plane * HW, y + plane * OHW, idx + plane * OHW, p); });
}

template <typename T>
bool max_pool2d_backward(const T* dy, const int64_t* idx, T* dx, const PoolParams& p) {
  const int64_t HW = p.H * p.W, OHW = p.OH * p.OW;
  std::atomic<bool> ok{true};
  parallel_for(p.N * p.C, [&](int64_t plane) {
    T* g = dx + plane * HW;
    const T* go = dy + plane * OHW;
    const int64_t* ind = idx + plane * OHW;
    for (int64_t i = 0; i < HW; ++i) g[i] = T(0);
    for (int64_t i = 0; i < OHW; ++i) {
      const int64_t j = ind[i];
      if (j < 0 || j >= HW) {
        ok.store(false, std::memory_order_relaxed);
        continue;
      }
      g[j] += go[i];
    }
  });
  return ok.load();
}

template void max_pool2d_forward<float>(const float*, float*, int64_t*, const PoolParams&);
template void max_pool2d_forward<double>(const double*, double*, int64_t*, const PoolParams&);
template bool max_pool2d_backward<float>(const float*, const int64_t*, float*, const PoolParams&);
template bool max_pool2d_backward<double>(const double*, const int64_t*, double*, const PoolParams&);

}  // namespace fastconv
