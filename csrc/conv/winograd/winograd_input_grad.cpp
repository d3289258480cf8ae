// Winograd input gradient of a 3x3 stride-1 convolution, blocked so that the transformed weights
// never reach memory. dx is the stride-1 convolution of dy with the flipped, channel-transposed
// kernel wt[c][k] = flip(w[k][c]) and padding 2 - pad (pad <= 2):
//   V[xi][k][t] = (B^T dy_kt B)[xi]                     dy tiles (padding 2 - pad)
//   M[xi][c][t] = sum_k U[xi][c][k] V[xi][k][t],  U[xi][c][k] = (G wt_ck G^T)[xi]
//   dx tile(c, t) = A^T M[.][c][t] A
// The forward driver (winograd.cpp) materialises U, alpha^2 K C values (36 MiB for a 512x512
// layer at F(4,3)), written and read once per call: on deep layers with few tiles that traffic
// costs as much as the GEMMs. Here each GEMM item computes the slice of U it needs (for its
// block of channels c, one reduction slice of k, one xi) into an L1-sized panel just before use,
// 9 multiply-adds per value, from the flipped weights laid out once per call in the GEMM's row
// panel layout, wr[g][rs][panel][k][mr] (so each U panel combines 9 contiguous runs).
//
// Per group, per block of nb tiles: (1) transform dy into the micro-kernel's packed B panels
// (parallel over k and chunks of 64 tiles); (2) items of (cb channels x tb <= 64 tiles): for
// every xi and reduction slice, transform the U panel and run the micro-kernel into a local
// M[xi][cb][tb] (<= ~1 MiB), then the forward's output-transform kernel writes the dx tiles.
#include "conv/winograd/winograd_input_grad.h"
#include "conv/winograd/winograd.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "common/cpu.h"
#include "common/gemm.h"
#include "common/isa_target.h"
#include "common/kernel_list.h"
#include "common/parallel.h"
#include "common/workspace.h"
#include "conv/winograd/winograd_kernels.h"
#include "conv/winograd/winograd_matrices.h"

namespace fastconv {
namespace {

template <typename T>
struct DxWorkspace {
  AlignedBuffer<T> wr, V;                     // laid-out weights; packed V of a block
  std::vector<AlignedBuffer<T>> scratch, mloc, apanel;  // per thread
};

template <typename T>
DxWorkspace<T>& workspace() {
  thread_local DxWorkspace<T> ws;
  return ws;
}

// The U panel transform, compiled per ISA with target attributes (common/isa_target.h) and
// listed as the "winograd_input_grad" family. Plain loops only: inlined into each wrapper.
template <typename T>
struct DxKernels {
  // a[q] = sum_l coef[l] * wr[idx[l] * plane + q] for q < len: one xi of U for one row panel and
  // reduction slice (len = kc * mr values, contiguous in wr's panel layout); n nonzero terms.
  void (*upanel)(const T* wr, int64_t plane, const int* idx, const T* coef, int n, int64_t len, T* a);
};

template <typename T>
FASTCONV_ALWAYS_INLINE void upanel(const T* wr, int64_t plane, const int* idx, const T* coef, int n, int64_t len,
                                   T* a) {
  T* __restrict d = a;
  {
    const T c0 = coef[0];
    const T* __restrict s0 = wr + idx[0] * plane;
    for (int64_t q = 0; q < len; ++q) d[q] = c0 * s0[q];
  }
  for (int l = 1; l < n; ++l) {
    const T cl = coef[l];
    const T* __restrict sl = wr + idx[l] * plane;
    for (int64_t q = 0; q < len; ++q) d[q] += cl * sl[q];
  }
}

#define FASTCONV_DX_KERNELS(ISA)                                                                               \
  template <typename T>                                                                                        \
  FASTCONV_TARGET(ISA) void dx_upanel__##ISA(const T* wr, int64_t plane, const int* idx, const T* coef, int n, \
                                             int64_t len, T* a) {                                              \
    upanel<T>(wr, plane, idx, coef, n, len, a);                                                                \
  }                                                                                                            \
  const DxKernels<float> dx_f32__##ISA{&dx_upanel__##ISA<float>};                                              \
  const DxKernels<double> dx_f64__##ISA{&dx_upanel__##ISA<double>};
FASTCONV_FOR_EACH_ISA(FASTCONV_DX_KERNELS)
#undef FASTCONV_DX_KERNELS
const KernelTable<DxKernels<float>> kDxF32("winograd_input_grad", "float32",
                                           FASTCONV_ISA_VARIANTS(dx_f32, "winograd_input_grad_f32"));
const KernelTable<DxKernels<double>> kDxF64("winograd_input_grad", "float64",
                                            FASTCONV_ISA_VARIANTS(dx_f64, "winograd_input_grad_f64"));
const KernelTable<DxKernels<float>>& dx_kernels(const float*) { return kDxF32; }
const KernelTable<DxKernels<double>>& dx_kernels(const double*) { return kDxF64; }

}  // namespace

