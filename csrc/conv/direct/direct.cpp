// Direct convolution as implicit GEMM: per image and group,
//   y[Kg x P] = W[Kg x Cg*R*S] * im2col(x)[Cg*R*S x P]          (P = OH*OW output pixels)
// where the im2col matrix only ever exists as the packed B panels the micro-kernel reads.
// The gradients reuse the same GEMM core:
//   dx: stride 1 -> a forward conv of dy with the flipped, transposed kernel;
//       otherwise col = W^T * dy, scattered back with col2im (blocked, never whole).
//   dw[Kg x Cg*R*S] = sum_n dy[Kg x P] * im2col(x)^T[P x Cg*R*S]
// Threads split images x groups x pixel blocks, then output-channel blocks when that is
// not enough work, so batch 1 also keeps every core busy.
#include "conv/direct/direct.h"

#include <algorithm>
#include <string>
#include <type_traits>
#include <vector>

#include "common/cpu.h"
#include "common/gemm.h"
#include "common/parallel.h"
#include "common/workspace.h"
#include "conv/depthwise/depthwise.h"
#include "conv/depthwise/depthwise_dense.h"
#include "conv/direct/direct_pack.h"
#include "conv/direct/im2col.h"
#include "conv/pointwise/pointwise.h"
#include "conv/pointwise/pointwise_kernels.h"
#include "conv/strided/polyphase.h"
#include "conv/weight_grad_split.h"

