// Max pooling with indices. One (n, c) plane per work item; windows follow PyTorch exactly:
// the first maximum in row-major order wins and a NaN replaces the running maximum.
#include <atomic>
#include <cmath>
#include <limits>

#include "common/parallel.h"
#include "pool/pool.h"

namespace fastconv {

namespace {
// The VGG/LeNet case, 2x2 windows with stride 2 that all lie inside the input: the same
// comparisons as the general loop, unrolled, without per-window bounds arithmetic.
template <typename T>
void max_pool_2x2(const T* in, T* out, int64_t* ind, const PoolParams& p) {
  for (int64_t oh = 0; oh < p.OH; ++oh) {
    const T* r0 = in + 2 * oh * p.W;
    const T* r1 = r0 + p.W;
    for (int64_t ow = 0; ow < p.OW; ++ow) {
      const int64_t w = 2 * ow, base = 2 * oh * p.W + w;
      T best = r0[w];
      int64_t bi = base;
      if (r0[w + 1] > best || std::isnan(r0[w + 1])) { best = r0[w + 1]; bi = base + 1; }
      if (r1[w] > best || std::isnan(r1[w])) { best = r1[w]; bi = base + p.W; }
      if (r1[w + 1] > best || std::isnan(r1[w + 1])) { best = r1[w + 1]; bi = base + p.W + 1; }
      // the general loop starts from -inf, so a window of -inf keeps index of its first element
      out[oh * p.OW + ow] = best;
      ind[oh * p.OW + ow] = bi;
    }
  }
}

bool is_plain_2x2(const PoolParams& p) {
  return p.kh == 2 && p.kw == 2 && p.stride_h == 2 && p.stride_w == 2 && p.pad_h == 0 && p.pad_w == 0 &&
         p.dil_h == 1 && p.dil_w == 1 && 2 * p.OH <= p.H && 2 * p.OW <= p.W;
}
}  // namespace

template <typename T>
void max_pool2d_forward(const T* x, T* y, int64_t* idx, const PoolParams& p) {
  const int64_t HW = p.H * p.W, OHW = p.OH * p.OW;
  if (is_plain_2x2(p)) {
    parallel_for(p.N * p.C, [&](int64_t plane) { max_pool_2x2(x + plane * HW, y + plane * OHW, idx + plane * OHW, p); });
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
