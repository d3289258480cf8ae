// Winograd weight gradient of a 3x3 stride-1 dilation-1 convolution, F(m x m, 3 x 3) transposed.
//
// The forward computes every output tile as y = A^T [ (G g G^T) (.) (B^T d B) ] A, so by the
// chain rule through U = G g G^T (exact in exact arithmetic, see winograd_matrices.h):
//   V[xi][c][t] = (B^T d_ct B)[xi]          input tiles, alpha x alpha      (the forward's kernel)
//   Y[xi][k][t] = (A dy_kt A^T)[xi]         grad_output tiles, m x m -> alpha x alpha
//   Mw[xi][k][c] = sum_t Y[xi][k][t] V[xi][c][t]   alpha^2 GEMMs [Kg x tiles] x [tiles x Cg]
//   dW[k][c] = G^T Mw[.][k][c] G            3 x 3 from alpha x alpha
// Tiles whose output runs past OH x OW see zeros there (grad_output is zero outside), so the
// clipped edge tiles contribute exactly the valid products. Padding only changes where the
// input tiles start; groups are independent problems.
//
// Y uses the forward's input-transform kernel with a padded matrix: gathering an alpha x alpha
// tile of dy at (th*m, tw*m) and transforming it with BT' (alpha x alpha, BT'[i][l] = A[i][l] =
// AT[l][i] for l < m, zero for l >= m) gives A dy_tile A^T, the zero columns being skipped.
//
// Work per group, per block of nb tiles (the GEMMs' reduction; large amortises the Mw updates,
// bounded so the packed V and Y take at most 32 MiB):
//   1. transforms: V and Y of a panel of channels (NR of V, MR of Y) and a chunk of 64 tiles
//      per item, written straight into the micro-kernel's packed B / A panel layouts (so the
//      GEMMs pack nothing: each packed value is used by every output block);
//   2. GEMMs: one item per block of kb x cb outputs (k, c), all alpha^2 xi in turn, with the
//      micro-kernel on the packed panels; at the last tile block the item transforms its
//      alpha^2 x kb x cb Mw values to dW while they are in cache. With a single tile block (deep
//      layers, whose Mw of alpha^2 Kg Cg values is largest) Mw lives only in a per-thread
//      buffer of <= 1 MiB: it never goes to memory. With several, Mw is kept whole between blocks.
#include "conv/winograd/winograd_weight_grad.h"

#include <algorithm>
#include <vector>

#include "common/cpu.h"
#include "common/gemm.h"
#include "common/isa_target.h"
#include "common/kernel_list.h"
#include "common/parallel.h"
#include "common/transpose.h"
#include "common/workspace.h"
#include "conv/winograd/winograd_kernels.h"
#include "conv/winograd/winograd_matrices.h"

