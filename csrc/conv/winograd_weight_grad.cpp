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
// Work per group, per block of nb tiles: (1) transform V and Y (parallel over channels and
// chunks of 64 tiles), (2) alpha^2 GEMMs accumulating into Mw (parallel over xi), then once per
// group (3) the output transform of Mw to dW (parallel over k). nb is the GEMM's reduction
// length: large amortises the read-modify-write of Mw, bounded so V + Y stay within 64 MiB.
#include "conv/winograd_weight_grad.h"

#include <algorithm>
#include <vector>

#include "common/cpu.h"
#include "common/gemm.h"
#include "common/parallel.h"
#include "common/workspace.h"
#include "conv/winograd_kernels.h"
#include "conv/winograd_matrices.h"

namespace fastconv {
namespace {

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// Scratch kept per calling thread between calls (as the forward's: re-faulting multi-MiB
// buffers on every call costs about as much as the transforms).
template <typename T>
struct WgradWorkspace {
  AlignedBuffer<T> V, Y, Mw;
  std::vector<AlignedBuffer<T>> scratch, abuf, bbuf;
};

template <typename T>
WgradWorkspace<T>& workspace() {
  thread_local WgradWorkspace<T> ws;
  return ws;
}

// Packs B(t, c) = v[c * ldv + t], t in [k0, k0+kc), c in [n0, n0+nc), into NR-column panels:
// the GEMM's B is the transposed V block (tiles are the reduction dimension).
template <typename T>
void pack_b_transposed(const T* v, int64_t ldv, int64_t k0, int64_t kc, int64_t n0, int64_t nc, int nr, T* dst) {
  for (int64_t j = 0; j < nc; j += nr) {
    const int64_t cols = std::min<int64_t>(nr, nc - j);
    T* d = dst + (j / nr) * kc * nr;
    for (int64_t jj = 0; jj < cols; ++jj) {
      const T* __restrict s = v + (n0 + j + jj) * ldv + k0;
      for (int64_t k = 0; k < kc; ++k) d[k * nr + jj] = s[k];
    }
    for (int64_t jj = cols; jj < nr; ++jj)
      for (int64_t k = 0; k < kc; ++k) d[k * nr + jj] = T(0);
  }
}

// dW[k][c][r][s] = sum_ij G[i][r] Mw[i*a + j][k][c] G[j][s] for the Cg channels of one k
// (c innermost: contiguous in Mw). tmp holds 3 * a * Cg values.
template <typename T>
void output_transform(const T* Mw, int64_t slab, int64_t Cg, int a, const T* G, T* tmp, T* dw) {
  // tmp[i][s][c] = sum_j Mw[i][j][c] G[j][s]
  for (int i = 0; i < a; ++i)
    for (int s = 0; s < 3; ++s) {
      T* __restrict t = tmp + (i * 3 + s) * Cg;
      std::fill(t, t + Cg, T(0));
      for (int j = 0; j < a; ++j) {
        const T gj = G[j * 3 + s];
        if (gj == T(0)) continue;
        const T* __restrict mrow = Mw + (i * a + j) * slab;
        for (int64_t c = 0; c < Cg; ++c) t[c] += gj * mrow[c];
      }
    }
  // dW[c][r][s] = sum_i G[i][r] tmp[i][s][c]
  for (int r = 0; r < 3; ++r)
    for (int s = 0; s < 3; ++s)
      for (int64_t c = 0; c < Cg; ++c) {
        T acc = T(0);
        for (int i = 0; i < a; ++i) acc += G[i * 3 + r] * tmp[(i * 3 + s) * Cg + c];
        dw[c * 9 + r * 3 + s] = acc;
      }
}

}  // namespace

template <typename T>
void conv2d_winograd_weight_grad(const T* x, const T* dy, T* dw, const ConvParams& p, int m) {
  const MicroKernel<T> uk = micro_kernel<T>(active_isa());
  const WinoKernels<T> wk = wino_kernels<T>(active_isa());
  const WinoMatrices& mat = winograd_matrices(m);
  const int a = m + 2, a2 = a * a, mr = uk.mr, nr = uk.nr;
  std::vector<T> BT(mat.BT.begin(), mat.BT.end()), G(mat.G.begin(), mat.G.end());
  std::vector<T> AP(a2, T(0));  // BT' of the file comment: A padded to alpha x alpha
  for (int i = 0; i < a; ++i)
    for (int l = 0; l < m; ++l) AP[i * a + l] = T(mat.AT[l * a + i]);

  const int64_t Kg = p.Kg(), Cg = p.Cg(), TH = ceil_div(p.OH, m), TW = ceil_div(p.OW, m);
  const WinoTiling tx{m, a, p.H, p.W, p.OH, p.OW, p.pad_h, p.pad_w, TH, TW};
  const WinoTiling ty{m, a, p.OH, p.OW, p.OH, p.OW, 0, 0, TH, TW};
  const int64_t total = p.N * TH * TW;

  // Block size (see the file comment): a whole number of the micro-kernel's reduction slices
  // where memory allows, since every slice re-reads and re-writes the Mw block.
  const int64_t per_tile = int64_t(a2) * (Cg + Kg) * int64_t(sizeof(T));
  int64_t nb = std::max<int64_t>((int64_t(64) << 20) / per_tile, 32);
  nb = std::min<int64_t>(nb, 4 * int64_t(uk.kc));
  if (nb >= uk.kc) nb = nb / uk.kc * uk.kc;
  nb = std::min<int64_t>(round_up(nb, 16), total);

  WgradWorkspace<T>& ws = workspace<T>();
  const int threads = max_threads();
  if (int(ws.scratch.size()) < threads) {
    ws.scratch.resize(threads);
    ws.abuf.resize(threads);
    ws.bbuf.resize(threads);
  }
  ws.V.resize(a2 * Cg * nb);
  ws.Y.resize(a2 * Kg * nb);
  ws.Mw.resize(a2 * Kg * Cg);
  T* V = ws.V.data();
  T* Y = ws.Y.data();
  T* Mw = ws.Mw.data();
  const int64_t slab = Kg * Cg, in_img = p.C * p.H * p.W, out_img = p.K * p.OH * p.OW;
  const int64_t nblocks = ceil_div(total, nb);

  for (int64_t g = 0; g < p.groups; ++g) {
    for (int64_t b = 0; b < nblocks; ++b) {
      const int64_t t0 = b * nb, cnt = std::min(nb, total - t0), nch = ceil_div(cnt, kWinoChunk);
      // V rows [c][t] and Y rows [k][t] of this block, one fork for both.
      parallel_for((Cg + Kg) * nch, [&](int64_t item) {
        const int64_t ch = item / nch, j0 = (item % nch) * kWinoChunk, len = std::min(kWinoChunk, cnt - j0);
        const int tid = thread_id();
        ws.scratch[tid].resize(2 * a2 * kWinoChunk);
        if (ch < Cg)
          wk.input(tx, BT.data(), x + (g * Cg + ch) * p.H * p.W, in_img, t0 + j0, len, V + ch * nb + j0, Cg * nb,
                   ws.scratch[tid].data());
        else
          wk.input(ty, AP.data(), dy + (g * Kg + ch - Cg) * p.OH * p.OW, out_img, t0 + j0, len,
                   Y + (ch - Cg) * nb + j0, Kg * nb, ws.scratch[tid].data());
      });
      // Mw[xi] (+)= Y[xi] V[xi]^T, reduction over the block's tiles.
      parallel_for(a2, [&](int64_t xi) {
        const int tid = thread_id();
        ws.abuf[tid].resize(round_up(Kg, mr) * uk.kc);
        ws.bbuf[tid].resize(uk.kc * round_up(uk.nc, nr));
        const T* Yx = Y + xi * Kg * nb;
        const T* Vx = V + xi * Cg * nb;
        T* abuf = ws.abuf[tid].data();
        gemm_driver(
            uk, Kg, cnt, 0, Cg,
            [&](int64_t k0, int64_t kc) {
              pack_a_strided(Yx, nb, 1, 0, Kg, k0, kc, mr, abuf);
              return static_cast<const T*>(abuf);
            },
            [&](int64_t k0, int64_t kc, int64_t j0, int64_t nc, T* dst) {
              pack_b_transposed(Vx, nb, k0, kc, j0, nc, nr, dst);
            },
            Mw + xi * slab, Cg, b > 0, ws.bbuf[tid].data());
      });
    }
    parallel_for(Kg, [&](int64_t k) {
      const int tid = thread_id();
      ws.scratch[tid].resize(std::max<int64_t>(2 * a2 * kWinoChunk, 3 * a * Cg));
      output_transform(Mw + k * Cg, slab, Cg, a, G.data(), ws.scratch[tid].data(), dw + (g * Kg + k) * Cg * 9);
    });
  }
}

template void conv2d_winograd_weight_grad<float>(const float*, const float*, float*, const ConvParams&, int);
template void conv2d_winograd_weight_grad<double>(const double*, const double*, double*, const ConvParams&, int);

}  // namespace fastconv
