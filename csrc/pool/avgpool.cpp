// Average pooling. The window and divisor rules follow PyTorch: the window is clipped to
// the padded input for count_include_pad, to the real input otherwise; divisor_override
// replaces both.
#include <algorithm>

#include "common/parallel.h"
#include "pool/pool.h"

namespace fastconv {
namespace {

struct Window {
  int64_t h0, h1, w0, w1;  // clipped to the input
  int64_t divisor;         // 0: empty window (output 0)
};

inline Window window(const PoolParams& p, AvgPoolOptions o, int64_t oh, int64_t ow) {
  int64_t h0 = oh * p.stride_h - p.pad_h, w0 = ow * p.stride_w - p.pad_w;
  int64_t h1 = std::min(h0 + p.kh, p.H + p.pad_h), w1 = std::min(w0 + p.kw, p.W + p.pad_w);
  const int64_t pool_size = (h1 - h0) * (w1 - w0);
  h0 = std::max<int64_t>(h0, 0);
  w0 = std::max<int64_t>(w0, 0);
  h1 = std::min(h1, p.H);
  w1 = std::min(w1, p.W);
  if (h0 >= h1 || w0 >= w1) return {h0, h1, w0, w1, 0};
  int64_t d = o.divisor_override ? o.divisor_override
                                 : (o.count_include_pad ? pool_size : (h1 - h0) * (w1 - w0));
  return {h0, h1, w0, w1, d};
}

// 2x2 windows with stride 2 inside the input: every divisor is 4 (or the override).
inline bool is_plain_2x2(const PoolParams& p) {
  return p.kh == 2 && p.kw == 2 && p.stride_h == 2 && p.stride_w == 2 && p.pad_h == 0 && p.pad_w == 0 &&
         2 * p.OH <= p.H && 2 * p.OW <= p.W;
}

}  // namespace

template <typename T>
void avg_pool2d_forward(const T* x, T* y, const PoolParams& p, AvgPoolOptions o) {
  const int64_t HW = p.H * p.W, OHW = p.OH * p.OW;
  if (is_plain_2x2(p)) {
    const T div = T(o.divisor_override ? o.divisor_override : 4);
    parallel_for(p.N * p.C, [&](int64_t plane) {
      const T* in = x + plane * HW;
      T* out = y + plane * OHW;
      for (int64_t oh = 0; oh < p.OH; ++oh) {
        const T* r0 = in + 2 * oh * p.W;
        const T* r1 = r0 + p.W;
        for (int64_t ow = 0; ow < p.OW; ++ow)
          out[oh * p.OW + ow] = (((r0[2 * ow] + r0[2 * ow + 1]) + r1[2 * ow]) + r1[2 * ow + 1]) / div;
      }
    });
    return;
  }
  parallel_for(p.N * p.C, [&](int64_t plane) {
    const T* in = x + plane * HW;
    T* out = y + plane * OHW;
    for (int64_t oh = 0; oh < p.OH; ++oh)
      for (int64_t ow = 0; ow < p.OW; ++ow) {
        const Window win = window(p, o, oh, ow);
        if (win.divisor == 0) {
          out[oh * p.OW + ow] = T(0);
          continue;
        }
        T s = T(0);
        for (int64_t h = win.h0; h < win.h1; ++h)
          for (int64_t w = win.w0; w < win.w1; ++w) s += in[h * p.W + w];
        out[oh * p.OW + ow] = s / T(win.divisor);
      }
  });
}

template <typename T>
void avg_pool2d_backward(const T* dy, T* dx, const PoolParams& p, AvgPoolOptions o) {
  const int64_t HW = p.H * p.W, OHW = p.OH * p.OW;
  if (is_plain_2x2(p)) {
    const T div = T(o.divisor_override ? o.divisor_override : 4);
    parallel_for(p.N * p.C, [&](int64_t plane) {
      T* g = dx + plane * HW;
      const T* go = dy + plane * OHW;
      if (2 * p.OH != p.H || 2 * p.OW != p.W) std::fill(g, g + HW, T(0));  // rows/cols no window covers
      for (int64_t oh = 0; oh < p.OH; ++oh) {
        T* r0 = g + 2 * oh * p.W;
        T* r1 = r0 + p.W;
        for (int64_t ow = 0; ow < p.OW; ++ow) {
          const T v = go[oh * p.OW + ow] / div;
          r0[2 * ow] = r0[2 * ow + 1] = r1[2 * ow] = r1[2 * ow + 1] = v;
        }
      }
    });
    return;
  }
  parallel_for(p.N * p.C, [&](int64_t plane) {
    T* g = dx + plane * HW;
    const T* go = dy + plane * OHW;
    std::fill(g, g + HW, T(0));
    for (int64_t oh = 0; oh < p.OH; ++oh)
      for (int64_t ow = 0; ow < p.OW; ++ow) {
        const Window win = window(p, o, oh, ow);
        if (win.divisor == 0) continue;
        const T v = go[oh * p.OW + ow] / T(win.divisor);
        for (int64_t h = win.h0; h < win.h1; ++h)
          for (int64_t w = win.w0; w < win.w1; ++w) g[h * p.W + w] += v;
      }
  });
}

template void avg_pool2d_forward<float>(const float*, float*, const PoolParams&, AvgPoolOptions);
template void avg_pool2d_forward<double>(const double*, double*, const PoolParams&, AvgPoolOptions);
template void avg_pool2d_backward<float>(const float*, float*, const PoolParams&, AvgPoolOptions);
template void avg_pool2d_backward<double>(const double*, double*, const PoolParams&, AvgPoolOptions);

}  // namespace fastconv
