// Stride-1 direct convolution without im2col packing ("shifted rows").
//
// Pad the input once to Hp x Wp and index output pixels in padded-width coordinates:
// virtual pixel v = oh * Wp + ow (ow < Wp; the columns ow >= OW are computed and dropped).
// Then tap (c, r, s) of every virtual pixel reads xpad[c][v + r*dh*Wp + s*dw]: row k of the
// GEMM's B matrix is the padded input itself, shifted by offset[k]. The micro-kernel reads
// those rows in place (MicroKernel::fn_offsets), so B costs no packing at all:
//   yv[Kg x V] = W[Kg x Cg*R*S] * shifted(xpad)[Cg*R*S x V],  V = OH * Wp
// and a final pass drops the Wp - OW extra columns while adding the bias.
#include <algorithm>
#include <cstring>
#include <vector>

#include "common/cpu.h"
#include "common/gemm.h"
#include "common/parallel.h"
#include "common/transpose.h"
#include "common/workspace.h"
#include "conv/direct/direct.h"
#include "conv/direct/direct_pack.h"
#include "conv/direct/direct_padded.h"
#include "conv/weight_grad_split.h"

namespace fastconv {
namespace {

// What the shifted-row GEMM reads: per (image, input channel) a block of chan_stride values,
// virtual pixel v = oh * Wv + ow, and im2col row k of the group read at v + offsets[k].
template <typename T>
struct ShiftedSource {
  AlignedBuffer<T> buf;
  int64_t chan_stride, Wv;
  std::vector<int64_t> offsets;
};

// Stride 1: the zero-padded input itself (Wv = Wp).
template <typename T>
ShiftedSource<T> padded_source(const T* x, const ConvParams& p, int64_t slack) {
  const int64_t Wp = p.W + 2 * p.pad_w;
  return {padded_input(x, p, slack), (p.H + 2 * p.pad_h) * Wp, Wp, tap_offsets(p)};
}

// Any stride: the zero-padded input split into its sh*sw phase images,
//   xs[n][c][a][b][i][j] = xpad[n][c][i*sh + a][j*sw + b]     (Hq x Wq = ceil(Hp/sh) x ceil(Wp/sw))
// Tap (r, s) of output pixel (oh, ow) reads xpad[oh*sh + r*dh][ow*sw + s*dw], which is phase
// ((r*dh) % sh, (s*dw) % sw) at [oh + r*dh/sh][ow + s*dw/sw]: with v = oh*Wq + ow, every tap is a
// plain shift of its phase, so the stride-1 machinery (and its micro-kernel reading B rows in
// place) runs any stride with exactly R*S taps per channel, where the polyphase decomposition
// (conv/strided/) pads each phase kernel to ceil(R/sh) x ceil(S/sw) taps (+78% for 3x3 s2).
template <typename T>
ShiftedSource<T> phase_source(const T* x, const ConvParams& p, int64_t slack) {
  const int64_t sh = p.stride_h, sw = p.stride_w, RS = p.R * p.S;
  const int64_t Hq = ceil_div(p.H + 2 * p.pad_h, sh), Wq = ceil_div(p.W + 2 * p.pad_w, sw), HqWq = Hq * Wq;
  const int64_t planes = p.N * p.C * sh * sw;
  ShiftedSource<T> src{AlignedBuffer<T>(planes * HqWq + slack), sh * sw * HqWq, Wq, std::vector<int64_t>(p.patch())};
  T* xs = src.buf.data();
  std::fill(xs + planes * HqWq, xs + planes * HqWq + slack, T(0));
  const int64_t Wrow = Wq * sw;  // a padded row, zero-extended to Wq*sw
  const int threads = max_threads();
  std::vector<AlignedBuffer<T>> rows(threads);
  parallel_for(p.N * p.C * sh, [&](int64_t item) {  // one (image, channel, row phase) per item
    const int64_t a = item % sh, nc = item / sh;
    const T* plane = x + nc * p.H * p.W;
    AlignedBuffer<T>& rowbuf = rows[thread_id()];
    rowbuf.resize(Wrow);
    T* row = rowbuf.data();
    std::fill(row, row + Wrow, T(0));
    T* dst0 = xs + nc * sh * sw * HqWq + a * sw * HqWq;  // phase (a, 0); phase b is b*HqWq further
    for (int64_t i = 0; i < Hq; ++i) {
      const int64_t h = i * sh + a - p.pad_h;
      if (h < 0 || h >= p.H) {
        for (int64_t b = 0; b < sw; ++b) std::fill(dst0 + b * HqWq + i * Wq, dst0 + b * HqWq + (i + 1) * Wq, T(0));
        continue;
      }
      std::memcpy(row + p.pad_w, plane + h * p.W, p.W * sizeof(T));  // the pads stay zero
      if (sw == 1) {
        std::memcpy(dst0 + i * Wq, row, Wq * sizeof(T));
      } else if (sw == 2) {  // a constant stride, so the compiler vectorises the de-interleave
        T* d0 = dst0 + i * Wq;
        T* d1 = d0 + HqWq;
        for (int64_t j = 0; j < Wq; ++j) {
          d0[j] = row[2 * j];
          d1[j] = row[2 * j + 1];
        }
      } else {
        for (int64_t b = 0; b < sw; ++b) {
          T* d = dst0 + b * HqWq + i * Wq;
          for (int64_t j = 0; j < Wq; ++j) d[j] = row[j * sw + b];
        }
      }
    }
  });
  for (int64_t kk = 0; kk < p.patch(); ++kk) {
    const int64_t c = kk / RS, rh = (kk / p.S) % p.R * p.dil_h, sw_ = kk % p.S * p.dil_w;
    src.offsets[kk] = ((c * sh + rh % sh) * sw + sw_ % sw) * HqWq + (rh / sh) * Wq + sw_ / sw;
  }
  return src;
}

}  // namespace

// The stride-1 forward with the weights supplied by pack_weights(uk, wpack), which fills
// wpack (G x round_up(Kg, MR) x Cg*R*S values) in the layout gemm_driver reads, or by
// `prepacked` (the same layout, packed before the call) where that is not null.
// Strides other than 1 read the phase images (phase_source) instead of the padded input.
// ep (may be null, not SiLU): the output epilogue, applied in the copy out of each tile.
template <typename T, typename PackWeights>
void shifted_forward(const T* x, PackWeights&& pack_weights, const T* bias, T* y, const ConvParams& p,
                     const T* prepacked = nullptr, const OutputEpilogue<T>* ep = nullptr) {
  const MicroKernel<T> uk = micro_kernel<T>(active_isa(), p.Kg());
  const int mr = uk.mr, nr = uk.nr;
  const int64_t G = p.groups, Kg = p.Kg(), Cg = p.Cg(), KK = p.patch();
  const int64_t P = p.out_pixels();
  const int64_t mpad = round_up(Kg, mr);

  const int64_t slack = nr + (p.S - 1) * p.dil_w + 64;
  const bool stride1 = p.stride_h == 1 && p.stride_w == 1;
  const ShiftedSource<T> src = stride1 ? padded_source(x, p, slack) : phase_source(x, p, slack);
  const int64_t Wp = src.Wv, HpWp = src.chan_stride, V = p.OH * Wp;
  const std::vector<int64_t>& offsets = src.offsets;

  // Weights packed once: for each kc-slice of the reduction, all Kg rows in MR panels.
  const int64_t kc_step = slice_kc(KK, uk.kc);
  AlignedBuffer<T> wpack;
  if (!prepacked) {
    wpack.resize(G * mpad * KK);
    pack_weights(uk, wpack.data());
  }
  const T* weights = prepacked ? prepacked : wpack.data();

  // Work items: images x groups x virtual-pixel blocks x output-channel chunks.
  const int threads = max_threads();
  // Virtual-pixel block: the output tile (mpad x vb) of a work item should stay within
  // about 256 KiB so it lives in L2 across the reduction slices.
  const int64_t vb_cap = std::max<int64_t>(4 * nr, (65536 / mpad) / nr * nr);
  int64_t vb = std::min<int64_t>(round_up(V, nr), std::min<int64_t>(vb_cap, 2048));
  if (p.N * G * ceil_div(V, vb) < 2 * threads)
    vb = std::max<int64_t>(4 * nr, round_up(ceil_div(V, ceil_div(2 * threads, p.N * G)), nr));
  if (!stride1 && p.N * G * ceil_div(V, vb) < 8 * threads) {
    // Few large blocks (the RGB stems at batch 1: 7 of 2048 virtual pixels): even out the
    // threads' shares by making the item count a multiple of the thread count.
    const int64_t items = round_up(p.N * G * ceil_div(V, vb), threads);
    vb = std::max<int64_t>(4 * nr, round_up(ceil_div(V, ceil_div(items, p.N * G)), nr));
  }
  const int64_t vblocks = ceil_div(V, vb);
  const int64_t mstep = output_channel_step(p.N * G * vblocks, Kg, mr, threads);
  const int64_t mchunks = ceil_div(Kg, mstep);

  // Row stride of the per-thread output tile: vb plus one cache line, so the 12 rows a
  // micro-tile touches do not all map to the same L1 set (vb is a power of two).
  const int64_t ldt = vb + 64 / static_cast<int64_t>(sizeof(T));
  std::vector<AlignedBuffer<T>> tmps(threads);
  parallel_for(p.N * G * vblocks * mchunks, [&](int64_t item) {
    const int64_t mc = item % mchunks, rest = item / mchunks;
    const int64_t vbi = rest % vblocks, ng = rest / vblocks, g = ng % G, n = ng / G;
    const int64_t v0 = vbi * vb, v1 = std::min(V, v0 + vb), vcount = round_up(v1 - v0, nr);
    const int64_t m0 = mc * mstep, m1 = std::min(Kg, m0 + mstep), mrows = round_up(m1 - m0, mr);
    AlignedBuffer<T>& tmp = tmps[thread_id()];
    tmp.resize(round_up(mstep, mr) * ldt);
    const T* xg = src.buf.data() + (n * p.C + g * Cg) * HpWp + v0;
    const T* ag = weights + g * mpad * KK;
    for (int64_t pc = 0; pc < KK; pc += kc_step) {
      const int64_t kc = std::min<int64_t>(kc_step, KK - pc);
      const T* ablock = ag + pc * mpad + (m0 / mr) * kc * mr;
      for (int64_t jr = 0; jr < vcount; jr += nr)
        for (int64_t ir = 0; ir < mrows; ir += mr)
          uk.fn_offsets(kc, ablock + (ir / mr) * kc * mr, xg + jr, offsets.data() + pc,
                        tmp.data() + ir * ldt + jr, ldt, pc > 0);
    }
    // Drop the padded-width columns, add the bias, apply the epilogue.
    T* yg = y + (n * p.K + g * Kg) * P;
    for (int64_t m = m0; m < m1; ++m)
      epilogue_store_rows(ep, tmp.data() + (m - m0) * ldt, bias ? bias[g * Kg + m] : T(0), yg + m * P, v0, v1, Wp, p.OW);
  });
}

template <typename T>
void conv2d_shifted_forward(const T* x, const T* w, const T* bias, T* y, const ConvParams& p, const T* prepacked,
                            const OutputEpilogue<T>* ep) {
  if (ep && ep->act == kActSilu) {  // the conv, then the epilogue's own pass (its exp)
    conv2d_shifted_forward(x, w, bias, y, p, prepacked, static_cast<const OutputEpilogue<T>*>(nullptr));
    return epilogue_in_place(*ep, static_cast<const T*>(nullptr), p.N, p.K, p.out_pixels());
  }
  shifted_forward(
      x, [&](const MicroKernel<T>& uk, T* wpack) { pack_weight_panels_all(w, p, uk.mr, uk.kc, wpack); }, bias, y, p,
      prepacked, ep);
}

// Input gradient, stride 1: a stride-1 forward conv of dy with the kernel flipped in space and
// transposed in channels, wt[g*Cg + c][k][r][s] = w[g*Kg + k][c][R-1-r][S-1-s], and padding
// dil*(R-1) - pad. wt is never built: its GEMM panels are packed straight from w, where the
// MR x R*S block a panel needs for one k is contiguous.
template <typename T>
void conv2d_shifted_input_grad(const T* dy, const T* w, T* dx, const ConvParams& p) {
  const int64_t G = p.groups, Kg = p.Kg(), Cg = p.Cg(), RS = p.R * p.S, KKt = Kg * RS;
  const ConvParams q = adjoint_params(p);
  shifted_forward(
      dy,
      [&](const MicroKernel<T>& uk, T* wpack) {
        const int mr = uk.mr;
        const int64_t mpad = round_up(Cg, mr), panels = mpad / mr, kcb = slice_kc(KKt, uk.kc);
        const int64_t slices = (KKt + kcb - 1) / kcb;
        parallel_for(G * slices * panels, [&](int64_t item) {
          const int64_t panel = item % panels, s = (item / panels) % slices, g = item / (panels * slices);
          const int64_t pc = s * kcb, kc = std::min(kcb, KKt - pc);
          pack_flipped_weight_panel(w, p, mr, g, panel * mr, pc, kc, wpack + g * mpad * KKt + pc * mpad + panel * kc * mr);
        });
      },
      static_cast<const T*>(nullptr), dx, q);
}

// Weight gradient, stride 1: the reduction runs over virtual pixels q = n*V + v.
//   dw[Kg x Cg*R*S] += dy_v[Kg x q] * shifted(xpad)^T[q x Cg*R*S]
// Both operands are contiguous along q, so both are packed by in-register transposes
// (common/transpose.h). Virtual pixels in the padded-width columns (ow >= OW) are zeroed on
// both sides, so an Inf that wraps into them never turns into a NaN.
template <typename T>
void conv2d_shifted_weight_grad(const T* x, const T* dy, T* dw, const ConvParams& p) {
  const Isa isa = active_isa();
  const MicroKernel<T> uk = micro_kernel<T>(isa, p.Kg());
  const TransposePanelFn<T> transpose = transpose_panel<T>(isa);
  const int mr = uk.mr, nr = uk.nr;
  const int64_t G = p.groups, Kg = p.Kg(), Cg = p.Cg(), KK = p.patch(), P = p.out_pixels();
  const int64_t Wp = p.W + 2 * p.pad_w, HpWp = (p.H + 2 * p.pad_h) * Wp, V = p.OH * Wp;
  const int64_t slack = nr + (p.S - 1) * p.dil_w + 64;
  AlignedBuffer<T> xpad = padded_input(x, p, slack);
  const std::vector<int64_t> offsets = tap_offsets(p);

  // Calls f(n, v, count, pos) for each run of [qa, qb) inside one output row of one image;
  // pos is the run's position in the slice. Runs cover whole rows incl. padded-width columns.
  auto for_row_runs = [&](int64_t qa, int64_t qb, auto&& f) {
    for (int64_t q = qa; q < qb;) {
      const int64_t n = q / V, v = q % V, cnt = std::min(qb - q, Wp - v % Wp);
      f(n, v, cnt, q - qa);
      q += cnt;
    }
  };
  weight_grad_gemm(
      uk, G, Kg, KK, p.N * V, dw,
      [&](int64_t g, int64_t q, int64_t kc, T* abuf) {  // A = dy in virtual layout, MR rows per panel
        const T* rows[64];
        for_row_runs(q, q + kc, [&](int64_t n, int64_t v, int64_t cnt, int64_t pos) {
          const int64_t oh = v / Wp, ow = v % Wp;
          const int64_t valid = std::max<int64_t>(0, std::min(cnt, p.OW - ow));
          for (int64_t i0 = 0; i0 < Kg; i0 += mr) {
            for (int i = 0; i < mr; ++i)
              rows[i] = i0 + i < Kg ? dy + (n * p.K + g * Kg + i0 + i) * P + oh * p.OW + ow : nullptr;
            T* d = abuf + (i0 / mr) * kc * mr + pos * mr;
            transpose(rows, mr, valid, d);
            std::fill(d + valid * mr, d + cnt * mr, T(0));
          }
        });
      },
      [&](int64_t g, int64_t q0, int64_t kc, int64_t j0, int64_t nc, T* dst) {  // B = shifted xpad^T
        const T* rows[64];
        for (int64_t jp = 0; jp < nc; jp += nr) {
          T* d = dst + (jp / nr) * kc * nr;
          for (int64_t q = q0; q < q0 + kc;) {  // runs within one image
            const int64_t n = q / V, v = q % V, cnt = std::min(q0 + kc - q, V - v);
            const T* base = xpad.data() + (n * p.C + g * Cg) * HpWp + v;
            for (int j = 0; j < nr; ++j) rows[j] = jp + j < nc ? base + offsets[j0 + jp + j] : nullptr;
            const int64_t pos = q - q0;
            transpose(rows, nr, cnt, d + pos * nr);
            for (int64_t t = 0, col = v % Wp; t < cnt; ++t) {  // zero the padded-width columns
              if (col >= p.OW) std::fill(d + (pos + t) * nr, d + (pos + t + 1) * nr, T(0));
              if (++col == Wp) col = 0;
            }
            q += cnt;
          }
        }
      });
}

template void conv2d_shifted_input_grad<float>(const float*, const float*, float*, const ConvParams&);
template void conv2d_shifted_input_grad<double>(const double*, const double*, double*, const ConvParams&);
template void conv2d_shifted_forward<float>(const float*, const float*, const float*, float*, const ConvParams&,
                                            const float*, const OutputEpilogue<float>*);
template void conv2d_shifted_forward<double>(const double*, const double*, const double*, double*, const ConvParams&,
                                             const double*, const OutputEpilogue<double>*);

template void conv2d_shifted_weight_grad<float>(const float*, const float*, float*, const ConvParams&);
template void conv2d_shifted_weight_grad<double>(const double*, const double*, double*, const ConvParams&);

}  // namespace fastconv
