// Affine warp (bilinear / nearest, three border modes) and exact flips, NCHW or NHWC.
//
// Work is split into (image, block of output rows) tasks. For each output row the source
// taps (element offsets of a pixel) and their weights are computed once and reused for all
// C channels, so the per-channel loop is a plain gather + multiply-add. Taps outside the
// image are remapped (reflect / replicate) or get weight 0 with the missing weight applied
// to the fill value (constant), which keeps one inner loop for every mode.
#include <algorithm>
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

constexpr int64_t kRowsPerTask = 8;

struct RowTaps {
  std::vector<int32_t> o0, o1, o2, o3;
  std::vector<float> w0, w1, w2, w3, wf;
  std::vector<int32_t> q0, q1;  // packed fixed-point weights (uint8 RGB path)
  std::vector<uint8_t> edge;    // bilinear: 1 where the taps were redone with the border rules
  explicit RowTaps(int64_t n)
      : o0(n), o1(n), o2(n), o3(n), w0(n), w1(n), w2(n), w3(n), wf(n), q0(n), q1(n), edge(n) {}
};

// Taps of output row y. `px` = elements per pixel step (1 for NCHW planes, C for NHWC).
// Bilinear: a branch-free sweep computes every pixel as if its 2x2 taps were inside (it
// vectorises), then the few pixels near or past the border are redone with the border rules.
FASTCONV_AUG_INLINE void row_taps(RowTaps& t, int64_t y, int64_t OW, int64_t H, int64_t W, int64_t px,
                                  const double* m, Interp interp, int border) {
  const double bx = m[1] * y + m[2], by = m[4] * y + m[5], m0 = m[0], m3 = m[3];
  if (interp == Interp::nearest) {
    for (int64_t x = 0; x < OW; ++x) {
      const double sx = m0 * x + bx, sy = m3 * x + by;
      // Round half up (floor(s + 0.5)), the convention of cv2 and torch 'nearest'.
      const int64_t ix = border_index(floor_i64(sx + 0.5), W, border);
      const int64_t iy = border_index(floor_i64(sy + 0.5), H, border);
      const bool ok = ix >= 0 && iy >= 0;
      t.o0[x] = ok ? static_cast<int32_t>((iy * W + ix) * px) : 0;
      t.w0[x] = ok ? 1.f : 0.f;
      t.wf[x] = ok ? 0.f : 1.f;
    }
    return;
  }
  int32_t* __restrict o0 = t.o0.data(); int32_t* __restrict o1 = t.o1.data();
  int32_t* __restrict o2 = t.o2.data(); int32_t* __restrict o3 = t.o3.data();
  float* __restrict w0 = t.w0.data(); float* __restrict w1 = t.w1.data();
  float* __restrict w2 = t.w2.data(); float* __restrict w3 = t.w3.data();
  float* __restrict wf = t.wf.data();
  uint8_t* __restrict edge = t.edge.data();
  const int32_t pxi = static_cast<int32_t>(px), rowi = static_cast<int32_t>(W * px);
  // Float coordinates in the sweep (~1e-5 px at 4k px, far below bilinear's own error); the
  // redo below and the nearest path use double.
  const float xmax = static_cast<float>(W - 1), ymax = static_cast<float>(H - 1);
  const float bxf = static_cast<float>(bx), byf = static_cast<float>(by);
  const float m0f = static_cast<float>(m0), m3f = static_cast<float>(m3);
  int32_t outside = 0;
  for (int64_t x = 0; x < OW; ++x) {
    const float xf = static_cast<float>(static_cast<int32_t>(x));
    float sx = m0f * xf + bxf, sy = m3f * xf + byf;
    const bool in = (sx >= 0.f) & (sy >= 0.f) & (sx < xmax) & (sy < ymax);  // & not &&: no branches
    outside += in ? 0 : 1;
    sx = in ? sx : 0.f;  // keep offsets in range; these pixels are redone below
    sy = in ? sy : 0.f;
    const int32_t x0 = static_cast<int32_t>(sx), y0 = static_cast<int32_t>(sy);  // sx, sy >= 0: trunc = floor
    const float fx = sx - static_cast<float>(x0), fy = sy - static_cast<float>(y0);
    const float gx = 1.f - fx, gy = 1.f - fy;
    o0[x] = y0 * rowi + x0 * pxi;
    w0[x] = gx * gy; w1[x] = fx * gy; w2[x] = gx * fy; w3[x] = fx * fy;
  }
  for (int64_t x = 0; x < OW; ++x) {  // split from the sweep above, which then vectorises
    const int32_t o = o0[x];
    o1[x] = o + pxi; o2[x] = o + rowi; o3[x] = o + rowi + pxi;
    wf[x] = 0.f;
  }
  for (int64_t x = 0; x < OW; ++x) {  // (separate again: fewer arrays per loop, fewer alias checks)
    const float xf = static_cast<float>(static_cast<int32_t>(x));
    const float sx = m0f * xf + bxf, sy = m3f * xf + byf;  // the same test as the sweep
    edge[x] = (sx >= 0.f) & (sy >= 0.f) & (sx < xmax) & (sy < ymax) ? 0 : 1;
  }
  if (outside == 0) return;
  for (int64_t x = 0; x < OW; ++x) {
    if (!edge[x]) continue;
    const double sx = m0 * x + bx, sy = m3 * x + by;
    const int64_t x0 = floor_i64(sx), y0 = floor_i64(sy);
    const float fx = static_cast<float>(sx - x0), fy = static_cast<float>(sy - y0);
    const float gx = 1.f - fx, gy = 1.f - fy;
    const int64_t xa = border_index(x0, W, border), xb = border_index(x0 + 1, W, border);
    const int64_t ya = border_index(y0, H, border), yb = border_index(y0 + 1, H, border);
    float missing = 0.f;
    auto tap = [&](int64_t ix, int64_t iy, float w, int32_t& o, float& wo) {
      const bool ok = ix >= 0 && iy >= 0;
      o = ok ? static_cast<int32_t>((iy * W + ix) * px) : 0;
      wo = ok ? w : 0.f;
      missing += ok ? 0.f : w;
    };
    tap(xa, ya, gx * gy, o0[x], w0[x]);
    tap(xb, ya, fx * gy, o1[x], w1[x]);
    tap(xa, yb, gx * fy, o2[x], w2[x]);
    tap(xb, yb, fx * fy, o3[x], w3[x]);
    wf[x] = missing;
  }
}