namespace fastconv {
namespace {

// Scratch kept per calling thread between calls (as the forward's: re-faulting multi-MiB
// buffers on every call costs about as much as the transforms).
template <typename T>
struct WgradWorkspace {
  AlignedBuffer<T> V, Y, Mw;                     // packed V and Y of a block; Mw across blocks
  std::vector<AlignedBuffer<T>> scratch, mw_local;  // per thread
};

template <typename T>
WgradWorkspace<T>& workspace() {
  thread_local WgradWorkspace<T> ws;
  return ws;
}

// The output transform, compiled per ISA with target attributes (common/isa_target.h) and listed
// as the "winograd_weight_grad" family. Plain loops only: the body is inlined into each wrapper.
template <typename T>
struct WgradKernels {
  // dW[k][c][r][s] = sum_ij G[i][r] M[i*a + j][c] G[j][s] for n channels c of one filter k, with
  // M[xi][c] = Mw[xi * slab + c]; tmp holds (3 * a + 9) * n values.
  void (*output)(const T* Mw, int64_t slab, int64_t n, int a, const T* G, T* tmp, T* dw);
};

// The whole computation stays vectorisable: c innermost in every loop (contiguous in Mw).
template <typename T>
FASTCONV_ALWAYS_INLINE void output_transform(const T* Mw, int64_t slab, int64_t n, int a, const T* G, T* tmp,
                                             T* dw) {
  T* out = tmp + 3 * a * n;
  // tmp[i][s][c] = sum_j M[i][j][c] G[j][s]
  for (int i = 0; i < a; ++i)
    for (int s = 0; s < 3; ++s) {
      T* __restrict t = tmp + (i * 3 + s) * n;
      for (int64_t c = 0; c < n; ++c) t[c] = T(0);
      for (int j = 0; j < a; ++j) {
        const T gj = G[j * 3 + s];
        if (gj == T(0)) continue;
        const T* __restrict mrow = Mw + (i * a + j) * slab;
        for (int64_t c = 0; c < n; ++c) t[c] += gj * mrow[c];
      }
    }
  // out[r][s][c] = sum_i G[i][r] tmp[i][s][c]
  for (int rs = 0; rs < 9; ++rs) {
    T* __restrict o = out + rs * n;
    for (int64_t c = 0; c < n; ++c) o[c] = T(0);
    for (int i = 0; i < a; ++i) {
      const T gi = G[i * 3 + rs / 3];
      if (gi == T(0)) continue;
      const T* __restrict t = tmp + (i * 3 + rs % 3) * n;
      for (int64_t c = 0; c < n; ++c) o[c] += gi * t[c];
    }
  }
  for (int64_t c = 0; c < n; ++c)
    for (int rs = 0; rs < 9; ++rs) dw[c * 9 + rs] = out[rs * n + c];
}

#define FASTCONV_WGRAD_KERNELS(ISA)                                                                            \
  template <typename T>                                                                                        \
  FASTCONV_TARGET(ISA) void wgrad_output__##ISA(const T* Mw, int64_t slab, int64_t n, int a, const T* G, T* tmp, \
                                                T* dw) {                                                       \
    output_transform<T>(Mw, slab, n, a, G, tmp, dw);                                                           \
  }                                                                                                            \
  const WgradKernels<float> wgrad_f32__##ISA{&wgrad_output__##ISA<float>};                                     \
  const WgradKernels<double> wgrad_f64__##ISA{&wgrad_output__##ISA<double>};
FASTCONV_FOR_EACH_ISA(FASTCONV_WGRAD_KERNELS)
#undef FASTCONV_WGRAD_KERNELS
const KernelTable<WgradKernels<float>> kWgradF32("winograd_weight_grad", "float32",
                                                 FASTCONV_ISA_VARIANTS(wgrad_f32, "winograd_weight_grad_f32"));
const KernelTable<WgradKernels<double>> kWgradF64("winograd_weight_grad", "float64",
                                                  FASTCONV_ISA_VARIANTS(wgrad_f64, "winograd_weight_grad_f64"));
const KernelTable<WgradKernels<float>>& wgrad_kernels(const float*) { return kWgradF32; }
const KernelTable<WgradKernels<double>>& wgrad_kernels(const double*) { return kWgradF64; }

// Splits `panels` panels into `parts` near-equal runs; returns the run length in panels.
int64_t balanced(int64_t panels, int64_t parts) { return ceil_div(panels, std::max<int64_t>(1, parts)); }

}  // namespace

template <typename T>
int64_t winograd_weight_grad_block(int m, int64_t Kg, int64_t Cg, int64_t tiles) {
  // Whole reduction slices of the micro-kernel where memory allows: packed V + Y of a block
  // within 32 MiB, at least 32 tiles, at most 4 slices.
  const MicroKernel<T> uk = micro_kernel<T>(active_isa());
  const int64_t a2 = int64_t(m + 2) * (m + 2);
  const int64_t per_tile = a2 * (round_up(Kg, uk.mr) + round_up(Cg, uk.nr)) * int64_t(sizeof(T));
  int64_t nb = std::max<int64_t>((int64_t(32) << 20) / per_tile, 32);
  nb = std::min<int64_t>(nb, 4 * int64_t(uk.kc));
  if (nb >= uk.kc) nb = nb / uk.kc * uk.kc;
  return std::min<int64_t>(round_up(nb, 16), tiles);
}

