// Max pooling with indices. One (n, c) plane per work item; windows follow PyTorch exactly:
// the first maximum in row-major order wins and a NaN replaces the running maximum.
#include <atomic>
#include <cmath>
#include <limits>

#include "common/isa_target.h"
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

template <typename T>
using MaxPool2x2Fn = void (*)(const T*, T*, int64_t*, const PoolParams&);
#define FASTCONV_MAX_POOL_2X2(ISA)                                                                                  \
  FASTCONV_TARGET(ISA) void max_pool_2x2_f32__##ISA(const float* in, float* out, int64_t* ind, const PoolParams& p) { \
    max_pool_2x2<float>(in, out, ind, p);                                                                          \
  }                                                                                                                 \
  FASTCONV_TARGET(ISA) void max_pool_2x2_f64__##ISA(const double* in, double* out, int64_t* ind,                    \
                                                    const PoolParams& p) {                                         \
    max_pool_2x2<double>(in, out, ind, p);                                                                         \
  }
FASTCONV_FOR_EACH_ISA(FASTCONV_MAX_POOL_2X2)
#undef FASTCONV_MAX_POOL_2X2
const KernelTable<MaxPool2x2Fn<float>> kMaxPool2x2F32("max_pool2d", "float32",
                                                       FASTCONV_ISA_VARIANTS(max_pool_2x2_f32, "max_pool_2x2_f32"));
const KernelTable<MaxPool2x2Fn<double>> kMaxPool2x2F64("max_pool2d", "float64",
                                                        FASTCONV_ISA_VARIANTS(max_pool_2x2_f64, "max_pool_2x2_f64"));
const KernelTable<MaxPool2x2Fn<float>>& max_pool_2x2_kernels(const float*) { return kMaxPool2x2F32; }
const KernelTable<MaxPool2x2Fn<double>>& max_pool_2x2_kernels(const double*) { return kMaxPool2x2F64; }

bool is_plain_2x2(const PoolParams& p) {
  return p.kh == 2 && p.kw == 2 && p.stride_h == 2 && p.stride_w == 2 && p.pad_h == 0 && p.pad_w == 0 &&
         p.dil_h == 1 && p.dil_w == 1 && 2 * p.OH <= p.H && 2 * p.OW <= p.W;
}
}  // namespace

template <typename T>
void max_pool2d_forward(const T* x, T* y, int64_t* idx, const PoolParams& p) {
  const int64_t HW = p.H * p.W, OHW = p.OH * p.OW;
  if (is_plain_2x2(p)) {
    const MaxPool2x2Fn<T> pool = max_pool_2x2_kernels(x).active();
    parallel_for(p.N * p.C, [&](int64_t plane) { pool(x + plane * HW, y + plane * OHW, idx + plane * OHW, p); });
    return;
  }
  parallel_for(p.N * p.C, [&](int64_t plane) {
    const T* in = x + plane * HW;
    T* out = y + plane * OHW;
    int64_t* ind = idx + plane * OHW;
    for (int64_t oh = 0; oh < p.OH; ++oh) {
      int64_t h0 = oh * p.stride_h - p.pad_h;
      const int64_t h1 = std::min<int64_t>(h0 + (p.kh - 1) * p.dil_h + 1, p.H);
      while (h0 < 0) h0 += p.dil_h;
      for (int64_t ow = 0; ow < p.OW; ++ow) {
        int64_t w0 = ow * p.stride_w - p.pad_w;
        const int64_t w1 = std::min<int64_t>(w0 + (p.kw - 1) * p.dil_w + 1, p.W);
        while (w0 < 0) w0 += p.dil_w;
        int64_t best_i = h0 * p.W + w0;
        T best = -std::numeric_limits<T>::infinity();
        for (int64_t h = h0; h < h1; h += p.dil_h)
          for (int64_t w = w0; w < w1; w += p.dil_w) {
            const T v = in[h * p.W + w];
            if (v > best || std::isnan(v)) {
              best = v;
              best_i = h * p.W + w;
            }
          }
        out[oh * p.OW + ow] = best;
        ind[oh * p.OW + ow] = best_i;
      }
    }
  });
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