// One output row of one channel plane (NCHW).
template <typename T>
FASTCONV_AUG_INLINE void warp_row_planar(const T* p, T* out, const RowTaps& t, int64_t OW, Interp interp, float fill) {
  const int32_t *o0 = t.o0.data(), *o1 = t.o1.data(), *o2 = t.o2.data(), *o3 = t.o3.data();
  const float *w0 = t.w0.data(), *w1 = t.w1.data(), *w2 = t.w2.data(), *w3 = t.w3.data(), *wf = t.wf.data();
  if (interp == Interp::nearest) {
    for (int64_t x = 0; x < OW; ++x) out[x] = store<T>(w0[x] * static_cast<float>(p[o0[x]]) + wf[x] * fill);
    return;
  }
  for (int64_t x = 0; x < OW; ++x)
    out[x] = store<T>(w0[x] * static_cast<float>(p[o0[x]]) + w1[x] * static_cast<float>(p[o1[x]]) +
                      w2[x] * static_cast<float>(p[o2[x]]) + w3[x] * static_cast<float>(p[o3[x]]) + wf[x] * fill);
}

// One output row, all channels interleaved (NHWC); CC > 0 fixes the channel count at compile time.
template <typename T, int CC>
FASTCONV_AUG_INLINE void warp_row_interleaved(const T* p, T* out, const RowTaps& t, int64_t OW, int64_t Crt, Interp interp, float fill) {
  const int64_t C = CC > 0 ? CC : Crt;
  if (interp == Interp::nearest) {
    for (int64_t x = 0; x < OW; ++x) {
      const T* s = p + t.o0[x];
      const float w = t.w0[x], f = t.wf[x] * fill;
      for (int64_t c = 0; c < C; ++c) out[x * C + c] = store<T>(w * static_cast<float>(s[c]) + f);
    }
    return;
  }
  for (int64_t x = 0; x < OW; ++x) {
    const T *a = p + t.o0[x], *b = p + t.o1[x], *cc = p + t.o2[x], *d = p + t.o3[x];
    const float w0 = t.w0[x], w1 = t.w1[x], w2 = t.w2[x], w3 = t.w3[x], f = t.wf[x] * fill;
    for (int64_t c = 0; c < C; ++c)
      out[x * C + c] = store<T>(w0 * static_cast<float>(a[c]) + w1 * static_cast<float>(b[c]) +
                                w2 * static_cast<float>(cc[c]) + w3 * static_cast<float>(d[c]) + f);
  }
}