template <typename T>
void conv2d_winograd_weight_grad(const T* x, const T* dy, T* dw, const ConvParams& p, int m) {
  const int64_t Kg = p.Kg(), Cg = p.Cg(), TH = ceil_div(p.OH, m), TW = ceil_div(p.OW, m);
  // The ISA's default tile (not the row-count choice of the forward: here the GEMM's columns are
  // channels too, and its 8x48 alternative would pad 64 channels to 96).
  const MicroKernel<T> uk = micro_kernel<T>(active_isa());
  const WinoKernels<T> wk = wino_kernels<T>(active_isa());
  const WgradKernels<T> gk = wgrad_kernels(x).active();
  const TransposePanelFn<T> transpose = transpose_panel<T>(active_isa());
  const WinoMatrices& mat = winograd_matrices(m);
  const int a = m + 2, a2 = a * a, mr = uk.mr, nr = uk.nr;
  const std::vector<T> BT(mat.BT.begin(), mat.BT.end()), G(mat.G.begin(), mat.G.end());
  std::vector<T> AP(a2, T(0));  // BT' of the file comment: A padded to alpha x alpha
  for (int i = 0; i < a; ++i)
    for (int l = 0; l < m; ++l) AP[i * a + l] = T(mat.AT[l * a + i]);

  const WinoTiling tx{m, a, p.H, p.W, p.OH, p.OW, p.pad_h, p.pad_w, TH, TW};
  const WinoTiling ty{m, a, p.OH, p.OW, p.OH, p.OW, 0, 0, TH, TW};
  const int64_t total = p.N * TH * TW;
  const int64_t Mpad = round_up(Kg, mr), Npad = round_up(Cg, nr), mp = Mpad / mr, np = Npad / nr;

  const int64_t nb = winograd_weight_grad_block<T>(m, Kg, Cg, total);
  const int64_t nblocks = ceil_div(total, nb);

  // Output blocks: 4 row panels by as many column panels as keep alpha^2 kb cb values within
  // 1 MiB, split further while there are fewer than two items per thread.
  const int threads = max_threads();
  int64_t kbp = std::min<int64_t>(4, mp);
  int64_t cbp = std::min<int64_t>(np, std::max<int64_t>(1, (int64_t(1) << 20) / int64_t(sizeof(T)) / a2 / (kbp * mr) / nr));
  while (ceil_div(mp, kbp) * ceil_div(np, cbp) < 2 * threads && (kbp > 1 || cbp > 1)) {
    if (cbp >= kbp && cbp > 1) cbp = ceil_div(cbp, 2); else kbp = ceil_div(kbp, 2);
  }
  kbp = balanced(mp, ceil_div(mp, kbp));
  cbp = balanced(np, ceil_div(np, cbp));
  const int64_t nkb = ceil_div(mp, kbp), ncb = ceil_div(np, cbp), kb = kbp * mr, cb = cbp * nr;
  const bool local_mw = nblocks == 1;

  WgradWorkspace<T>& ws = workspace<T>();
  if (int(ws.scratch.size()) < threads) {
    ws.scratch.resize(threads);
    ws.mw_local.resize(threads);
  }
  ws.V.resize(a2 * Npad * nb);
  ws.Y.resize(a2 * Mpad * nb);
  if (!local_mw) ws.Mw.resize(a2 * Mpad * Npad);
  T* V = ws.V.data();
  T* Y = ws.Y.data();
  const int64_t in_img = p.C * p.H * p.W, out_img = p.K * p.OH * p.OW;

  for (int64_t g = 0; g < p.groups; ++g) {
    for (int64_t b = 0; b < nblocks; ++b) {
      const int64_t t0 = b * nb, cnt = std::min(nb, total - t0), nch = ceil_div(cnt, kWinoChunk);
      const int64_t kcs = slice_kc(cnt, uk.kc);  // the reduction slice length of this block
      // 1. Transforms into packed panels: items are (panel of V or of Y, chunk of tiles).
      parallel_for((np + mp) * nch, [&](int64_t item) {
        const int64_t panel = item / nch, j0 = (item % nch) * kWinoChunk, len = std::min(kWinoChunk, cnt - j0);
        const bool is_v = panel < np;
        const int W = is_v ? nr : mr;
        const int64_t first = (is_v ? panel : panel - np) * W, count = is_v ? Cg : Kg, pad = is_v ? Npad : Mpad;
        const int valid = int(std::max<int64_t>(0, std::min<int64_t>(W, count - first)));
        T* dst = is_v ? V : Y;
        const int tid = thread_id();
        ws.scratch[tid].resize(a2 * int64_t(W) * kWinoChunk + 2 * a2 * kWinoChunk);
        T* S = ws.scratch[tid].data();  // S[xi][j][t]: the transforms of this panel's channels
        T* wscr = S + a2 * int64_t(W) * kWinoChunk;
        for (int j = 0; j < valid; ++j) {
          if (is_v)
            wk.input(tx, BT.data(), x + (g * Cg + first + j) * p.H * p.W, in_img, t0 + j0, len,
                     S + j * kWinoChunk, W * kWinoChunk, wscr);
          else
            wk.input(ty, AP.data(), dy + (g * Kg + first + j) * p.OH * p.OW, out_img, t0 + j0, len,
                     S + j * kWinoChunk, W * kWinoChunk, wscr);
        }
        // Tiles j0.. of the chunk into the packed panel, one transposing pack per reduction slice.
        const T* rows[64];  // W <= 48: every micro-kernel tile is at most 48 wide
        for (int64_t tt = 0; tt < len;) {
          const int64_t t = j0 + tt, sl = t / kcs, kk = t % kcs, kc = std::min(kcs, cnt - sl * kcs);
          const int64_t run = std::min(len - tt, kc - kk);
          for (int xi = 0; xi < a2; ++xi) {
            for (int j = 0; j < W; ++j) rows[j] = j < valid ? S + (int64_t(xi) * W + j) * kWinoChunk + tt : nullptr;
            transpose(rows, W, run, dst + xi * pad * nb + sl * kcs * pad + (first / W) * kc * W + kk * W);
          }
          tt += run;
        }
      });
      // 2. GEMMs per output block over all xi, then (last tile block) dW of that block.
      const bool last = b == nblocks - 1;
      parallel_for(nkb * ncb, [&](int64_t item) {
        const int64_t ip0 = (item / ncb) * kbp, jp0 = (item % ncb) * cbp;
        const int64_t ip1 = std::min(mp, ip0 + kbp), jp1 = std::min(np, jp0 + cbp);
        const int tid = thread_id();
        T* C;
        int64_t ldc, cxs;
        if (local_mw) {
          ws.mw_local[tid].resize(a2 * kb * cb);
          C = ws.mw_local[tid].data();
          ldc = cb;
          cxs = kb * cb;
        } else {
          C = ws.Mw.data() + ip0 * mr * Npad + jp0 * nr;
          ldc = Npad;
          cxs = Mpad * Npad;
        }
        for (int xi = 0; xi < a2; ++xi) {
          T* Cx = C + xi * cxs;
          const T* Ax = Y + xi * Mpad * nb;
          const T* Bx = V + xi * Npad * nb;
          for (int64_t pc = 0; pc < cnt; pc += kcs) {
            const int64_t kc = std::min(kcs, cnt - pc);
            const bool acc = pc > 0 || b > 0;
            for (int64_t jp = jp0; jp < jp1; ++jp) {
              const T* bp = Bx + pc * Npad + jp * kc * nr;
              for (int64_t ip = ip0; ip < ip1; ++ip)
                uk.fn(kc, Ax + pc * Mpad + ip * kc * mr, bp, Cx + (ip - ip0) * mr * ldc + (jp - jp0) * nr, ldc, acc);
            }
          }
        }
        if (!last) return;
        const int64_t k1 = std::min(Kg, ip1 * mr), c0 = jp0 * nr, n = std::min(Cg, jp1 * nr) - c0;
        ws.scratch[tid].resize((3 * a + 9) * n);
        for (int64_t k = ip0 * mr; k < k1; ++k)
          gk.output(C + (k - ip0 * mr) * ldc, cxs, n, a, G.data(), ws.scratch[tid].data(),
                    dw + ((g * Kg + k) * Cg + c0) * 9);
      });
    }
  }
}

template void conv2d_winograd_weight_grad<float>(const float*, const float*, float*, const ConvParams&, int);
template void conv2d_winograd_weight_grad<double>(const double*, const double*, double*, const ConvParams&, int);
template int64_t winograd_weight_grad_block<float>(int, int64_t, int64_t, int64_t);
template int64_t winograd_weight_grad_block<double>(int, int64_t, int64_t, int64_t);

}  // namespace fastconv
