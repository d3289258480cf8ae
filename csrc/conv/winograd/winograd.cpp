// Winograd F(m x m, r x r) convolution driver, r = 3 or 5 (see winograd.h for the algorithm).
//
// Two drivers, per group (and a third for few tiles without cached U, winograd_tile_rows: the tiles
// in the micro-kernel's MR-row panels, output channels in its NR columns; see winograd_forward_tile_rows):
//
// Tile blocks (few channels): blocks of nb tiles (tiles numbered over images, rows, columns; nb a
// multiple of the micro-kernel's nr columns), each block's three phases back to back so its
// V and M stay in L2:
//   1. input transform   V[xi][jp][c][nr]: written straight into the GEMM's packed B panels
//                        (panel jp holds tiles jp*nr ..), parallel over (channel, panel)
//   2. alpha^2 GEMMs     M[xi][k][t] = sum_c U[xi][k][c] V[xi][c][t], parallel over row blocks
//                        of np A panels; per (row block, channel slice) every xi runs, so the
//                        A panels of that block can be transformed right there (see 'fused')
//   3. output transform  y tiles + bias (+ReLU)  parallel over (output channel, chunk)
// nb is chosen so V and M of a block stay within one core's L2 when U is small, and is kept
// >= 128 when U is large (U streams from memory once per block, so nb is its reuse factor),
// never above a 32 MiB cap. With many blocks each thread takes whole blocks; with few (batch 1
// on deep layers) every phase splits over channels / row blocks, so batch 1 also uses every core.
//
// Element-major (winograd_by_element: Cg + Kg >= 192 and U cached or >= 96 tiles): a tile's
// V + M is then alpha^2 (Cg + Kg) values, 27 KiB and up, so an L2-sized tile block holds too few
// tiles to reuse U's panels and the GEMMs stream V from L3 once per row block. Instead the
// same phases run over blocks of up to kWinoElementBytes of V + M (usually all tiles, in L3),
// and phase 2 runs one whole GEMM per xi, parallel over xi (and row blocks when xi are too few
// for the threads): U_xi, V_xi and M_xi (256 KiB each at 256 channels, 196 tiles) stay in the L2
// of the thread on that xi, and U is read once per block. 256->256 @56 N=1 at F(4,3): 9.9 ->
// 5.7 ms on 2 Xeon cores.
//
// Weights: cached U (pre-packed A panels) is read in place. Without it, the tile-block driver
// with few blocks (deep layers) transforms each (row block, channel slice) of the filters into
// an L2-sized buffer just before its GEMMs: a whole U is 4x (F(4,3)) the filters, 36 MiB at 512
// channels, and writing then re-reading it cost more than the GEMMs of a 14x14 map. Otherwise
// U is transformed once per call and reused by every block.
#include "conv/flip.h"
#include "conv/winograd/winograd.h"

#include <algorithm>
#include <vector>

#include "common/cpu.h"
#include "common/gemm.h"
#include "common/kernel_list.h"
#include "common/parallel.h"
#include "common/transpose.h"
#include "common/workspace.h"
#include "conv/winograd/winograd_kernels.h"
#include "conv/winograd/winograd_matrices.h"