#if defined(FASTCONV_X86) && defined(__GNUC__)
// uint8 RGB (NHWC) bilinear in fixed point: the four weights in Q14 (rounded; they sum to
// 16384 within +-2, an error < 0.05 grey level), the 2x2 taps of a pixel read as two 8-byte
// loads (pixels x0, x0 + 1 of rows y0 and y0 + 1) and combined by two pmaddwd, one per row.
// Pixels whose taps are not that 2x2 block inside the image (border, fill), or whose loads
// would pass the end of the image, take the float formula of warp_row_interleaved.
FASTCONV_AUG_INLINE void warp_row_rgb8(const uint8_t* p, uint8_t* out, const RowTaps& t, int64_t OW, int64_t W,
                                       int64_t total, float fill, int32_t* wtop, int32_t* wbot) {
  const int32_t row = static_cast<int32_t>(3 * W);
  const int32_t *o0 = t.o0.data(), *o1 = t.o1.data(), *o2 = t.o2.data(), *o3 = t.o3.data();
  const float *w0 = t.w0.data(), *w1 = t.w1.data(), *w2 = t.w2.data(), *w3 = t.w3.data(), *wf = t.wf.data();
  const uint8_t* edge = t.edge.data();  // a local: the uint8 stores below may alias anything reached via t
  for (int64_t x = 0; x < OW; ++x) {  // vectorises
    const int32_t q0 = static_cast<int32_t>(w0[x] * 16384.f + 0.5f), q1 = static_cast<int32_t>(w1[x] * 16384.f + 0.5f);
    const int32_t q2 = static_cast<int32_t>(w2[x] * 16384.f + 0.5f), q3 = static_cast<int32_t>(w3[x] * 16384.f + 0.5f);
    wtop[x] = static_cast<int32_t>(static_cast<uint32_t>(q0) | (static_cast<uint32_t>(q1) << 16));
    wbot[x] = static_cast<int32_t>(static_cast<uint32_t>(q2) | (static_cast<uint32_t>(q3) << 16));
  }
  const __m128i z = _mm_setzero_si128(), rnd = _mm_set1_epi32(1 << 13);
  for (int64_t x = 0; x < OW; ++x) {
    const int32_t o = o0[x];
    uint8_t* dst = out + 3 * x;
    if (edge[x] || static_cast<int64_t>(o) + row + 8 > total) {
      const uint8_t *a = p + o, *b = p + o1[x], *cc = p + o2[x], *d = p + o3[x];
      const float f = wf[x] * fill;
      for (int c = 0; c < 3; ++c)
        dst[c] = store<uint8_t>(w0[x] * static_cast<float>(a[c]) + w1[x] * static_cast<float>(b[c]) +
                                w2[x] * static_cast<float>(cc[c]) + w3[x] * static_cast<float>(d[c]) + f);
      continue;
    }
    __m128i top = _mm_unpacklo_epi8(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p + o)), z);
    __m128i bot = _mm_unpacklo_epi8(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p + o + row)), z);
    top = _mm_unpacklo_epi16(top, _mm_srli_si128(top, 6));  // (a_c, b_c) pairs, c = 0..2
    bot = _mm_unpacklo_epi16(bot, _mm_srli_si128(bot, 6));
    __m128i acc = _mm_add_epi32(_mm_madd_epi16(top, _mm_set1_epi32(wtop[x])), _mm_madd_epi16(bot, _mm_set1_epi32(wbot[x])));
    acc = _mm_srai_epi32(_mm_add_epi32(acc, rnd), 14);
    acc = _mm_packs_epi32(acc, acc);
    acc = _mm_packus_epi16(acc, acc);
    const uint32_t v = static_cast<uint32_t>(_mm_cvtsi128_si32(acc));
    if (x + 1 < OW) {
      std::memcpy(dst, &v, 4);  // the 4th byte is rewritten by pixel x + 1
    } else {
      dst[0] = static_cast<uint8_t>(v); dst[1] = static_cast<uint8_t>(v >> 8); dst[2] = static_cast<uint8_t>(v >> 16);
    }
  }
}
#define FASTCONV_WARP_RGB8 1
#endif