template <typename T>
void conv2d_winograd_input_grad_blocked(const T* dy, const T* w, T* dx, const ConvParams& p, int m) {
  const int64_t Kg = p.Kg(), Cg = p.Cg(), G = p.groups;
  const MicroKernel<T> uk = micro_kernel<T>(active_isa());
  const WinoKernels<T> wk = wino_kernels<T>(active_isa());
  const DxKernels<T> dk = dx_kernels(dy).active();
  const WinoMatrices& mat = winograd_matrices(m);
  const int a = m + 2, a2 = a * a, mr = uk.mr, nr = uk.nr;
  const std::vector<T> BT(mat.BT.begin(), mat.BT.end()), AT(mat.AT.begin(), mat.AT.end());
  // U[xi = (i, j)] = sum_rs G[i][r] G[j][s] wt[r][s]: per xi the nonzero coefficients and the
  // planes rs of wr they multiply (wr holds wt, the flipped kernel).
  std::vector<T> coef(size_t(a2) * 9);
  std::vector<int> idx(size_t(a2) * 9), nterms(a2);
  for (int i = 0; i < a; ++i)
    for (int j = 0; j < a; ++j) {
      int n = 0;
      for (int rs = 0; rs < 9; ++rs) {
        const double c = mat.G[i * 3 + rs / 3] * mat.G[j * 3 + rs % 3];
        if (c == 0.0) continue;
        coef[(i * a + j) * 9 + n] = T(c);
        idx[(i * a + j) * 9 + n++] = rs;
      }
      nterms[i * a + j] = n;
    }

  // dx tiles (the conv's output) and the dy plane they read, with padding 2 - pad.
  const int64_t TH = ceil_div(p.H, m), TW = ceil_div(p.W, m), total = p.N * TH * TW;
  const WinoTiling tl{m, a, p.OH, p.OW, p.H, p.W, 2 - p.pad_h, 2 - p.pad_w, TH, TW};
  // Few tiles that the forward's tile-rows driver pads less (winograd_tile_rows): run the adjoint
  // conv there (the flipped kernel's filters transformed per output-channel chunk, as here).
  if (winograd_tile_rows<T>(total, Cg, false)) {
    conv2d_winograd_input_grad<T>(dy, w, dx, p, m);
    return;
  }
  const int64_t Mpad = round_up(Cg, mr), mp = Mpad / mr;
  const int64_t kcs = slice_kc(Kg, uk.kc), nslices = ceil_div(Kg, kcs);

  // Tiles per block: packed V (alpha^2 Kg values per tile) within 32 MiB, at most 1024.
  int64_t nb = std::max<int64_t>((int64_t(32) << 20) / (int64_t(a2) * Kg * int64_t(sizeof(T))), 64);
  nb = std::min<int64_t>(std::min<int64_t>(round_up(nb, 64), 1024), round_up(total, nr));
  const int64_t nblocks = ceil_div(total, nb);
  const int64_t tbp = std::max<int64_t>(1, kWinoChunk / nr), tb = tbp * nr;  // tiles per item
  // Channel panels per item: local M (alpha^2 x cb x tb) within ~1 MiB, at most 4 panels,
  // fewer while items would not give every thread two.
  const int threads = max_threads();
  int64_t cbp = std::min<int64_t>(std::min<int64_t>(4, mp),
                                  std::max<int64_t>(1, (int64_t(1) << 20) / int64_t(sizeof(T)) / a2 / tb / mr));
  const int64_t tblocks_max = ceil_div(std::min(nb, total), tb);
  while (cbp > 1 && ceil_div(mp, cbp) * tblocks_max < 2 * threads) cbp = ceil_div(cbp, 2);
  cbp = ceil_div(mp, ceil_div(mp, cbp));
  const int64_t ncb = ceil_div(mp, cbp), cb = cbp * mr;

  DxWorkspace<T>& ws = workspace<T>();
  if (int(ws.scratch.size()) < threads) {
    ws.scratch.resize(threads);
    ws.mloc.resize(threads);
    ws.apanel.resize(threads);
  }
  // wr[g][rs][panel][k][i] = w[g*Kg + k][panel*mr + i][8 - rs] (zero past Cg): the flipped
  // kernel in the A panel layout, so a U panel is a combination of 9 contiguous runs.
  const int64_t plane = Kg * Mpad;
  ws.wr.resize(G * 9 * plane);
  T* wr = ws.wr.data();
  // One item per (group, panel): reads 9 * mr contiguous values of w per k, writes 9 runs of
  // mr values, each continuing the previous k's run.
  parallel_for(G * mp, [&](int64_t gp) {
    const int64_t g = gp / mp, pn = gp % mp, c0 = pn * mr, valid = std::min<int64_t>(mr, Cg - c0);
    for (int64_t k = 0; k < Kg; ++k) {
      const T* src = w + ((g * Kg + k) * Cg + c0) * 9;
      for (int rs = 0; rs < 9; ++rs) {
        T* __restrict d = wr + ((g * 9 + rs) * mp + pn) * Kg * mr + k * mr;
        int64_t i = 0;
        for (; i < valid; ++i) d[i] = src[i * 9 + 8 - rs];
        for (; i < mr; ++i) d[i] = T(0);
      }
    }
  });
  const int64_t nbpad = round_up(nb, nr);
  ws.V.resize(a2 * Kg * nbpad);
  T* V = ws.V.data();
  const int64_t in_img = p.K * p.OH * p.OW, out_img = p.C * p.H * p.W;

  for (int64_t g = 0; g < G; ++g) {
    const T* wg = wr + g * 9 * plane;
    for (int64_t b = 0; b < nblocks; ++b) {
      const int64_t t0 = b * nb, cnt = std::min(nb, total - t0), tpad = round_up(cnt, nr);
      const int64_t nch = ceil_div(cnt, kWinoChunk), xs = Kg * tpad;
      // 1. V into packed B panels: slice s of the reduction holds, per panel of nr tiles, kc
      //    rows of nr values. Chunks start at multiples of 64 tiles, so whole panels.
      parallel_for(Kg * nch, [&](int64_t item) {
        const int64_t k = item / nch, j0 = (item % nch) * kWinoChunk, len = std::min(kWinoChunk, cnt - j0);
        const int tid = thread_id();
        ws.scratch[tid].resize(3 * a2 * kWinoChunk);
        T* S = ws.scratch[tid].data();
        wk.input(tl, BT.data(), dy + (g * Kg + k) * p.OH * p.OW, in_img, t0 + j0, len, S, kWinoChunk,
                 S + a2 * kWinoChunk);
        const int64_t s = k / kcs, kk = k % kcs, kc = std::min(kcs, Kg - s * kcs);
        for (int xi = 0; xi < a2; ++xi) {
          T* base = V + xi * xs + s * kcs * tpad + kk * nr;
          for (int64_t t = j0; t < std::min(j0 + kWinoChunk, tpad); t += nr) {
            T* d = base + (t / nr) * kc * nr;
            const int64_t run = std::max<int64_t>(0, std::min<int64_t>(nr, cnt - t));
            std::memcpy(d, S + xi * kWinoChunk + (t - j0), size_t(run) * sizeof(T));
            for (int64_t u = run; u < nr; ++u) d[u] = T(0);
          }
        }
      });
      // 2. Items (channel block, tile block): U panels on the fly, GEMMs into local M, dx tiles.
      const int64_t ntb = ceil_div(cnt, tb);
      parallel_for(ncb * ntb, [&](int64_t item) {
        const int64_t ip0 = (item / ntb) * cbp, ip1 = std::min(mp, ip0 + cbp), np_ = ip1 - ip0;
        const int64_t tb0 = (item % ntb) * tb, len = std::min(tb, cnt - tb0), tp0 = tb0 / nr;
        const int64_t tp1 = ceil_div(tb0 + len, nr);
        const int tid = thread_id();
        ws.mloc[tid].resize(a2 * cb * tb);
        ws.apanel[tid].resize(cbp * kcs * mr);
        ws.scratch[tid].resize(2 * a2 * kWinoChunk);
        T* M = ws.mloc[tid].data();
        T* A = ws.apanel[tid].data();
        for (int xi = 0; xi < a2; ++xi) {
          T* Mx = M + xi * cb * tb;
          for (int64_t s = 0; s < nslices; ++s) {
            const int64_t k0 = s * kcs, kc = std::min(kcs, Kg - k0);
            for (int64_t ip = 0; ip < np_; ++ip)
              dk.upanel(wg + ((ip0 + ip) * Kg + k0) * mr, plane, idx.data() + xi * 9, coef.data() + xi * 9,
                        nterms[xi], kc * mr, A + ip * kc * mr);
            const T* Vs = V + xi * xs + k0 * tpad;
            for (int64_t tp = tp0; tp < tp1; ++tp) {
              const T* bp = Vs + tp * kc * nr;
              for (int64_t ip = 0; ip < np_; ++ip)
                uk.fn(kc, A + ip * kc * mr, bp, Mx + ip * mr * tb + (tp - tp0) * nr, tb, s > 0);
            }
          }
        }
        const int64_t c1 = std::min(Cg, ip1 * mr);
        for (int64_t c = ip0 * mr; c < c1; ++c)
          wk.output(tl, AT.data(), M + (c - ip0 * mr) * tb, cb * tb, t0 + tb0, len, T(0), false,
                    dx + (g * Cg + c) * p.H * p.W, out_img, ws.scratch[tid].data());
      });
    }
  }
}

template void conv2d_winograd_input_grad_blocked<float>(const float*, const float*, float*, const ConvParams&, int);
template void conv2d_winograd_input_grad_blocked<double>(const double*, const double*, double*, const ConvParams&,
                                                         int);

}  // namespace fastconv