namespace fastconv {
namespace {

// Packs a strided A (rows x cols, A(i,k) = a[i*rs + k*cs]) as the driver expects: for each
// kc-slice of the reduction dimension, all row panels. Slice pc starts at pc * round_up(rows, mr).
template <typename T>
void pack_a_all(const T* a, int64_t rs, int64_t cs, int64_t rows, int64_t cols, int mr, int kc_max,
                T* dst) {
  const int64_t mpad = round_up(rows, mr), kcb = slice_kc(cols, kc_max);
  for (int64_t pc = 0; pc < cols; pc += kcb) {
    const int64_t kc = std::min<int64_t>(kcb, cols - pc);
    pack_a_strided(a, rs, cs, 0, rows, pc, kc, mr, dst + pc * mpad);
  }
}

// Packs im2col rows [k0, k0+kc) x pixels [j0, j0+nc) of one group's input into NR panels.
template <typename T>
void pack_im2col(const T* xg, const ConvParams& p, int64_t k0, int64_t kc, int64_t j0,
                 int64_t nc, int nr, T* dst) {
  const int64_t RS = p.R * p.S, HW = p.H * p.W;
  for (int64_t k = 0; k < kc; ++k) {
    const int64_t kk = k0 + k, c = kk / RS, r = (kk / p.S) % p.R, s = kk % p.S;
    const T* plane = xg + c * HW;
    for (int64_t jp = 0; jp < nc; jp += nr) {
      const int64_t cnt = std::min<int64_t>(nr, nc - jp);
      T* d = dst + (jp / nr) * kc * nr + k * nr;
      im2col_row(plane, p, r, s, j0 + jp, cnt, d, 1);
      for (int64_t t = cnt; t < nr; ++t) d[t] = T(0);
    }
  }
}

// Splits the pixel range into blocks so that (outer items x blocks) gives each thread work.
int64_t pixel_block(int64_t P, int64_t outer_items, int64_t nc, int nr, int threads) {
  int64_t block = std::min<int64_t>(P, nc);
  const int64_t want = 2 * threads;
  if (outer_items * ceil_div(P, block) < want) {
    const int64_t per = ceil_div(want, outer_items);
    block = std::max<int64_t>(4 * nr, round_up(ceil_div(P, per), nr));
    block = std::min<int64_t>(block, P);
  }
  return block;
}

}  // namespace

template <typename T>
DirectPath direct_path(const ConvParams& p, DirectPass pass) {
  const Isa isa = active_isa();
  const bool stride1 = p.stride_h == 1 && p.stride_w == 1;
  if (!(p.Cg() == 1 && p.groups > 1)) {  // depthwise keeps its own kernels
    if (pointwise_applies(p)) return DirectPath::pointwise;
    // The forward of a strided conv reads the phase images with R*S taps (phase_shifted), so
    // polyphase's zero taps only pay off where a pass has no phase-image path (the gradients),
    // or where its 3x3 phase kernels run as Winograd F(4,3): fastconv/_cpu.py's auto takes
    // conv2d_polyphase_winograd for every pass where this names polyphase for the forward
    // (AlexNet's 11x11 stride 4: 2.2x over direct on the phases).
    if (polyphase_pays(p) && (pass != DirectPass::forward || (ceil_div(p.R, p.stride_h) == 3 &&
                                                              ceil_div(p.S, p.stride_w) == 3)))
      return DirectPath::polyphase;
  }
  // Stride 1 or 2, padding 1, 3x3, one channel per group: the dense depthwise path, every pass.
  if (depthwise_dense_fits(p)) return DirectPath::depthwise_dense;
  switch (pass) {
    case DirectPass::forward: {
      if (depthwise_forward_fits(p)) return DirectPath::depthwise;
      const MicroKernel<T> uk = micro_kernel<T>(isa, p.Kg());
      if (!stride1) {
        // Small strided maps (ResNet's 14x14 and 28x28 stride-2 inputs: 49 and 196 pixels) run
        // the batched GEMM over real pixels, with pixels as rows where that pads less; larger
        // ones read the phase images in place unless their virtual columns (Wq per OW) waste
        // much more than im2col's rounding of the pixels.
        const int64_t P = p.out_pixels();
        if (P <= 256 && batched_applies(p, uk.nr, sizeof(T))) {
          // Pixels as rows take the tile that pads them least (49 pixels: 8x48, 56 rows).
          const MicroKernel<T> ukr = micro_kernel<T>(isa, p.N * P);
          const double rows = double(round_up(p.N * P, ukr.mr)) * round_up(p.Kg(), ukr.nr);
          const double cols = double(round_up(p.N * P, uk.nr)) * round_up(p.Kg(), uk.mr);
          return rows < 0.95 * cols ? DirectPath::batched_pixel_rows : DirectPath::batched;
        }
        const double waste = double(round_up(p.OH * shifted_row_width(p), uk.nr)) / double(round_up(P, uk.nr));
        return waste <= 1.25 ? DirectPath::phase_shifted : DirectPath::im2col;
      }
      if (!batched_direct_pays(p, uk.nr, sizeof(T), false)) return DirectPath::shifted;
      // Each orientation with the tile it would run (pixels as rows: 49 -> 54 rows of 6x64 at
      // 7x7, where columns of 32 pad 49 to 64).
      const MicroKernel<T> ukr = batched_pixel_rows_kernel<T>(p);
      const int64_t NQ = p.N * p.out_pixels();
      const double rows = double(round_up(NQ, ukr.mr)) * round_up(p.Kg(), ukr.nr);
      const double cols = double(round_up(NQ, uk.nr)) * round_up(p.Kg(), uk.mr);
      return rows < 0.9 * cols ? DirectPath::batched_pixel_rows : DirectPath::batched;
    }
    case DirectPass::input_grad: {
      if (depthwise_input_grad_fits(p)) return DirectPath::depthwise;
      // Stride 1 becomes a forward conv with C output channels; with very few input channels
      // (an RGB first layer) most of each MR-row micro-tile would be padding, so the GEMM +
      // col2im path (Cg*R*S rows) is used instead.
      const int min_rows = micro_kernel<T>(isa).mr / 2;
      if (!(stride1 && p.pad_h <= p.dil_h * (p.R - 1) && p.pad_w <= p.dil_w * (p.S - 1) &&
            (p.Cg() >= min_rows || p.groups > 1)))
        return DirectPath::im2col;
      const ConvParams q = adjoint_params(p);
      if (!batched_direct_pays(q, micro_kernel<T>(isa, q.Kg()).nr, sizeof(T), true)) return DirectPath::shifted;
      return pixel_rows_pay(q, micro_kernel<T>(isa).mr, micro_kernel<T>(isa).nr) ? DirectPath::batched_pixel_rows
                                                                                : DirectPath::batched;
    }
    case DirectPass::weight_grad:
      if (depthwise_forward_fits(p)) return DirectPath::depthwise;
      if (!stride1) return DirectPath::im2col;
      return batched_weight_grad_pays(p, micro_kernel<T>(isa, p.Kg()).nr, sizeof(T)) ? DirectPath::batched
                                                                                    : DirectPath::shifted;
  }
  return DirectPath::im2col;
}

const char* direct_path_name(DirectPath path) {
  switch (path) {
    case DirectPath::depthwise: return "depthwise";
    case DirectPath::depthwise_dense: return "depthwise_dense";
    case DirectPath::im2col: return "im2col";
    case DirectPath::shifted: return "shifted";
    case DirectPath::batched: return "batched";
    case DirectPath::batched_pixel_rows: return "batched_pixel_rows";
    case DirectPath::pointwise: return "pointwise";
    case DirectPath::polyphase: return "polyphase";
    case DirectPath::phase_shifted: return "phase_shifted";
  }
  return "?";
}

template <typename T>
ForwardWeightLayout forward_weight_layout(const ConvParams& p, bool bias) {
  ForwardWeightLayout layout;
  const Isa isa = active_isa();
  const MicroKernel<T> uk = micro_kernel<T>(isa, p.Kg());
  int width = uk.mr;  // GEMM row panels, as gemm_driver and the batched GEMM read them
  int64_t kc_max = uk.kc;
  std::string name = std::string("panels/") + uk.name;
  switch (direct_path<T>(p, DirectPass::forward)) {
    case DirectPath::depthwise:
    case DirectPath::depthwise_dense:
    case DirectPath::polyphase: return layout;
    case DirectPath::pointwise:
      if (std::is_same_v<T, float> &&
          std::string(pointwise_variant(p, PointwisePass::forward, true, bias)) == "small_maps") {
        layout.kind = ForwardPacking::pointwise_small;
        layout.size = pointwise_small_packed_size(p);
        layout.name = std::string("pointwise_small/") + pointwise_tile_kernel_name(isa);
        return layout;
      }
      break;
    case DirectPath::batched_pixel_rows: {  // W^T as the B operand: panels NR wide
      const MicroKernel<T> ukr = batched_pixel_rows_kernel<T>(p);
      width = ukr.nr;
      kc_max = ukr.kc;
      name = std::string("pixel_panels/") + ukr.name;
      break;
    }
    case DirectPath::batched:
    case DirectPath::shifted:
    case DirectPath::phase_shifted:
    case DirectPath::im2col: break;
  }
  layout.kind = ForwardPacking::panels;
  layout.width = width;
  layout.kc_max = kc_max;
  layout.size = p.groups * round_up(p.Kg(), width) * p.patch();
  layout.name = name;
  return layout;
}

template <typename T>
void pack_conv_forward_weights(const T* w, const ConvParams& p, const ForwardWeightLayout& layout, T* dst) {
  if constexpr (std::is_same_v<T, float>)
    if (layout.kind == ForwardPacking::pointwise_small) return pack_pointwise_small_weights(w, p, dst);
  if (layout.kind == ForwardPacking::panels) pack_weight_panels_all(w, p, layout.width, layout.kc_max, dst);
}

template <typename T>
void conv2d_direct_forward(const T* x, const T* w, const T* bias, T* y, const ConvParams& p,
                           const OutputEpilogue<T>* ep, const T* prepacked) {
  const DirectPath path = direct_path<T>(p, DirectPass::forward);
  if (path == DirectPath::pointwise) return conv2d_pointwise_forward(x, w, bias, y, p, ep, prepacked);
  if (path == DirectPath::depthwise_dense) return depthwise_dense_forward(x, w, bias, y, p, ep);
  if (path == DirectPath::shifted || path == DirectPath::phase_shifted)
    return conv2d_shifted_forward(x, w, bias, y, p, prepacked, ep);
  if (ep) {  // the other families: the conv, then the epilogue as a pass of its own
    conv2d_direct_forward(x, w, bias, y, p, static_cast<const OutputEpilogue<T>*>(nullptr), prepacked);
    return epilogue_in_place(*ep, static_cast<const T*>(nullptr), p.N, p.K, p.out_pixels());
  }
  switch (path) {
    case DirectPath::depthwise: return depthwise_forward(x, w, bias, y, p);
    case DirectPath::depthwise_dense: break;  // (taken above)
    case DirectPath::batched: return conv2d_batched_forward(x, w, bias, y, p, false, prepacked);
    case DirectPath::batched_pixel_rows: return conv2d_batched_forward(x, w, bias, y, p, true, prepacked);
    case DirectPath::shifted:
    case DirectPath::phase_shifted: break;  // (taken above)
    case DirectPath::pointwise: break;  // (taken above)
    case DirectPath::polyphase: return conv2d_polyphase_forward(x, w, bias, y, p);
    case DirectPath::im2col: break;
  }
  const MicroKernel<T> uk = micro_kernel<T>(active_isa(), p.Kg());
  const int mr = uk.mr, nr = uk.nr;
  const int64_t G = p.groups, Kg = p.Kg(), KK = p.patch(), P = p.out_pixels();
  const int64_t mpad = round_up(Kg, mr);

  AlignedBuffer<T> wpack;
  if (!prepacked) {
    wpack.resize(G * mpad * KK);
    pack_weight_panels_all(w, p, mr, uk.kc, wpack.data());
  }
  const T* weights = prepacked ? prepacked : wpack.data();

  const int threads = max_threads();
  const int64_t pb = pixel_block(P, p.N * G, uk.nc, nr, threads);
  const int64_t nblocks = ceil_div(P, pb);
  const int64_t mstep = output_channel_step(p.N * G * nblocks, Kg, mr, threads);
  const int64_t mchunks = ceil_div(Kg, mstep);

  std::vector<AlignedBuffer<T>> bbufs(threads);
  parallel_for(p.N * G * nblocks * mchunks, [&](int64_t item) {
    const int64_t mc = item % mchunks, rest = item / mchunks;
    const int64_t jb = rest % nblocks, ng = rest / nblocks, g = ng % G, n = ng / G;
    const int64_t j0 = jb * pb, j1 = std::min(P, j0 + pb);
    const int64_t m0 = mc * mstep, m1 = std::min(Kg, m0 + mstep);
    AlignedBuffer<T>& bbuf = bbufs[thread_id()];
    bbuf.resize(uk.kc * round_up(uk.nc, nr));
    const T* xg = x + (n * p.C + g * p.Cg()) * p.H * p.W;
    T* yg = y + (n * p.K + g * Kg + m0) * P;
    const T* ag = weights + g * mpad * KK;
    if (bias)
      for (int64_t m = m0; m < m1; ++m) std::fill(yg + (m - m0) * P + j0, yg + (m - m0) * P + j1, bias[g * Kg + m]);
    gemm_driver(
        uk, m1 - m0, KK, j0, j1,
        [&](int64_t k0, int64_t kc) { return ag + k0 * mpad + (m0 / mr) * kc * mr; },
        [&](int64_t k0, int64_t kc, int64_t jj, int64_t nc, T* dst) {
          pack_im2col(xg, p, k0, kc, jj, nc, nr, dst);
        },
        yg, P, bias != nullptr, bbuf.data());
  });
}

template <typename T>
void conv2d_direct_input_grad(const T* dy, const T* w, T* dx, const ConvParams& p) {
  const int64_t G = p.groups, Kg = p.Kg(), Cg = p.Cg(), RS = p.R * p.S, KK = p.patch();
  const int64_t P = p.out_pixels(), HW = p.H * p.W;
  switch (direct_path<T>(p, DirectPass::input_grad)) {
    case DirectPath::depthwise: return depthwise_input_grad(dy, w, dx, p);
    case DirectPath::depthwise_dense: return depthwise_dense_input_grad(dy, w, dx, p);
    case DirectPath::batched: return conv2d_batched_input_grad(dy, w, dx, p, false);
    case DirectPath::batched_pixel_rows: return conv2d_batched_input_grad(dy, w, dx, p, true);
    case DirectPath::shifted: return conv2d_shifted_input_grad(dy, w, dx, p);
    case DirectPath::pointwise: return conv2d_pointwise_input_grad(dy, w, dx, p);
    case DirectPath::polyphase: return conv2d_polyphase_input_grad(dy, w, dx, p);
    case DirectPath::phase_shifted:  // forward only
    case DirectPath::im2col: break;
  }

  // General stride: col[KK x pixels] = W_g^T * dy_g, then col2im into dx.
  const MicroKernel<T> uk = micro_kernel<T>(active_isa());
  const int mr = uk.mr, nr = uk.nr;
  const int threads = max_threads();
  // Split input channels of a group into chunks (disjoint dx planes) when images x groups
  // alone cannot feed every thread.
  int64_t cchunks = 1;
  if (p.N * G < threads) cchunks = std::min<int64_t>(Cg, ceil_div(threads, p.N * G));
  const int64_t cstep = ceil_div(Cg, cchunks);
  cchunks = ceil_div(Cg, cstep);
  const int64_t rows_max = cstep * RS, mpad = round_up(rows_max, mr);
  // Packed W^T per (group, chunk): rows = (c, r, s) of the chunk, reduction over Kg.
  AlignedBuffer<T> apack(G * cchunks * mpad * Kg);
  for (int64_t g = 0; g < G; ++g)
    for (int64_t cc = 0; cc < cchunks; ++cc) {
      const int64_t c0 = cc * cstep, rows = (std::min(Cg, c0 + cstep) - c0) * RS;
      pack_a_all(w + g * Kg * KK + c0 * RS, int64_t(1), KK, rows, Kg, mr, uk.kc,
                 apack.data() + (g * cchunks + cc) * mpad * Kg);
    }
  const int64_t colw = std::min<int64_t>(P, 256);
  std::vector<AlignedBuffer<T>> bbufs(threads), cols(threads);
  parallel_for(p.N * G * cchunks, [&](int64_t item) {
    const int64_t cc = item % cchunks, ng = item / cchunks, g = ng % G, n = ng / G;
    const int64_t c0 = cc * cstep, c1 = std::min(Cg, c0 + cstep), rows = (c1 - c0) * RS;
    const int tid = thread_id();
    bbufs[tid].resize(uk.kc * round_up(uk.nc, nr));
    cols[tid].resize(rows_max * colw);
    T* col = cols[tid].data();
    const T* dyg = dy + (n * p.K + g * Kg) * P;
    T* dxg = dx + (n * p.C + g * Cg) * HW;
    std::fill(dxg + c0 * HW, dxg + c1 * HW, T(0));
    const T* ag = apack.data() + (g * cchunks + cc) * mpad * Kg;
    for (int64_t pix = 0; pix < P; pix += colw) {
      const int64_t cnt = std::min(colw, P - pix);
      gemm_driver(
          uk, rows, Kg, 0, cnt, [&](int64_t k0, int64_t) { return ag + k0 * mpad; },
          [&](int64_t k0, int64_t kc, int64_t j0, int64_t nc, T* dst) {
            pack_b_rowmajor(dyg + pix, P, k0, kc, j0, nc, nr, dst);
          },
          col, colw, false, bbufs[tid].data());
      for (int64_t i = 0; i < rows; ++i) {
        const int64_t c = c0 + i / RS, r = (i / p.S) % p.R, s = i % p.S;
        col2im_row_add(dxg + c * HW, p, r, s, pix, cnt, col + i * colw, 1);
      }
    }
  });
}

template <typename T>
void conv2d_direct_weight_grad(const T* x, const T* dy, T* dw, const ConvParams& p) {
  switch (direct_path<T>(p, DirectPass::weight_grad)) {
    case DirectPath::depthwise: return depthwise_weight_grad(x, dy, dw, p);
    case DirectPath::depthwise_dense: return depthwise_dense_weight_grad(x, dy, dw, p);
    case DirectPath::batched:
    case DirectPath::batched_pixel_rows: return conv2d_batched_weight_grad(x, dy, dw, p);
    case DirectPath::shifted: return conv2d_shifted_weight_grad(x, dy, dw, p);
    case DirectPath::pointwise: return conv2d_pointwise_weight_grad(x, dy, dw, p);
    case DirectPath::polyphase: return conv2d_polyphase_weight_grad(x, dy, dw, p);
    case DirectPath::phase_shifted:  // forward only
    case DirectPath::im2col: break;
  }
  const MicroKernel<T> uk = micro_kernel<T>(active_isa(), p.Kg());
  const int mr = uk.mr, nr = uk.nr;
  const int64_t G = p.groups, Kg = p.Kg(), KK = p.patch(), P = p.out_pixels();
  const int64_t RS = p.R * p.S, HW = p.H * p.W;
  // Calls f(n, pixel, count, pos) for the runs of [qa, qb) that lie within one image.
  auto for_runs = [&](int64_t qa, int64_t qb, auto&& f) {
    for (int64_t q = qa; q < qb;) {
      const int64_t n = q / P, pix = q % P, cnt = std::min(qb - q, P - pix);
      f(n, pix, cnt, q - qa);
      q += cnt;
    }
  };
  weight_grad_gemm(
      uk, G, Kg, KK, p.N * P, dw,
      [&](int64_t g, int64_t q, int64_t kc, T* abuf) {  // A = dy[Kg x q], MR rows per panel
        for_runs(q, q + kc, [&](int64_t n, int64_t pix, int64_t cnt, int64_t pos) {
          const T* dyg = dy + (n * p.K + g * Kg) * P;
          for (int64_t i0 = 0; i0 < Kg; i0 += mr) {
            const int64_t rows = std::min<int64_t>(mr, Kg - i0);
            T* d = abuf + (i0 / mr) * kc * mr + pos * mr;
            for (int64_t t = 0; t < cnt; ++t) {
              int64_t i = 0;
              for (; i < rows; ++i) d[t * mr + i] = dyg[(i0 + i) * P + pix + t];
              for (; i < mr; ++i) d[t * mr + i] = T(0);
            }
          }
        });
      },
      [&](int64_t g, int64_t q, int64_t kc, int64_t j0, int64_t nc, T* dst) {  // B = im2col(x)^T
        for (int64_t j = 0; j < round_up(nc, nr); ++j) {
          T* d = dst + (j / nr) * kc * nr + j % nr;
          if (j >= nc) {
            for (int64_t k = 0; k < kc; ++k) d[k * nr] = T(0);
            continue;
          }
          const int64_t col = j0 + j, c = col / RS, r = (col / p.S) % p.R, s = col % p.S;
          for_runs(q, q + kc, [&](int64_t n, int64_t pix, int64_t cnt, int64_t pos) {
            im2col_row(x + (n * p.C + g * p.Cg() + c) * HW, p, r, s, pix, cnt, d + pos * nr, nr);
          });
        }
      });
}

template DirectPath direct_path<float>(const ConvParams&, DirectPass);
template DirectPath direct_path<double>(const ConvParams&, DirectPass);
template void conv2d_direct_forward<float>(const float*, const float*, const float*, float*, const ConvParams&,
                                           const OutputEpilogue<float>*, const float*);
template void conv2d_direct_forward<double>(const double*, const double*, const double*, double*, const ConvParams&,
                                            const OutputEpilogue<double>*, const double*);
template ForwardWeightLayout forward_weight_layout<float>(const ConvParams&, bool);
template ForwardWeightLayout forward_weight_layout<double>(const ConvParams&, bool);
template void pack_conv_forward_weights<float>(const float*, const ConvParams&, const ForwardWeightLayout&, float*);
template void pack_conv_forward_weights<double>(const double*, const ConvParams&, const ForwardWeightLayout&,
                                                double*);
template void conv2d_direct_input_grad<float>(const float*, const float*, float*, const ConvParams&);
template void conv2d_direct_input_grad<double>(const double*, const double*, double*, const ConvParams&);
template void conv2d_direct_weight_grad<float>(const float*, const float*, float*, const ConvParams&);
template void conv2d_direct_weight_grad<double>(const double*, const double*, double*, const ConvParams&);

}  // namespace fastconv