// Output rows [y_begin, y_end) of image n.
template <typename T>
FASTCONV_AUG_INLINE void warp_rows(const T* in, T* out, const Image& im, int64_t OH, int64_t OW, int64_t y_begin,
                                   int64_t y_end, const double* m, Interp interp, int border, float fill, RowTaps& taps) {
  const int64_t C = im.C, H = im.H, W = im.W;
  const int64_t px = im.channels_last ? C : 1;
  for (int64_t y = y_begin; y < y_end; ++y) {
    row_taps(taps, y, OW, H, W, px, m, interp, border);
    if (!im.channels_last) {
      for (int64_t c = 0; c < C; ++c)
        warp_row_planar(in + c * H * W, out + (c * OH + y) * OW, taps, OW, interp, fill);
    } else if (C == 3) {
#ifdef FASTCONV_WARP_RGB8
      if (sizeof(T) == 1 && interp == Interp::bilinear) {
        warp_row_rgb8(reinterpret_cast<const uint8_t*>(in), reinterpret_cast<uint8_t*>(out + y * OW * C), taps, OW, W,
                      H * W * C, fill, taps.q0.data(), taps.q1.data());
        continue;
      }
#endif
      warp_row_interleaved<T, 3>(in, out + y * OW * C, taps, OW, C, interp, fill);
    } else if (C == 1) {
      warp_row_interleaved<T, 1>(in, out + y * OW * C, taps, OW, C, interp, fill);
    } else {
      warp_row_interleaved<T, 0>(in, out + y * OW * C, taps, OW, C, interp, fill);
    }
  }
}

#define FASTCONV_WARP_ARGS const Image& im, int64_t OH, int64_t OW, int64_t y0, int64_t y1, const double* m, \
    Interp interp, int border, float fill, RowTaps& taps
#define FASTCONV_WARP_PASS im, OH, OW, y0, y1, m, interp, border, fill, taps
// Rows of one output image, compiled per ISA and chosen by use_isa().
template <typename T>
using WarpRowsFn = void (*)(const T* in, T* out, FASTCONV_WARP_ARGS);
#define FASTCONV_WARP_KERNELS(ISA)                                                                          \
  FASTCONV_TARGET(ISA) void warp_f32__##ISA(const float* in, float* out, FASTCONV_WARP_ARGS) {              \
    warp_rows<float>(in, out, FASTCONV_WARP_PASS);                                                         \
  }                                                                                                        \
  FASTCONV_TARGET(ISA) void warp_u8__##ISA(const uint8_t* in, uint8_t* out, FASTCONV_WARP_ARGS) {           \
    warp_rows<uint8_t>(in, out, FASTCONV_WARP_PASS);                                                       \
  }
FASTCONV_FOR_EACH_ISA(FASTCONV_WARP_KERNELS)
#undef FASTCONV_WARP_KERNELS
const KernelTable<WarpRowsFn<float>> kWarpF32("warp_affine", "float32", FASTCONV_ISA_VARIANTS(warp_f32, "warp_affine_f32"));
const KernelTable<WarpRowsFn<uint8_t>> kWarpU8("warp_affine", "uint8", FASTCONV_ISA_VARIANTS(warp_u8, "warp_affine_u8"));
const KernelTable<WarpRowsFn<float>>& warp_kernels(const float*) { return kWarpF32; }
const KernelTable<WarpRowsFn<uint8_t>>& warp_kernels(const uint8_t*) { return kWarpU8; }

}  // namespace

template <typename T>
void warp_affine(const T* src, T* dst, Image im, int64_t OH, int64_t OW, const double* inv,
                 Interp interp, Border border, float fill) {
  const int64_t C = im.C, H = im.H, W = im.W;
  const int64_t blocks = (OH + kRowsPerTask - 1) / kRowsPerTask;
  const WarpRowsFn<T> warp_rows_isa = warp_kernels(src).active();
  parallel_for(im.N * blocks, [&](int64_t task) {
    const int64_t n = task / blocks, y_begin = (task % blocks) * kRowsPerTask;
    const int64_t y_end = std::min(OH, y_begin + kRowsPerTask);
    RowTaps taps(OW);
    warp_rows_isa(src + n * C * H * W, dst + n * C * OH * OW, im, OH, OW, y_begin, y_end, inv + 6 * n, interp,
                  static_cast<int>(border), fill, taps);
  });
}

