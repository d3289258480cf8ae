// Polyphase decomposition of strided convolutions (see polyphase.h): split the input and the
// kernel into phases, run the stride-1 direct paths on them, map gradients back.
#include "conv/strided/polyphase.h"

#include <algorithm>

#include "common/parallel.h"
#include "common/workspace.h"
#include "conv/direct/direct.h"
#include "conv/winograd/winograd.h"
#include "conv/winograd/winograd_weight_grad.h"

namespace fastconv {
namespace {

// xs (the phase images, q's input) from x: one (image, channel, phase) plane per item.
template <typename T>
void split_input(const T* x, const ConvParams& p, const ConvParams& q, T* xs) {
  const int64_t sh = p.stride_h, sw = p.stride_w;
  parallel_for(q.N * q.C, [&](int64_t plane) {
    const int64_t b = plane % sw, a = (plane / sw) % sh, nc = plane / (sh * sw);
    const T* src = x + nc * p.H * p.W;
    T* dst = xs + plane * q.H * q.W;
    for (int64_t i = 0; i < q.H; ++i, dst += q.W) {
      const int64_t h = i * sh + a - p.pad_h;
      if (h < 0 || h >= p.H) {
        std::fill(dst, dst + q.W, T(0));
        continue;
      }
      const T* row = src + h * p.W;
      for (int64_t j = 0; j < q.W; ++j) {
        const int64_t w = j * sw + b - p.pad_w;
        dst[j] = w >= 0 && w < p.W ? row[w] : T(0);
      }
    }
  });
}

// dx from the phase problem's input gradient dxs: every input pixel is read by exactly one
// phase pixel, or (past the last window) by none, when its gradient is 0.
template <typename T>
void merge_input(const T* dxs, const ConvParams& p, const ConvParams& q, T* dx) {
  const int64_t sh = p.stride_h, sw = p.stride_w;
  parallel_for(p.N * p.C, [&](int64_t nc) {
    T* dst = dx + nc * p.H * p.W;
    for (int64_t h = 0; h < p.H; ++h) {
      const int64_t a = (h + p.pad_h) % sh, i = (h + p.pad_h) / sh;
      for (int64_t w = 0; w < p.W; ++w) {
        const int64_t b = (w + p.pad_w) % sw, j = (w + p.pad_w) / sw;
        dst[h * p.W + w] = i < q.H && j < q.W ? dxs[((nc * sh + a) * sw + b) * q.H * q.W + i * q.W + j] : T(0);
      }
    }
  });
}

// Calls f(phase kernel index, kernel index or -1 for a tap past R or S) over every phase tap.
template <typename F>
void for_phase_taps(const ConvParams& p, const ConvParams& q, F&& f) {
  const int64_t sh = p.stride_h, sw = p.stride_w;
  for (int64_t k = 0; k < p.K; ++k)
    for (int64_t cp = 0; cp < q.Cg(); ++cp) {
      const int64_t b = cp % sw, a = (cp / sw) % sh, c = cp / (sh * sw);
      for (int64_t i = 0; i < q.R; ++i)
        for (int64_t j = 0; j < q.S; ++j) {
          const int64_t r = i * sh + a, s = j * sw + b;
          f(((k * q.Cg() + cp) * q.R + i) * q.S + j, r < p.R && s < p.S ? ((k * p.Cg() + c) * p.R + r) * p.S + s : -1);
        }
    }
}

}  // namespace

ConvParams polyphase_params(const ConvParams& p) {
  ConvParams q = p;
  q.C = p.C * p.stride_h * p.stride_w;
  q.R = ceil_div(p.R, p.stride_h);
  q.S = ceil_div(p.S, p.stride_w);
  q.H = p.OH + q.R - 1;
  q.W = p.OW + q.S - 1;
  q.stride_h = q.stride_w = q.dil_h = q.dil_w = 1;
  q.pad_h = q.pad_w = 0;
  return q;
}

bool polyphase_pays(const ConvParams& p) {
  if (p.stride_h == 1 && p.stride_w == 1) return false;
  if (p.dil_h != 1 || p.dil_w != 1 || p.R < p.stride_h || p.S < p.stride_w) return false;
  const ConvParams q = polyphase_params(p);
  return q.patch() * 100 <= p.patch() * 135;  // zero taps: 7x7/2 +31%, 11x11/4 +19%, 3x3/2 +78%
}

template <typename T>
void conv2d_polyphase_forward(const T* x, const T* w, const T* bias, T* y, const ConvParams& p, int winograd_tile) {
  const ConvParams q = polyphase_params(p);
  AlignedBuffer<T> xs(q.N * q.C * q.H * q.W), ws(q.K * q.patch());
  split_input(x, p, q, xs.data());
  for_phase_taps(p, q, [&](int64_t to, int64_t from) { ws.data()[to] = from >= 0 ? w[from] : T(0); });
  if (winograd_tile) conv2d_winograd_forward(xs.data(), ws.data(), static_cast<const T*>(nullptr), WinoPackInfo{}, bias, y, q,
                                             winograd_tile, false);
  else conv2d_direct_forward(xs.data(), ws.data(), bias, y, q);
}

template <typename T>
void conv2d_polyphase_input_grad(const T* dy, const T* w, T* dx, const ConvParams& p, int winograd_tile) {
  const ConvParams q = polyphase_params(p);
  AlignedBuffer<T> dxs(q.N * q.C * q.H * q.W), ws(q.K * q.patch());
  for_phase_taps(p, q, [&](int64_t to, int64_t from) { ws.data()[to] = from >= 0 ? w[from] : T(0); });
  if (winograd_tile) conv2d_winograd_input_grad(dy, ws.data(), dxs.data(), q, winograd_tile);
  else conv2d_direct_input_grad(dy, ws.data(), dxs.data(), q);
  merge_input(dxs.data(), p, q, dx);
}

template <typename T>
void conv2d_polyphase_weight_grad(const T* x, const T* dy, T* dw, const ConvParams& p, int winograd_tile) {
  const ConvParams q = polyphase_params(p);
  AlignedBuffer<T> xs(q.N * q.C * q.H * q.W), dws(q.K * q.patch());
  split_input(x, p, q, xs.data());
  if (winograd_tile) conv2d_winograd_weight_grad(xs.data(), dy, dws.data(), q, winograd_tile);
  else conv2d_direct_weight_grad(xs.data(), dy, dws.data(), q);
  for_phase_taps(p, q, [&](int64_t from, int64_t to) {
    if (to >= 0) dw[to] = dws.data()[from];
  });
}

template void conv2d_polyphase_forward<float>(const float*, const float*, const float*, float*, const ConvParams&, int);
template void conv2d_polyphase_forward<double>(const double*, const double*, const double*, double*, const ConvParams&, int);
template void conv2d_polyphase_input_grad<float>(const float*, const float*, float*, const ConvParams&, int);
template void conv2d_polyphase_input_grad<double>(const double*, const double*, double*, const ConvParams&, int);
template void conv2d_polyphase_weight_grad<float>(const float*, const float*, float*, const ConvParams&, int);
template void conv2d_polyphase_weight_grad<double>(const double*, const double*, double*, const ConvParams&, int);

}  // namespace fastconv