namespace fastconv {
namespace {

// Offset of U(k, c) in one (group, xi) slab packed like pack_a_all: kc-slices of the
// reduction (channel) dimension, each holding every mr-row panel.
int64_t packed_index(int64_t k, int64_t c, int64_t Cg, int64_t mpad, int mr, int64_t kcb) {
  const int64_t pc = c / kcb * kcb, kc = std::min<int64_t>(kcb, Cg - pc);
  return pc * mpad + (k / mr) * kc * mr + (c - pc) * mr + k % mr;
}

// Scratch kept per calling thread between calls: fresh multi-MiB allocations are page-faulted
// in on every call (about as slow as the transform itself), so the buffers are reused. What
// is retained is the largest workspace used so far (see winograd.h for the bounds).
template <typename T>
struct WinoWorkspace {
  AlignedBuffer<T> U;
  std::vector<AlignedBuffer<T>> V, M, scratch, ublk;  // per thread; ublk: fused A panels
  void ensure(size_t threads) {
    if (V.size() < threads) { V.resize(threads); M.resize(threads); scratch.resize(threads); ublk.resize(threads); }
  }
};

template <typename T>
WinoWorkspace<T>& workspace() {
  thread_local WinoWorkspace<T> ws;
  return ws;
}

template <typename T>
std::vector<T> cast(const std::vector<double>& v) {
  return std::vector<T>(v.begin(), v.end());
}

// Transforms the filters of rows [k0, k0 + np * mr) (whole panels; rows >= Kg are zero) and
// channels [pc, pc + kc) of group g into Ublk[xi * ustride + (panel * kc + c) * mr + kk]: each xi slab holds the packed
// A panels of that (row block, channel slice), the layout the GEMMs read from cached U too.
// src: weight_block_scratch(np, kc, mr, r) values.
int64_t weight_block_scratch(int64_t np, int64_t kc, int mr, int r) { return r * r * (np + 1) * kc * mr; }

template <typename T>
void transform_weight_block(const WinoKernels<T>& wk, TransposePanelFn<T> transpose, int a, int r, const T* G,
                            const T* w, int64_t Kg, int64_t Cg, int64_t g, int64_t k0, int64_t np, int64_t pc,
                            int64_t kc, int mr, T* src, T* Ublk, int64_t ustride) {
  const int64_t L = np * kc * mr, taps = r * r;
  T* tmp = src + taps * L;  // one panel's filters, transposed: tmp[(c * taps + ab) * mr + kk]
  const T* rows[64];
  for (int64_t ip = 0; ip < np; ++ip) {
    // A panel's mr filters hold kc * taps contiguous taps each: one in-register transpose makes
    // the mr values of each (channel, tap) adjacent (element-wise gathers took 3x the time of
    // the transform itself on 512 channels), then every (channel, tap) run moves to its slab.
    for (int kk = 0; kk < mr; ++kk) {
      const int64_t k = k0 + ip * mr + kk;
      rows[kk] = k < Kg ? w + ((g * Kg + k) * Cg + pc) * taps : nullptr;
    }
    transpose(rows, mr, kc * taps, tmp);
    T* d = src + ip * kc * mr;
    for (int64_t c = 0; c < kc; ++c)
      for (int ab = 0; ab < taps; ++ab) std::copy_n(tmp + (c * taps + ab) * mr, mr, d + ab * L + c * mr);
  }
  wk.weight(a, r, G, src, L, Ublk, ustride);
}


// Most tiles (per group) the tile-rows driver takes: it runs one block of all of them.
constexpr int64_t kWinoRowsMaxTiles = 128;

// The micro-kernel for the tile-rows GEMMs M^T[tiles x Kg] = V^T U^T (tiles in MR-row panels,
// output channels in NR-column panels): the ISA's tile that pads tiles x Kg least, among those
// of 8 rows or more. The transforms write the tiles in MR-row panels, and 6-row panels (the
// 6x64 tile) ran the whole conv 1.8x slower (64 -> 64 at 56x56, F(6,3): 0.66 -> 1.17 ms).
template <typename T>
MicroKernel<T> rows_kernel(Isa isa, int64_t tiles, int64_t Kg) {
  MicroKernel<T> best = micro_kernel<T>(isa);
  int64_t best_work = round_up(tiles, best.mr) * round_up(Kg, best.nr);
  for (const auto* v : gemm_kernels<T>().candidates(isa)) {
    if (v->kernels.mr < 8) continue;
    const int64_t work = round_up(tiles, v->kernels.mr) * round_up(Kg, v->kernels.nr);
    if (work < best_work) best = v->kernels, best_work = work;
  }
  return best;
}

}  // namespace

// Whether the tile-rows driver runs: few tiles (per group), and its padded GEMM (tiles rounded up
// to MR rows, Kg to NR columns) at least 10% smaller than the tile-block driver's (tiles rounded
// up to NR columns, Kg to MR rows). 13x13 / 14x14 maps at F(2,3): 49 tiles, 56 x 384 against
// 64 x 384 (384 channels); at F(4,3): 16 tiles, 16 x 288 against 32 x 264 (256 channels).
template <typename T>
int64_t winograd_tile_rows(int64_t tiles, int64_t Kg, bool weights_cached) {
  if (weights_cached || tiles > kWinoRowsMaxTiles || tiles == 0) return 0;
  const Isa isa = active_isa();
  const MicroKernel<T> cols = micro_kernel<T>(isa), rows = rows_kernel<T>(isa, tiles, Kg);
  const int64_t work = round_up(tiles, rows.mr) * round_up(Kg, rows.nr);
  return double(work) < 0.9 * double(round_up(tiles, cols.nr)) * round_up(Kg, cols.mr) ? work : 0;
}

namespace {

// transform_weight_block for the adjoint of a conv with weights w[K][Cg][r][r] (the input
// gradient's kernel: flipped, channels swapped), read in place: adjoint output channels
// [j0, j0 + np * nr) (the forward's input channels; >= Kg (= forward Cg) zero) and reduction
// slice [pc, pc + kc) (the forward's output channels) of group g into Ublk's packed panels.
// Kg, Cg: the adjoint's per-group channels. src: at least r * r * np * kc * nr values.
template <typename T>
void transform_flipped_weight_block(const WinoKernels<T>& wk, int a, int r, const T* G, const T* w, int64_t Kg,
                                    int64_t Cg, int64_t g, int64_t j0, int64_t np, int64_t pc, int64_t kc, int nr,
                                    T* src, T* Ublk, int64_t ustride) {
  const int64_t L = np * kc * nr, taps = r * r;
  for (int64_t ip = 0; ip < np; ++ip) {
    const int64_t jb = j0 + ip * nr, valid = std::max<int64_t>(0, std::min<int64_t>(nr, Kg - jb));
    for (int64_t c = 0; c < kc; ++c) {
      // forward filter (g * Cg + pc + c, jb + kk): taps contiguous, filters kk taps apart
      const T* base = w + ((g * Cg + pc + c) * Kg + jb) * taps;
      for (int64_t rs = 0; rs < taps; ++rs) {
        T* d = src + (taps - 1 - rs) * L + ip * kc * nr + c * nr;
        for (int64_t kk = 0; kk < valid; ++kk) d[kk] = base[kk * taps + rs];
        for (int64_t kk = valid; kk < nr; ++kk) d[kk] = T(0);
      }
    }
  }
  wk.weight(a, r, G, src, L, Ublk, ustride);
}

// transform_weight_block for panels whose width nr is a whole number of 64-byte vectors: the
// weight kernel reads the transposed filters in place, one channel's nr filters at a time (the
// transpose's [c][tap][nr] rows are its [tap][L = nr] input), so no copy into [tap][L] planes.
template <typename T>
void transform_weight_panels(const WinoKernels<T>& wk, TransposePanelFn<T> transpose, int a, int r, const T* G,
                             const T* w, int64_t Kg, int64_t Cg, int64_t g, int64_t k0, int64_t np, int64_t pc,
                             int64_t kc, int nr, T* tmp, T* Ublk, int64_t ustride) {
  const int64_t taps = r * r;
  const T* rows[64];
  for (int64_t ip = 0; ip < np; ++ip) {
    for (int kk = 0; kk < nr; ++kk) {
      const int64_t k = k0 + ip * nr + kk;
      rows[kk] = k < Kg ? w + ((g * Kg + k) * Cg + pc) * taps : nullptr;
    }
    transpose(rows, nr, kc * taps, tmp);  // tmp[(c * taps + ab) * nr + kk]
    for (int64_t c = 0; c < kc; ++c) wk.weight(a, r, G, tmp + c * taps * nr, nr, Ublk + (ip * kc + c) * nr, ustride);
  }
}

// transform_flipped_weight_block with NR a whole number of 64-byte vectors: per (panel, reduction
// channel) the NR filters' taps (NR * r * r contiguous values) are transposed in one call of the
// in-register transpose as NR rows of round_up(r * r, 16) values (rows overlap; the values past
// r * r are not read back), and the flip goes into the transform matrix: flip(g) = J g J, so
// G flip(g) G^T = (G J) g (G J)^T with Gflip = G J (G's columns reversed). The element-wise
// gather it replaces took 42% of dx at 512->512 @7. Blocks whose over-read would pass the end of
// w (the last filters) take transform_flipped_weight_block. tmp: round_up(r * r, 16) * nr values.
template <typename T>
void transform_flipped_weight_panels(const WinoKernels<T>& wk, TransposePanelFn<T> transpose, int a, int r,
                                     const T* G, const T* Gflip, const T* w, const T* w_end, int64_t Kg, int64_t Cg,
                                     int64_t g, int64_t j0, int64_t np, int64_t pc, int64_t kc, int nr, T* tmp,
                                     T* Ublk, int64_t ustride) {
  const int64_t taps = r * r, count = round_up(taps, 16);
  const T* rows[64];
  for (int64_t ip = 0; ip < np; ++ip) {
    const int64_t jb = j0 + ip * nr, valid = std::max<int64_t>(0, std::min<int64_t>(nr, Kg - jb));
    for (int64_t c = 0; c < kc; ++c) {
      const T* base = w + ((g * Cg + pc + c) * Kg + jb) * taps;
      T* U = Ublk + (ip * kc + c) * nr;
      if (valid > 0 && base + (valid - 1) * taps + count > w_end) {
        transform_flipped_weight_block(wk, a, r, G, w, Kg, Cg, g, jb, 1, pc + c, 1, nr, tmp, U, ustride);
        continue;
      }
      // The blocks of successive c lie Kg * taps apart: too short a stream for the hardware
      // prefetchers, so the block two channels ahead is requested here.
      if (c + 2 < kc)
        for (int64_t l = 0; l < valid * taps; l += 64 / int64_t(sizeof(T))) __builtin_prefetch(base + 2 * Kg * taps + l);
      for (int kk = 0; kk < nr; ++kk) rows[kk] = kk < valid ? base + kk * taps : nullptr;
      transpose(rows, nr, count, tmp);  // tmp[rs * nr + kk] for rs < taps
      wk.weight(a, r, Gflip, tmp, nr, U, ustride);
    }
  }
}

// The tile-rows driver (see winograd_tile_rows): per group, one block of all `total` tiles.
//   1. input transform  V[xi][ip][c][mr]: the GEMM's packed A panels (tiles ip*mr ..), parallel
//                       over channels (each transformed over all tiles at once, then dealt out)
//   2. items of output-channel chunks (whole NR panels, about two per thread): per reduction
//      slice, the chunk's filters are transformed into packed B panels Ublk[xi][panel][c][nr]
//      (so W is read once per call), then every xi's GEMM M^T[xi][t][k] (+)= V^T U^T; last the
//      chunk's M^T is transposed per xi to M[xi][k][t] and the output transform writes y.
// flipped: p is the input gradient's adjoint conv and w the forward's weights (read in place by
// transform_flipped_weight_block, no flipped copy).
template <typename T>
void winograd_forward_tile_rows(const T* x, const T* w, const T* bias, T* y, const ConvParams& p, int m, bool relu,
                                bool flipped = false) {
  const Isa isa = active_isa();
  const WinoKernels<T> wk = wino_kernels<T>(isa);
  const TransposePanelFn<T> transpose = transpose_panel<T>(isa);
  const int r = int(p.R);
  const WinoMatrices& mat = winograd_matrices(m, r);
  const std::vector<T> AT = cast<T>(mat.AT), BT = cast<T>(mat.BT), Gm = cast<T>(mat.G);
  const int a = m + r - 1, a2 = a * a;
  const int64_t G = p.groups, Kg = p.Kg(), Cg = p.Cg();
  std::vector<T> Gflip(Gm.size());  // G J: columns reversed (transform_flipped_weight_panels)
  for (int i = 0; i < a; ++i)
    for (int k = 0; k < r; ++k) Gflip[i * r + k] = Gm[i * r + r - 1 - k];
  const T* w_end = w + p.C * Kg * r * r;  // flipped: the forward weights, p.C filters of Kg channels
  const WinoTiling tl{m, a, p.H, p.W, p.OH, p.OW, p.pad_h, p.pad_w, ceil_div(p.OH, m), ceil_div(p.OW, m)};
  const int64_t total = p.N * tl.TH * tl.TW;
  const MicroKernel<T> uk = rows_kernel<T>(isa, total, Kg);
  const int mr = uk.mr, nr = uk.nr;
  const int64_t tpad = round_up(total, mr), nrp = tpad / mr, kcb = slice_kc(Cg, uk.kc);
  const int64_t tstride = round_up(total, 16);  // a channel's transformed tiles, per xi
  const int threads = max_threads();
  const int64_t skew = 64 / int64_t(sizeof(T));
  const int64_t vxs = Cg * tpad + skew;  // V slab per xi: nrp panels of Cg x mr
  // Output-channel chunks of whole NR panels, about two per thread (each transforms only its
  // own filters), fewer when a chunk's transformed panels of one slice (a2 * cols * kcb) would
  // outgrow half of L2.
  const int64_t npanels = ceil_div(Kg, int64_t(nr));
  const int64_t want = std::max<int64_t>(1, ceil_div(2 * threads, G));
  int64_t pstep = ceil_div(npanels, std::min(npanels, want));
  while (pstep > 1 && a2 * pstep * nr * kcb * int64_t(sizeof(T)) > (int64_t(1) << 20)) pstep = ceil_div(pstep, 2);
  const int64_t cchunks = ceil_div(npanels, pstep), cstep = pstep * nr;
  const int64_t ldm = cstep + skew;  // M^T row stride (a cache line past the chunk's columns)
  const int64_t mxs = tpad * ldm;    // M^T slab per xi
  WinoWorkspace<T>& wsp = workspace<T>();
  wsp.ensure(threads);
  wsp.V[0].resize(a2 * vxs);
  T* V = wsp.V[0].data();
  const int64_t in_img = p.C * p.H * p.W, out_img = p.K * p.OH * p.OW;

  for (int64_t g = 0; g < G; ++g) {
    // 1. Input transform: each channel over all tiles (full vectors), then dealt out into the
    // MR-row panels; rows past the last tile are zero.
    parallel_for(Cg, [&](int64_t c) {
      const int tid = thread_id();
      wsp.scratch[tid].resize(2 * a2 * kWinoChunk + a2 * tstride);
      T* sc = wsp.scratch[tid].data();
      T* tmp = sc + 2 * a2 * kWinoChunk;
      for (int64_t t0 = 0; t0 < total; t0 += kWinoChunk)
        wk.input(tl, BT.data(), x + (g * Cg + c) * p.H * p.W, in_img, t0, std::min(kWinoChunk, total - t0), tmp + t0,
                 tstride, sc);
      for (int xi = 0; xi < a2; ++xi) {
        const T* s = tmp + xi * tstride;
        T* d = V + xi * vxs + c * mr;
        for (int64_t ip = 0; ip < nrp; ++ip) {
          const int64_t cnt = std::min<int64_t>(mr, total - ip * mr);
          std::copy_n(s + ip * mr, cnt, d + ip * Cg * mr);
          std::fill(d + ip * Cg * mr + cnt, d + ip * Cg * mr + mr, T(0));
        }
      }
    });
    // 2. GEMMs and output transform per output-channel chunk.
    parallel_for(cchunks, [&](int64_t cc) {
      const int64_t k0 = cc * cstep, np = std::min(pstep, npanels - cc * pstep), ncols = np * nr;
      const int64_t k1 = std::min(Kg, k0 + ncols);
      const int tid = thread_id();
      wsp.ublk[tid].resize(a2 * np * kcb * nr);
      wsp.M[tid].resize(a2 * mxs);
      wsp.scratch[tid].resize(std::max<int64_t>(weight_block_scratch(np, kcb, nr, r), 2 * a2 * kWinoChunk) +
                              a2 * cstep * tstride);
      T* ub = wsp.ublk[tid].data();
      T* Mt = wsp.M[tid].data();
      T* sc = wsp.scratch[tid].data();
      for (int64_t pc = 0; pc < Cg; pc += kcb) {
        const int64_t kc = std::min<int64_t>(kcb, Cg - pc), ustride = np * kc * nr;
        if (flipped && nr % (64 / int(sizeof(T))) == 0)
          transform_flipped_weight_panels(wk, transpose, a, r, Gm.data(), Gflip.data(), w, w_end, Kg, Cg, g, k0, np, pc,
                                          kc, nr, sc, ub, ustride);
        else if (flipped)
          transform_flipped_weight_block(wk, a, r, Gm.data(), w, Kg, Cg, g, k0, np, pc, kc, nr, sc, ub, ustride);
        else if (nr % (64 / int(sizeof(T))) == 0)
          transform_weight_panels(wk, transpose, a, r, Gm.data(), w, Kg, Cg, g, k0, np, pc, kc, nr, sc, ub, ustride);
        else
          transform_weight_block(wk, transpose, a, r, Gm.data(), w, Kg, Cg, g, k0, np, pc, kc, nr, sc, ub, ustride);
        for (int xi = 0; xi < a2; ++xi) {
          const T* A = V + xi * vxs + pc * mr;
          const T* B = ub + xi * ustride;
          T* C = Mt + xi * mxs;
          // B panel outer: one B panel stays in L1 while the tile panels stream from L2.
          for (int64_t jp = 0; jp < np; ++jp)
            for (int64_t ip = 0; ip < nrp; ++ip)
              uk.fn(kc, A + ip * Cg * mr, B + jp * kc * nr, C + ip * mr * ldm + jp * nr, ldm, pc > 0);
        }
      }
      // M^T[xi][t][k - k0] -> M[xi][k - k0][t] (row stride tstride), then the output transform.
      T* Mk = sc + std::max<int64_t>(weight_block_scratch(np, kcb, nr, r), 2 * a2 * kWinoChunk);
      const T* rows[kWinoRowsMaxTiles];
      for (int xi = 0; xi < a2; ++xi) {
        for (int64_t t = 0; t < total; ++t) rows[t] = Mt + xi * mxs + t * ldm;
        transpose(rows, int(total), k1 - k0, Mk + xi * (k1 - k0) * tstride);  // rows of `total` values
      }
      for (int64_t k = k0; k < k1; ++k)
        for (int64_t t0 = 0; t0 < total; t0 += kWinoChunk)
          wk.output(tl, AT.data(), Mk + (k - k0) * total + t0, (k1 - k0) * tstride, t0,
                    std::min(kWinoChunk, total - t0), bias ? bias[g * Kg + k] : T(0), relu,
                    y + (g * Kg + k) * p.OH * p.OW, out_img, sc);
    });
  }
}

}  // namespace

int64_t winograd_weights_size(int64_t K, int64_t Cg, int64_t groups, int m, int r, int mr) {
  const int64_t a = m + r - 1;
  return groups * a * a * round_up(K / groups, mr) * Cg;
}

template <typename T>
WinoPackInfo winograd_pack_info() {
  const MicroKernel<T> uk = micro_kernel<T>(active_isa());
  return {uk.mr, uk.kc};
}

bool winograd_by_element(int64_t Cg, int64_t Kg, int64_t tiles, bool weights_cached) {
  return Cg + Kg >= 192 && (weights_cached || tiles >= 96);
}

const char* winograd_unsupported(const ConvParams& p) {
  if (p.R != p.S || (p.R != 3 && p.R != 5)) return "Winograd needs a 3x3 or 5x5 kernel";
  if (p.stride_h != 1 || p.stride_w != 1) return "Winograd needs stride 1";
  if (p.dil_h != 1 || p.dil_w != 1) return "Winograd needs dilation 1";
  return nullptr;
}

template <typename T>
WinoPackInfo winograd_transform_weights(const T* w, int64_t K, int64_t Cg, int64_t groups, int m, int r, T* U) {
  const WinoPackInfo info = winograd_pack_info<T>();
  const WinoKernels<T> wk = wino_kernels<T>(active_isa());
  const TransposePanelFn<T> transpose = transpose_panel<T>(active_isa());
  const std::vector<T> G = cast<T>(winograd_matrices(m, r).G);
  // Slices of the reduction over Cg exactly as gemm_driver takes them (slice_kc).
  const int a = m + r - 1, mr = info.mr;
  const int64_t kcb = slice_kc(Cg, info.kc);
  const int64_t Kg = K / groups, mpad = round_up(Kg, mr), slab = mpad * Cg;
  const int64_t npanels = mpad / mr, nslices = ceil_div(Cg, kcb);
  const int threads = max_threads();
  std::vector<AlignedBuffer<T>> srcs(threads);
  // One item = one (group, channel slice, row panel), written where pack_a_all would put it.
  parallel_for(groups * nslices * npanels, [&](int64_t item) {
    const int64_t panel = item % npanels, rest = item / npanels, s = rest % nslices, g = rest / nslices;
    const int64_t pc = s * kcb, kc = std::min<int64_t>(kcb, Cg - pc);
    const int tid = thread_id();
    srcs[tid].resize(weight_block_scratch(1, kcb, mr, r));
    transform_weight_block(wk, transpose, a, r, G.data(), w, Kg, Cg, g, panel * mr, 1, pc, kc, mr, srcs[tid].data(),
                           U + g * a * a * slab + pc * mpad + panel * kc * mr, slab);
  });
  return info;
}

template <typename T>
void conv2d_winograd_forward(const T* x, const T* w, const T* U, WinoPackInfo info, const T* bias,
                             T* y, const ConvParams& p, int m, bool relu) {
  const MicroKernel<T> uk = micro_kernel<T>(active_isa());
  const WinoKernels<T> wk = wino_kernels<T>(active_isa());
  const TransposePanelFn<T> transpose = transpose_panel<T>(active_isa());
  const int r = int(p.R);
  const WinoMatrices& mat = winograd_matrices(m, r);
  const std::vector<T> AT = cast<T>(mat.AT), BT = cast<T>(mat.BT), Gm = cast<T>(mat.G);
  const int a = m + r - 1, a2 = a * a, mr = uk.mr, nr = uk.nr;
  const int64_t G = p.groups, Kg = p.Kg(), Cg = p.Cg(), mpad = round_up(Kg, mr), slab = mpad * Cg;
  const WinoTiling tl{m, a, p.H, p.W, p.OH, p.OW, p.pad_h, p.pad_w, ceil_div(p.OH, m), ceil_div(p.OW, m)};
  const int64_t total = p.N * tl.TH * tl.TW;
  const int threads = max_threads();
  WinoWorkspace<T>& wsp = workspace<T>();
  wsp.ensure(threads);

  if (winograd_tile_rows<T>(total, Kg, U != nullptr)) {
    winograd_forward_tile_rows(x, w, bias, y, p, m, relu);
    return;
  }

  if (U != nullptr && (info.mr != uk.mr || info.kc != uk.kc)) {
    // Packed under another ISA: move every value to its place in this ISA's panels.
    const int64_t mpad_src = round_up(Kg, info.mr), slab_src = mpad_src * Cg;
    wsp.U.resize(winograd_weights_size(p.K, Cg, G, m, r, mr));
    T* dst = wsp.U.data();
    parallel_for(G * a2, [&](int64_t gx) {
      const T* s = U + gx * slab_src;
      T* d = dst + gx * slab;
      std::fill(d, d + slab, T(0));
      for (int64_t k = 0; k < Kg; ++k)
        for (int64_t c = 0; c < Cg; ++c)
          d[packed_index(k, c, Cg, mpad, mr, slice_kc(Cg, uk.kc))] =
              s[packed_index(k, c, Cg, mpad_src, info.mr, slice_kc(Cg, info.kc))];
    });
    U = dst;
  }

  // Tile block size (see the file comment), a multiple of the micro-kernel's nr columns.
  const int64_t per_tile = int64_t(a2) * (Cg + mpad) * int64_t(sizeof(T));
  const int64_t u_group_bytes = int64_t(a2) * Kg * Cg * int64_t(sizeof(T));
  int64_t nb = (int64_t(1) << 20) / per_tile;  // 1 MiB of V + M: half of one core's L2
  nb = std::max<int64_t>(nb, u_group_bytes > (int64_t(1) << 20) ? 128 : 32);
  // All threads' blocks together stay within 32 MiB (threads may each hold one).
  nb = std::min<int64_t>(nb, std::max<int64_t>(int64_t(32), (int64_t(32) << 20) / threads / per_tile));
  nb = std::min<int64_t>(nb, total);
  int64_t nblocks = ceil_div(total, nb);
  nb = round_up(ceil_div(total, nblocks), nr);  // balanced blocks, whole B panels
  nblocks = ceil_div(total, nb);

  // Weights: without cached U, few tile blocks transform them on the fly per (row block,
  // channel slice) into an L2-sized buffer (never writing / reading a whole U, which at 512
  // channels is 36-64 MiB); many blocks transform them once into U and reuse it.
  // Element-major when a tile's V + M (per_tile) is too big for tile blocks that fit L2 to reuse
  // the A panels well, and U is cached or amortised over enough tiles (see winograd.h).
  const bool by_element = winograd_by_element(Cg, Kg, total, U != nullptr);
  const int64_t nbe_cap = std::max<int64_t>(nr, kWinoElementBytes / per_tile / nr * nr);
  const int64_t nbe = round_up(ceil_div(total, ceil_div(total, nbe_cap)), nr);  // balanced blocks
  const bool fused = !by_element && U == nullptr && G * nblocks <= 2 * threads;
  if (U == nullptr && !fused) {  // (by_element included)
    wsp.U.resize(winograd_weights_size(p.K, Cg, G, m, r, mr));
    winograd_transform_weights<T>(w, p.K, Cg, G, m, r, wsp.U.data());
    U = wsp.U.data();
  }
  const int64_t kcb = slice_kc(Cg, uk.kc), npanels = mpad / mr;
  // Row blocks of np panels: up to 4 (B panels reused across them from L1), fewer when that
  // leaves too few blocks to share among the threads.
  const int64_t np = std::max<int64_t>(1, std::min<int64_t>(4, npanels / (4 * threads)));
  const int64_t nkb = ceil_div(npanels, np);

  const bool outer = G * nblocks >= 2 * threads;
  std::vector<AlignedBuffer<T>>&Vs = wsp.V, &Ms = wsp.M, &scratch = wsp.scratch, &ublk = wsp.ublk;
  const int64_t in_img = p.C * p.H * p.W, out_img = p.K * p.OH * p.OW;
  // V[xi][jp][c][nr], M[xi][k][t]. The transforms touch all alpha^2 xi slabs at once: one
  // extra cache line per slab keeps slabs that are 4 KiB multiples apart from all landing in
  // one L1 set (36-64 streams thrashing 12 ways).
  const int64_t skew = 64 / int64_t(sizeof(T));
  const int64_t vxs = Cg * nb + skew, mxs = mpad * nb + skew;

  // One xi's GEMM on rows [ip0 * mr, (ip0 + cnt_p) * mr) for reduction slice [pc, pc + kc):
  // Ax its A panels, Vx / Mx its V / M slabs laid out for ncols columns (B panel outer, so one
  // B panel stays in L1 across the row panels).
  auto xi_gemm = [&](const T* Ax, const T* Vx, T* Mx, int64_t ip0, int64_t cnt_p, int64_t pc, int64_t kc,
                     int64_t ncols) {
    for (int64_t jp = 0; jp < ncols / nr; ++jp) {
      const T* B = Vx + jp * Cg * nr + pc * nr;
      T* C = Mx + ip0 * mr * ncols + jp * nr;
      for (int64_t ip = 0; ip < cnt_p; ++ip) uk.fn(kc, Ax + ip * kc * mr, B, C + ip * mr * ncols, ncols, pc > 0);
    }
  };

  // M rows [ip0 * mr, (ip0 + cnt_p) * mr) of block (g, V) for every xi.
  auto gemm_rows = [&](int64_t g, const T* V, T* M, int64_t ip0, int64_t cnt_p, int tid) {
    for (int64_t pc = 0; pc < Cg; pc += kcb) {
      const int64_t kc = std::min<int64_t>(kcb, Cg - pc);
      const T* A;
      int64_t axs;  // distance between xi slabs of A
      if (fused) {
        scratch[tid].resize(std::max<int64_t>(weight_block_scratch(np, kcb, mr, r), 2 * a2 * kWinoChunk));
        ublk[tid].resize(a2 * np * kcb * mr);
        transform_weight_block(wk, transpose, a, r, Gm.data(), w, Kg, Cg, g, ip0 * mr, cnt_p, pc, kc, mr, scratch[tid].data(),
                               ublk[tid].data(), cnt_p * kc * mr);
        A = ublk[tid].data();
        axs = cnt_p * kc * mr;
      } else {
        A = U + g * a2 * slab + pc * mpad + ip0 * kc * mr;
        axs = slab;
      }
      for (int xi = 0; xi < a2; ++xi) xi_gemm(A + xi * axs, V + xi * vxs, M + xi * mxs, ip0, cnt_p, pc, kc, nb);
    }
  };

  // Phases of one block of cnt tiles from t0, its V / M laid out for nbk columns.
  auto transform_input = [&](int64_t g, int64_t t0, int64_t cnt, int64_t nbk, int64_t vstride, T* V) {
    const int64_t nch = ceil_div(cnt, int64_t(nr));
    if (cnt < nbk) {  // columns past the last tile: zero, so the GEMM reads no stale NaNs
      const int64_t jp = cnt / nr, t = cnt % nr;
      for (int xi = 0; xi < a2; ++xi)
        for (int64_t c = 0; c < Cg; ++c) std::fill_n(V + xi * vstride + jp * Cg * nr + c * nr + t, nr - t, T(0));
    }
    parallel_for(Cg * nch, [&](int64_t item) {
      const int64_t c = item % Cg, jp = item / Cg, j0 = jp * nr;
      const int tid = thread_id();
      scratch[tid].resize(2 * a2 * kWinoChunk);
      wk.input(tl, BT.data(), x + (g * Cg + c) * p.H * p.W, in_img, t0 + j0, std::min<int64_t>(nr, cnt - j0),
               V + jp * Cg * nr + c * nr, vstride, scratch[tid].data());
    });
  };
  auto transform_output = [&](int64_t g, int64_t t0, int64_t cnt, int64_t nbk, int64_t mstride, const T* M) {
    const int64_t och = ceil_div(cnt, kWinoChunk);
    parallel_for(Kg * och, [&](int64_t item) {
      const int64_t k = item / och, j0 = (item % och) * kWinoChunk;
      const int tid = thread_id();
      scratch[tid].resize(2 * a2 * kWinoChunk);
      wk.output(tl, AT.data(), M + k * nbk + j0, mstride, t0 + j0, std::min(kWinoChunk, cnt - j0),
                bias ? bias[g * Kg + k] : T(0), relu, y + (g * Kg + k) * p.OH * p.OW, out_img,
                scratch[tid].data());
    });
  };

  auto run_block = [&](int64_t g, int64_t t0, int ws) {
    Vs[ws].resize(a2 * vxs);
    Ms[ws].resize(a2 * mxs);
    T* V = Vs[ws].data();
    T* M = Ms[ws].data();
    const int64_t cnt = std::min(nb, total - t0);
    transform_input(g, t0, cnt, nb, vxs, V);
    parallel_for(nkb, [&](int64_t kb) {
      const int64_t ip0 = kb * np;
      gemm_rows(g, V, M, ip0, std::min(np, npanels - ip0), thread_id());
    });
    transform_output(g, t0, cnt, nb, mxs, M);
  };

  // Element-major (see the file comment): blocks of nbe tiles, all alpha^2 GEMMs of a block
  // over all of its tiles, parallel over xi (and row blocks when xi are too few to share). The
  // thread on an xi keeps that xi's V slab in its L2 (2 Xeon threads, 256->256 @56 F(4,3):
  // 6.6 ms with 4-panel row blocks as items, 5.7 ms with whole xi).
  auto run_block_by_element = [&](int64_t g, int64_t t0) {
    const int64_t cnt = std::min(nbe, total - t0), ncols = round_up(cnt, nr);
    const int64_t vs = Cg * ncols + skew, ms = mpad * ncols + skew;
    Vs[0].resize(a2 * vs);
    Ms[0].resize(a2 * ms);
    T* V = Vs[0].data();
    T* M = Ms[0].data();
    transform_input(g, t0, cnt, ncols, vs, V);
    // Whole xi per item (its B panels then stream from L2 once per slice) unless there are
    // too few xi for the threads.
    const int64_t nrb = std::min(npanels, ceil_div(2 * threads, a2)), rp = ceil_div(npanels, nrb);
    parallel_for(a2 * nrb, [&](int64_t item) {
      const int64_t xi = item / nrb, ip0 = (item % nrb) * rp, cnt_p = std::min(rp, npanels - ip0);
      for (int64_t pc = 0; pc < Cg; pc += kcb) {
        const int64_t kc = std::min<int64_t>(kcb, Cg - pc);
        xi_gemm(U + (g * a2 + xi) * slab + pc * mpad + ip0 * kc * mr, V + xi * vs, M + xi * ms, ip0, cnt_p, pc, kc,
                ncols);
      }
    });
    transform_output(g, t0, cnt, ncols, ms, M);
  };

  if (by_element) {
    for (int64_t g = 0; g < G; ++g)
      for (int64_t t0 = 0; t0 < total; t0 += nbe) run_block_by_element(g, t0);
  } else if (outer) {
    parallel_for(G * nblocks, [&](int64_t item) {
      run_block(item / nblocks, (item % nblocks) * nb, thread_id());
    });
  } else {
    for (int64_t g = 0; g < G; ++g)
      for (int64_t b = 0; b < nblocks; ++b) run_block(g, b * nb, 0);
  }
}

template <typename T>
void conv2d_winograd_input_grad(const T* dy, const T* w, T* dx, const ConvParams& p, int m) {
  ConvParams q = p;
  q.C = p.K; q.H = p.OH; q.W = p.OW;
  q.K = p.C; q.OH = p.H; q.OW = p.W;
  q.pad_h = p.R - 1 - p.pad_h;
  q.pad_w = p.S - 1 - p.pad_w;
  if (winograd_tile_rows<T>(q.N * ceil_div(q.OH, m) * ceil_div(q.OW, m), q.Kg(), false)) {
    winograd_forward_tile_rows<T>(dy, w, nullptr, dx, q, m, false, /*flipped=*/true);
    return;
  }
  const std::vector<T> wt = flipped_transposed_kernel(w, p);  // the adjoint's kernel
  conv2d_winograd_forward<T>(dy, wt.data(), nullptr, {}, nullptr, dx, q, m, false);
}

template int64_t winograd_tile_rows<float>(int64_t, int64_t, bool);
template int64_t winograd_tile_rows<double>(int64_t, int64_t, bool);
template WinoPackInfo winograd_pack_info<float>();
template WinoPackInfo winograd_pack_info<double>();
template WinoPackInfo winograd_transform_weights<float>(const float*, int64_t, int64_t, int64_t, int, int, float*);
template WinoPackInfo winograd_transform_weights<double>(const double*, int64_t, int64_t, int64_t, int, int, double*);
template void conv2d_winograd_forward<float>(const float*, const float*, const float*, WinoPackInfo, const float*, float*, const ConvParams&, int, bool);
template void conv2d_winograd_forward<double>(const double*, const double*, const double*, WinoPackInfo, const double*, double*, const ConvParams&, int, bool);
template void conv2d_winograd_input_grad<float>(const float*, const float*, float*, const ConvParams&, int);
template void conv2d_winograd_input_grad<double>(const double*, const double*, double*, const ConvParams&, int);

}  // namespace fastconv