namespace {
struct Rgb8 { uint8_t v[3]; };

// o = row with its W RGB pixels in reverse order. Five pixels per step: a 16-byte load that
// starts one byte before them, a byte shuffle (pshufb where the clone has SSSE3) and a 16-byte
// store whose last byte the next step rewrites; the ends are copied pixel by pixel.
typedef uint8_t V16u8 __attribute__((vector_size(16)));
FASTCONV_AUG_INLINE void reverse_rgb8(const uint8_t* row, uint8_t* o, int64_t W) {
  const V16u8 mask = {13, 14, 15, 10, 11, 12, 7, 8, 9, 4, 5, 6, 1, 2, 3, 0};
  int64_t x = 0;
  // Needs the load start (W - 6 - x) * 3 + 2 >= 0 and the store end 3 * x + 16 <= 3 * W.
  for (; x + 6 <= W; x += 5) {
    V16u8 v;
    std::memcpy(&v, row + (W - 5 - x) * 3 - 1, 16);
    v = __builtin_shuffle(v, mask);
    std::memcpy(o + 3 * x, &v, 16);
  }
  const Rgb8* r = reinterpret_cast<const Rgb8*>(row);
  Rgb8* w = reinterpret_cast<Rgb8*>(o);
  for (; x < W; ++x) w[x] = r[W - 1 - x];
}
using ReverseRgb8Fn = void (*)(const uint8_t* row, uint8_t* o, int64_t W);
#define FASTCONV_FLIP_KERNELS(ISA) \
  FASTCONV_TARGET(ISA) void flip_rgb8__##ISA(const uint8_t* row, uint8_t* o, int64_t W) { reverse_rgb8(row, o, W); }
FASTCONV_FOR_EACH_ISA(FASTCONV_FLIP_KERNELS)
#undef FASTCONV_FLIP_KERNELS
const KernelTable<ReverseRgb8Fn> kFlipRgb8("flip", "uint8", FASTCONV_ISA_VARIANTS(flip_rgb8, "flip_rgb8"));
}  // namespace

template <typename T>
void flip(const T* src, T* dst, Image im, const uint8_t* hflip, const uint8_t* vflip) {
  // Tasks are (image, channel) planes for NCHW and images for NHWC; a row is reversed
  // pixel by pixel (3-byte RGB pixels move as one unit) or copied whole.
  const int64_t planes = im.channels_last ? im.N : im.N * im.C;
  const int64_t P = im.channels_last ? im.C : 1;  // elements per pixel
  const int64_t H = im.H, W = im.W;
  const ReverseRgb8Fn reverse_rgb8_isa = kFlipRgb8.active();
  parallel_for(planes, [&](int64_t pi) {
    const int64_t n = im.channels_last ? pi : pi / im.C;
    const T* in = src + pi * H * W * P;
    T* out = dst + pi * H * W * P;
    for (int64_t y = 0; y < H; ++y) {
      const T* row = in + (vflip[n] ? H - 1 - y : y) * W * P;
      T* o = out + y * W * P;
      if (!hflip[n]) {
        std::memcpy(o, row, sizeof(T) * W * P);
      } else if (P == 1) {
        for (int64_t x = 0; x < W; ++x) o[x] = row[W - 1 - x];
      } else if (P == 3 && sizeof(T) == 1) {
        reverse_rgb8_isa(reinterpret_cast<const uint8_t*>(row), reinterpret_cast<uint8_t*>(o), W);
      } else {
        for (int64_t x = 0; x < W; ++x)
          for (int64_t c = 0; c < P; ++c) o[x * P + c] = row[(W - 1 - x) * P + c];
      }
    }
  });
}

template void warp_affine<float>(const float*, float*, Image, int64_t, int64_t, const double*, Interp, Border, float);
template void warp_affine<uint8_t>(const uint8_t*, uint8_t*, Image, int64_t, int64_t, const double*, Interp, Border, float);
template void flip<float>(const float*, float*, Image, const uint8_t*, const uint8_t*);
template void flip<uint8_t>(const uint8_t*, uint8_t*, Image, const uint8_t*, const uint8_t*);

}  // namespace augment
}  // namespace fastconv
