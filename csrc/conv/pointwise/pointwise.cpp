// 1x1 convolutions as GEMMs over NCHW (see pointwise.h). All three passes share one shape of
// work: per group, C[M x Q] = A[M x Kr] * B[Kr x Q], where B's and C's rows are channel planes
// and their Q columns the batch's output pixels, read and written through PixelColumns (so a
// stride-2 input is read every second row and column in place, and an input gradient is
// written to every second row and column). The forward and input gradient run
// pointwise_gemm below; the weight gradient reduces over Q and runs weight_grad_gemm. Float32
// GEMMs with few columns (Q <= 1024 on AVX-512: 7x7, 14x14, 28x28 maps of batch 1), and batches
// of maps under 256 pixels, run pointwise_small_gemm instead where the cost rule (small_maps)
// says it is cheaper: output channels in the vector lanes, pixels broadcast (pointwise_kernels.h).
#include "conv/pointwise/pointwise.h"

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include "common/cpu.h"
#include "common/gemm.h"
#include "common/parallel.h"
#include "common/transpose.h"
#include "common/workspace.h"
#include "conv/direct/direct_pack.h"
#include "conv/pointwise/pointwise_kernels.h"
#include "conv/weight_grad_split.h"
#include "elementwise/epilogue.h"

namespace fastconv {
namespace {

// One group's channel planes as a GEMM operand with Q = N*P columns: row c, column
// q = n*P + pixel lies at base[n*image + c*plane + oh*row_step + ow*col_step], pixel = (oh, ow)
// on the OH x OW output grid (stride s on a W-wide input: row_step = s*W, col_step = s).
template <typename Ptr>
struct PixelColumns {
  Ptr base;
  int64_t image, plane, OH, OW, row_step, col_step;

  bool dense() const { return col_step == 1 && row_step == OW; }
  // offsets[t] of columns q0 + t, t < count, from base (one division per call, none per column).
  void offsets(int64_t q0, int64_t count, int64_t* out) const {
    const int64_t P = OH * OW;
    int64_t n = q0 / P, oh = (q0 % P) / OW, ow = q0 % OW;
    for (int64_t t = 0; t < count; ++t) {
      out[t] = n * image + oh * row_step + ow * col_step;
      if (++ow == OW) {
        ow = 0;
        if (++oh == OH) oh = 0, ++n;
      }
    }
  }
};

// The input's planes (group g) on the output grid: x for the forward and weight gradient,
// dx for the input gradient.
template <typename Ptr>
PixelColumns<Ptr> input_columns(Ptr base, const ConvParams& p, int64_t g) {
  const int64_t HW = p.H * p.W;
  return {base + g * p.Cg() * HW, p.C * HW, HW, p.OH, p.OW, p.stride_h * p.W, p.stride_w};
}

// The output's planes (group g), dense: y, or dy for the gradients.
template <typename Ptr>
PixelColumns<Ptr> output_columns(Ptr base, const ConvParams& p, int64_t g) {
  const int64_t P = p.out_pixels();
  return {base + g * p.Kg() * P, p.K * P, P, p.OH, p.OW, p.OW, 1};
}

// Calls f(n, pixel, count, pos) for the runs of columns [q0, q1) that lie within one image.
template <typename F>
void for_image_runs(int64_t q0, int64_t q1, int64_t P, F&& f) {
  for (int64_t q = q0; q < q1;) {
    const int64_t pix = q % P, cnt = std::min(q1 - q, P - pix);
    f(q / P, pix, cnt, q - q0);
    q += cnt;
  }
}

// Whether the count columns at off are consecutive in memory.
inline bool consecutive(const int64_t* off, int64_t count) { return off[count - 1] - off[0] == count - 1; }

// The widest micro-kernel panel (gemm.h's tiles: NR <= 64).
constexpr int kMaxPanelColumns = 64;

// B rows [k0, k0+kc) x the columns at off[0, ncols) into NR panels ([panel][k][NR], zero-padded).
template <typename T>
void pack_columns(const PixelColumns<const T*>& src, int64_t k0, int64_t kc, const int64_t* off, int64_t ncols,
                  int nr, T* dst) {
  if (consecutive(off, ncols)) {
    // One run of columns (a dense input's block within an image): row by row, so each row's
    // segment is read front to back (the prefetchers follow it) and written to every panel.
    const int64_t panels = ceil_div(ncols, nr), tail = ncols - (panels - 1) * nr;
    for (int64_t k = 0; k < kc; ++k) {
      const T* row = src.base + (k0 + k) * src.plane + off[0];
      T* d = dst + k * nr;
      for (int64_t jp = 0; jp + 1 < panels; ++jp, d += kc * nr, row += nr) std::copy(row, row + nr, d);
      std::copy(row, row + tail, d);
      std::fill(d + tail, d + nr, T(0));
    }
    return;
  }
  // Otherwise (a strided input, or a panel across images or output rows) each panel's columns
  // fall into runs col_step apart (one per output row it touches), found once per panel and
  // copied as strided loops: stride 2 as a constant, which vectorises (an element-wise gather
  // through the offsets cost ResNet's 1x1 stride-2 downsamples 10-15% against the same GEMM on
  // a pre-subsampled input).
  const int64_t step = src.col_step;
  for (int64_t jp = 0; jp < ncols; jp += nr) {
    const int64_t cnt = std::min<int64_t>(nr, ncols - jp);
    const int64_t* o = off + jp;
    int64_t run_at[kMaxPanelColumns + 1];
    int nruns = 0;
    for (int64_t t = 0; t < cnt;) {
      int64_t e = t + 1;
      while (e < cnt && o[e] - o[e - 1] == step) ++e;
      run_at[nruns++] = t;
      t = e;
    }
    run_at[nruns] = cnt;
    T* d = dst + (jp / nr) * kc * nr;
    for (int64_t k = 0; k < kc; ++k, d += nr) {
      const T* row = src.base + (k0 + k) * src.plane;
      for (int r = 0; r < nruns; ++r) {
        const int64_t t0 = run_at[r], n = run_at[r + 1] - t0;
        const T* s = row + o[t0];
        T* dr = d + t0;
        if (step == 1) std::copy(s, s + n, dr);
        else if (step == 2) for (int64_t u = 0; u < n; ++u) dr[u] = s[2 * u];
        else for (int64_t u = 0; u < n; ++u) dr[u] = s[u * step];
      }
      std::fill(d + cnt, d + nr, T(0));
    }
  }
}

// C rows [m0, m1) of a tile (row stride ldt) to the columns at off[0, ncols) of dst, plus bias.
template <typename T>
void scatter_rows(const T* tile, int64_t ldt, int64_t m0, int64_t m1, const PixelColumns<T*>& dst,
                  const int64_t* off, int64_t ncols, int nr, const T* bias) {
  for (int64_t m = m0; m < m1; ++m) {
    const T b = bias ? bias[m] : T(0);
    const T* s = tile + (m - m0) * ldt;
    T* row = dst.base + m * dst.plane;
    for (int64_t jp = 0; jp < ncols; jp += nr) {
      const int64_t cnt = std::min<int64_t>(nr, ncols - jp);
      const int64_t* o = off + jp;
      if (consecutive(o, cnt)) {
        T* d = row + o[0];
        for (int64_t t = 0; t < cnt; ++t) d[t] = s[jp + t] + b;
      } else {
        for (int64_t t = 0; t < cnt; ++t) row[o[t]] = s[jp + t] + b;
      }
    }
  }
}

// The finishing time, in NR panels, of `outer` rounds of the blocks `widths` (in panels),
// claimed in order by `threads` threads (parallel_for's dynamic scheduling), each item also
// costing two panels' worth of setup (its B pack and bias pass).
inline double dynamic_makespan(int64_t outer, const std::vector<int64_t>& widths, int threads) {
  std::vector<double> free_at(threads, 0.0);
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t panels : widths) *std::min_element(free_at.begin(), free_at.end()) += double(panels) + 2.0;
  return *std::max_element(free_at.begin(), free_at.end());
}

// Outputs of at least this many bytes per call leave the caches rather than staying in L3 (32
// MiB on the Zen 4 measured, shared with the input and the weights): their one-slice GEMMs
// write C in long row runs (gemm_driver's rows_outer) over column blocks of the tile's nc.
// Two threads, one process alternating the orders, Zen 4: 16 -> 96 at 112x112 batch 8 (38 MB
// out) 1.78x, 24 -> 144 at 56x56 batch 8 (14 MB) 1.38x, 64 -> 256 at 56x56 batch 8 (26 MB)
// 1.25x and batch 4 1.18x, 128 -> 512 at 28x28 batch 4 (6.4 MB) 1.06x; at batch 1 (3-5 MB)
// the same order ran 0.78-0.90x.
constexpr int64_t kStreamedOutputBytes = int64_t(6) << 20;

// Per group g: dst_of(g)[M x Q] = A_g[M x Kr] * src_of(g)[Kr x Q] (+ bias[g*M + m]), Q = N*P
// columns. apack holds every group's A packed as gemm_driver reads it (group g at
// g * round_up(M, MR) * Kr, reduction slice pc at pc * round_up(M, MR)). Work items: groups x
// column blocks x row chunks. A dense output whose images are wide enough (or one image) is
// written in place, a block per image at a time (gemm_driver); otherwise (small maps of a
// batch: the batch's columns fold into shared blocks; a strided input gradient) a block runs
// into a per-thread C tile that one pass adds the bias to and writes out.
template <typename T, typename SrcOf, typename DstOf>
void pointwise_gemm(const MicroKernel<T>& uk, int64_t G, int64_t M, int64_t Kr, int64_t N, int64_t P,
                    const T* apack, SrcOf&& src_of, DstOf&& dst_of, const T* bias, const OutputEpilogue<T>* ep) {
  const int64_t Q = N * P;
  if (Q == 0) return;
  const int mr = uk.mr, nr = uk.nr, threads = max_threads();
  const int64_t mpad = round_up(M, mr), kc_step = slice_kc(Kr, uk.kc);
  const bool in_place = dst_of(0).dense() && (N == 1 || P >= 256);
  const int64_t span = in_place ? P : Q;  // the columns one block may cover
  // At most 264 rows per item, and columns so that the C block stays within 256 KiB (L2,
  // with the B slice and the chunk's A panels for one slice). Smaller items where there are
  // too few to give each thread two: columns first (down to 2 panels), then rows.
  int64_t mstep = std::min(mpad, round_up(256, mr));
  int64_t ncb = std::min(round_up(span, nr), std::clamp<int64_t>((65536 / mstep) / nr * nr, 8 * nr, 2048));
  // A one-slice C block is read back only by an epilogue pass after it (a residual, SiLU), and
  // 1024 columns of 256 rows (1 MiB) still leave that pass in L2.
  const bool streamed = in_place && Kr <= kc_step && G * M * Q * int64_t(sizeof(T)) >= kStreamedOutputBytes;
  if (streamed) ncb = std::min(round_up(span, nr), int64_t(uk.nc));
  auto blocks = [&] { return (Q / span) * ceil_div(span, ncb); };
  while (G * blocks() * ceil_div(M, mstep) < 2 * threads && ncb > 2 * nr) ncb = round_up(ncb / 2, nr);
  while (G * blocks() * ceil_div(M, mstep) < 2 * threads && mstep > mr) mstep = round_up(mstep / 2, mr);
  const int64_t mchunks = ceil_div(M, mstep), span_panels = ceil_div(span, nr);
  // Blocks of ncb columns, the last one shorter; or, where the items are few and that is
  // clearly faster under the pool's dynamic scheduling, a span's NR panels shared out evenly
  // between `per_span` blocks (block b: panels [b * span_panels / per_span, (b + 1) * ... )):
  // 3136 columns cut into blocks of 1008 were 1008 + 1008 + 1008 + 112, one thread doing 2016
  // while the other did 1120 (ResNet-50's 256 -> 64 at 56x56 ran at 146 GFLOP/s; even
  // blocks of 784 columns run it 1.24x faster). An even split that is only slightly better
  // is not taken: narrower blocks measured slower on memory-bound layers (32 -> 16 at 112x112).
  const int64_t outer = G * (Q / span) * mchunks;
  int64_t per_span = ceil_div(span, ncb);
  bool even = false;
  if (outer * per_span < 8 * threads) {
    std::vector<int64_t> widths;
    for (int64_t c = 0; c < span; c += ncb) widths.push_back(ceil_div(std::min(ncb, span - c), nr));
    double best = 0.9 * dynamic_makespan(outer, widths, threads);
    for (int64_t ps = per_span; ps <= std::min(span_panels, per_span + threads); ++ps) {
      widths.clear();
      for (int64_t b = 0; b < ps; ++b) widths.push_back((b + 1) * span_panels / ps - b * span_panels / ps);
      const double t = dynamic_makespan(outer, widths, threads);
      if (t < best) best = t, per_span = ps, even = true;
    }
    if (even) ncb = ceil_div(span_panels, per_span) * nr;  // the widest block
  }
  const int64_t jblocks = (Q / span) * per_span;
  // Columns [lo, hi) of block b of a span (relative to the span's first column).
  auto block_cols = [&](int64_t b, int64_t& lo, int64_t& hi) {
    lo = even ? b * span_panels / per_span * nr : b * ncb;
    hi = std::min(span, even ? (b + 1) * span_panels / per_span * nr : lo + ncb);
  };
  // Tile row stride: one cache line more than the block, so a micro-tile's rows do not all
  // fall into the same L1 sets.
  const int64_t ldt = ncb + 64 / static_cast<int64_t>(sizeof(T));
  std::vector<AlignedBuffer<T>> bbufs(threads), tiles(threads);
  std::vector<std::vector<int64_t>> offs(threads);
  parallel_for(G * jblocks * mchunks, [&](int64_t item) {
    const int64_t mc = item % mchunks, jb = (item / mchunks) % jblocks, g = item / (mchunks * jblocks);
    const int64_t first = (jb / per_span) * span;
    int64_t lo, hi;
    block_cols(jb % per_span, lo, hi);
    const int64_t j0 = first + lo, ncols = hi - lo;
    const int64_t m0 = mc * mstep, m1 = std::min(M, m0 + mstep);
    const int tid = thread_id();
    bbufs[tid].resize(kc_step * ncb);
    offs[tid].resize(2 * ncb);
    T* bbuf = bbufs[tid].data();
    int64_t* off_in = offs[tid].data();
    int64_t* off_out = off_in + ncb;
    const auto src = src_of(g);
    const auto dst = dst_of(g);
    src.offsets(j0, ncols, off_in);
    const T* ag = apack + g * mpad * Kr;
    if (in_place) {  // C = rows [m0, m1) of image j0 / P, pixels [pix0, pix0 + ncols)
      const int64_t pix0 = j0 - first;
      T* c = dst.base + (first / P) * dst.image + m0 * dst.plane;
      // The bias and the activation in the tiles' registers, before their one store, where the
      // reduction is one slice and there is no residual (a pass over the block after the GEMM
      // cost 16 -> 96 at 112x112 half as much again as the GEMM itself). Otherwise the pass
      // below, on the block while it is in L2, measured 3-5% faster (one process per build,
      // alternating, Zen 4: 256 -> 128 at 56x56 batch 8, over two slices; 64 -> 256 with a
      // residual, whose rows the tiles read at a stride of one plane; 0.92-0.99x too where the
      // output is streamed, 64 -> 256 and 128 -> 512 at batch 8). SiLU has no register form.
      const bool in_tiles = (!ep || (ep->act != kActSilu && !ep->residual)) && kc_step >= Kr;
      const TileEpilogue<T> te = tile_epilogue_for(ep, bias ? bias + g * M + m0 : nullptr, c);
      gemm_driver(
          uk, m1 - m0, Kr, pix0, pix0 + ncols, [&](int64_t pc, int64_t kc) { return ag + pc * mpad + (m0 / mr) * kc * mr; },
          [&](int64_t pc, int64_t kc, int64_t jj, int64_t nc, T* d) { pack_columns(src, pc, kc, off_in + jj - pix0, nc, nr, d); },
          c, dst.plane, false, bbuf, in_tiles && (bias || ep) ? &te : nullptr, streamed);
      if (in_tiles) return;
      // SiLU: the bias and the epilogue after the GEMM, on the block while it is in L2 (a bias
      // written first would make every micro-tile load C).
      if (ep)
        epilogue_in_place_rows(*ep, c + pix0, dst.plane, m1 - m0, bias ? bias + g * M + m0 : nullptr, ncols);
      else if (bias)
        for (int64_t m = m0; m < m1; ++m) {
          T* row = c + (m - m0) * dst.plane + pix0;
          const T b = bias[g * M + m];
          for (int64_t t = 0; t < ncols; ++t) row[t] += b;
        }
      return;
    }
    tiles[tid].resize(mstep * ldt);
    T* tile = tiles[tid].data();
    dst.offsets(j0, ncols, off_out);
    for (int64_t pc = 0; pc < Kr; pc += kc_step) {
      const int64_t kc = std::min(kc_step, Kr - pc);
      pack_columns(src, pc, kc, off_in, ncols, nr, bbuf);
      const T* ablock = ag + pc * mpad + (m0 / mr) * kc * mr;
      // Column panels outer: one B panel stays in L1 while the chunk's A panels stream from L2.
      for (int64_t jr = 0; jr < ncols; jr += nr)
        for (int64_t ir = m0; ir < m1; ir += mr)
          uk.fn(kc, ablock + (ir - m0) * kc, bbuf + jr * kc, tile + (ir - m0) * ldt + jr, ldt, pc > 0);
    }
    scatter_rows(tile, ldt, m0, m1, dst, off_out, ncols, nr, bias ? bias + g * M : nullptr);
    if (ep)  // on the rows just written, while they are in cache: one call per image's run of
             // columns (ep is the forward's, whose output columns are dense)
      for_image_runs(j0, j0 + ncols, P, [&](int64_t n, int64_t pix, int64_t cnt, int64_t) {
        epilogue_in_place_rows(*ep, dst.base + n * dst.image + m0 * dst.plane + pix, dst.plane, m1 - m0,
                               static_cast<const T*>(nullptr), cnt);
      });
  });
}

// ---- The small-map path: transposed tiles (pointwise_kernels.h) ----------------------------
//
// The same per-group GEMM, C[M x Q] = A[M x Kr] * B[Kr x Q], with the channels of C (rows) in
// the vector lanes and its pixels (columns) broadcast, for maps too small to fill the pixel
// lanes of the shared tiles (49 columns compute as 64 or 96 there). Rows are cut into blocks of
// up to max_ch (each padded to the vector width only), columns into panels of up to max_np
// pixels that stay inside one image where the maps are large enough, sized so that a 7x7 map is
// seven panels of 7. A block's A is packed per reduction slice by the work item that uses it
// (a slice of up to 192 KiB stays in L2 while every panel of the item streams through it), so
// no whole-matrix weight pack precedes the compute. B is read in place (the rows of a
// dense input are the panels' rows) or, for a strided input or panels across images, packed
// once for all blocks. Work: tiles = groups x row blocks x panels, cut into a few contiguous
// ranges per thread, so two threads split even a 320-row layer evenly.

// Pixels per panel for `len` columns: the split into panels of at most max_np with the least
// cost, a panel of n pixels costing max(n, 3) + 1 (its FMAs, at least the FMA latency's
// worth, plus the weight loads its reduction repeats). 49 -> 7 x 7; 196 -> 24 x 8 + 4.
int panel_width(int64_t len, int max_np) {
  int best = max_np;
  int64_t best_cost = INT64_MAX;
  for (int np = max_np; np >= std::max(1, max_np - 3); --np) {
    const int64_t rem = len % np;
    const int64_t cost = len / np * (std::max(np, 3) + 1) + (rem ? std::max<int64_t>(rem, 3) + 1 : 0);
    if (cost < best_cost) best_cost = cost, best = np;
  }
  return best;
}

// How pointwise_small_gemm cuts A[M x Kr]: row blocks of bw (the last one shorter), each
// padded to ch = round_up(rows, vec) lanes, and reduction slices of kc_step: kc x max_ch packed
// values within 192 KiB (L2; the panels' accumulators are stored and reloaded once per slice),
// multiples of 16 (whole transposes) where the reduction allows. Measured on Zen 4: 1-3% faster
// than slices within L1 (128 deep). A whole prepacked A (pack_pointwise_small_weights) keeps
// block mb's slice pc at ((g * mblocks + mb) * Kr + pc) * bw (bw is a multiple of vec).
struct SmallBlocking {
  int64_t bw, mblocks, kc_step;
  int64_t offset(int64_t g, int64_t m0, int64_t Kr, int64_t pc) const { return ((g * mblocks + m0 / bw) * Kr + pc) * bw; }
};

SmallBlocking small_blocking(const PointwiseTileKernels& kern, int64_t M, int64_t Kr) {
  const int64_t bw = round_up(ceil_div(M, ceil_div(M, kern.max_ch)), kern.vec);
  const int64_t kc_max = std::max<int64_t>(16, (196608 / 4 / kern.max_ch) / 16 * 16);
  int64_t kc_step = slice_kc(Kr, kc_max);
  if (kc_step > 16) kc_step = std::min(round_up(kc_step, 16), kc_max);
  return {bw, ceil_div(M, bw), kc_step};
}

// a_slice(g, m0, rows, ch, pc, kc, buf): A rows [m0, m0+rows) x reduction [pc, pc+kc) of group g
// as [k*ch + i] (zero for i >= rows), 64-byte aligned: packed into buf, or a prepacked slice.
// src_of(g): B's PixelColumns. store(g, m0, rows, ct, ldct, q0, q1): writes C rows
// [m0, m0+rows) x columns [q0, q1) from ct[(q-q0)*ldct + i].
template <typename ASlice, typename SrcOf, typename Store>
void pointwise_small_gemm(const PointwiseTileKernels& kern, int64_t G, int64_t M, int64_t Kr, int64_t N, int64_t P,
                          ASlice&& a_slice, SrcOf&& src_of, Store&& store) {
  const int64_t Q = N * P;
  if (Q == 0 || M == 0) return;
  const int threads = max_threads(), vec = kern.vec, ldp = kern.max_np;
  const SmallBlocking blocking = small_blocking(kern, M, Kr);
  const int64_t bw = blocking.bw, mblocks = blocking.mblocks, kc_step = blocking.kc_step;
  const bool per_image = N == 1 || P >= kern.max_np;
  const bool in_place = per_image && src_of(0).dense();
  std::vector<int64_t> pq;  // panel j: columns [pq[j], pq[j] + pn[j])
  std::vector<int> pn;
  if (per_image) {
    const int np = panel_width(P, kern.max_np);
    for (int64_t n = 0; n < N; ++n)
      for (int64_t pix = 0; pix < P; pix += np) pq.push_back(n * P + pix), pn.push_back(int(std::min<int64_t>(np, P - pix)));
  } else {
    for (int64_t q = 0; q < Q; q += ldp) pq.push_back(q), pn.push_back(int(std::min<int64_t>(ldp, Q - q)));
  }
  const int64_t T = static_cast<int64_t>(pq.size());
  AlignedBuffer<float> bpack;
  if (!in_place) {  // panel (g, j) as [Kr][ldp]
    bpack.resize(G * T * Kr * ldp);
    parallel_for(G * T, [&](int64_t item) {
      const int64_t j = item % T;
      const auto src = src_of(item / T);
      int64_t off[64];
      src.offsets(pq[j], pn[j], off);
      float* d = bpack.data() + item * Kr * ldp;
      for (int64_t k = 0; k < Kr; ++k, d += ldp) {
        const float* row = src.base + k * src.plane;
        for (int t = 0; t < pn[j]; ++t) d[t] = row[off[t]];
      }
    });
  }
  const int64_t tiles = G * mblocks * T, ranges = std::min<int64_t>(tiles, 2 * threads);
  std::vector<AlignedBuffer<float>> wbufs(threads), ctiles(threads);
  parallel_for(ranges, [&](int64_t r) {
    const int64_t t1 = tiles * (r + 1) / ranges;
    const int tid = thread_id();
    for (int64_t t = tiles * r / ranges; t < t1;) {
      const int64_t gm = t / T, ja = t % T, jb = std::min(T, ja + (t1 - t));
      const int64_t g = gm / mblocks, m0 = (gm % mblocks) * bw, rows = std::min(bw, M - m0);
      const int ch = static_cast<int>(round_up(rows, vec));
      const int64_t qa = pq[ja], qb = pq[jb - 1] + pn[jb - 1];
      wbufs[tid].resize(kc_step * kern.max_ch);
      ctiles[tid].resize((qb - qa) * kern.max_ch);
      float* wbuf = wbufs[tid].data();
      float* ct = ctiles[tid].data();
      const auto src = src_of(g);
      for (int64_t pc = 0; pc < Kr; pc += kc_step) {
        const int64_t kc = std::min(kc_step, Kr - pc);
        const float* a = a_slice(g, m0, rows, ch, pc, kc, wbuf);
        for (int64_t j = ja; j < jb; ++j) {
          const float* b;
          int64_t ldb;
          if (in_place) {
            b = src.base + pq[j] / P * src.image + pc * src.plane + pq[j] % P;
            ldb = src.plane;
          } else {
            b = bpack.data() + (g * T + j) * Kr * ldp + pc * ldp;
            ldb = ldp;
          }
          kern.tile(kc, a, ch, b, ldb, pn[j], ct + (pq[j] - qa) * ch, ch, pc > 0);
        }
      }
      store(g, m0, rows, ct, int64_t(ch), qa, qb);
      t += jb - ja;
    }
  });
}

// The rows the transposed tile computes for M rows: blocks of at most max_ch, each padded to
// the vector width only (320 -> 6 x 48 + 32; 24 -> 32 on AVX-512).
int64_t small_padded_rows(int64_t M, const PointwiseTileKernels& kern) {
  const int64_t bw = round_up(ceil_div(M, ceil_div(M, kern.max_ch)), kern.vec);
  return M / bw * bw + round_up(M % bw, kern.vec);
}

// The cost rule: the small-map path when the GEMM has at most max_q columns (Q = N*OH*OW; the
// variant's own limit, 1024 on AVX-512: 28x28 maps of batch 1 and below) or the shared GEMM
// would fold the batch (maps under 256 pixels, N > 1: 14x14 and 7x7 at any batch), and its
// estimated cost is no higher than the shared tile's, both in vector multiply-adds per output
// vector over the padded output:
//   small:  rows padded to the vector width x Q exact columns x (Kr + store_cost)
//   shared: rows padded to MR x columns padded to NR (per image where pointwise_gemm writes in
//           place, else over Q) x (Kr + 1, + 12 with a bias, + store_cost folded)
// store_cost (8 on AVX-512): the tile's store and the transposing store to NCHW; 1: the shared
// tile's store; 12: its separate bias pass over the output (the small path adds the bias in
// its store); folded, its scatter of the batch's tiles back to the images. Fitted on Zen 4
// where the two differ by padding only, at short reductions (96->16 @28 input gradient: 0.036
// ms shared, 0.047 small; 32->144 @28 forward: 0.052 / 0.058 without bias, 0.086 / 0.075
// with). At 7x7 the shared tile computes 64 columns for 49, at 14x14 224 for 196. At 14x14
// batch 8 (Q = 1568) the small path ran the zoo's 1x1 layers 1.04-1.38x faster forward and
// 1.07-1.56x in the input gradient; at 28x28 batch 2-8 it lost on expansions (0.91-0.99x:
// 32 -> 192, 128 -> 512), so past max_q unfolded maps keep the shared GEMM.
std::atomic<int> g_forced_variant{0};  // set_pointwise_variant: 0 auto, 1 small_maps, 2 gemm

bool small_maps(const ConvParams& p, int64_t rows, int64_t Kr, bool bias, bool float32) {
  const int64_t N = p.N, P = p.out_pixels(), Q = N * P;
  if (!float32 || Q == 0 || rows == 0) return false;
  if (const int forced = g_forced_variant.load(std::memory_order_relaxed)) return forced == 1;
  const Isa isa = active_isa();
  const PointwiseTileKernels& kern = pointwise_tile_kernels(isa);
  // Where the shared GEMM folds the batch (pointwise_gemm: N > 1 on maps under 256 pixels) it
  // also scatters its tiles back to the images, a pass the small path's store does not need.
  const bool folded = N > 1 && P < 256;
  if (Q > kern.max_q && !folded) return false;
  const MicroKernel<float> uk = micro_kernel<float>(isa, rows);
  const int64_t cols = folded ? round_up(Q, uk.nr) : N * round_up(P, uk.nr);
  const double small = double(small_padded_rows(rows, kern)) * Q * (Kr + kern.store_cost);
  const double shared =
      double(round_up(rows, uk.mr)) * cols * (Kr + 1 + (bias ? 12 : 0) + (folded ? kern.store_cost : 0));
  return small <= shared;
}

}  // namespace

bool pointwise_applies(const ConvParams& p) {
  return p.R == 1 && p.S == 1 && p.pad_h == 0 && p.pad_w == 0;
}

void set_pointwise_variant(const char* variant) {
  const std::string v(variant);
  if (v != "auto" && v != "small_maps" && v != "gemm")
    throw std::invalid_argument("pointwise variant must be 'auto', 'small_maps' or 'gemm', got '" + v + "'");
  g_forced_variant.store(v == "auto" ? 0 : v == "small_maps" ? 1 : 2);
}

const char* pointwise_variant(const ConvParams& p, PointwisePass pass, bool float32, bool bias) {
  if (pass == PointwisePass::weight_grad) return "gemm";
  const bool fwd = pass == PointwisePass::forward;
  return small_maps(p, fwd ? p.Kg() : p.Cg(), fwd ? p.Cg() : p.Kg(), fwd && bias, float32) ? "small_maps" : "gemm";
}

namespace {

// The forward's A slice of rows [m0, m0 + rows) x reduction [pc, pc + kc) of group g for the
// small-map path ([k][ch], a transpose of the weight rows), into dst.
void pack_small_forward_slice(const float* w, const ConvParams& p, TransposePanelFn<float> transpose, int64_t g,
                              int64_t m0, int64_t rows, int ch, int64_t pc, int64_t kc, float* dst) {
  const int64_t Kg = p.Kg(), Cg = p.Cg();
  const float* rowp[64];
  for (int i = 0; i < ch; ++i) rowp[i] = i < rows ? w + (g * Kg + m0 + i) * Cg + pc : nullptr;
  transpose(rowp, ch, kc, dst);
}

}  // namespace

int64_t pointwise_small_packed_size(const ConvParams& p) {
  const SmallBlocking b = small_blocking(pointwise_tile_kernels(active_isa()), p.Kg(), p.Cg());
  return p.groups * b.mblocks * b.bw * p.Cg();
}

void pack_pointwise_small_weights(const float* w, const ConvParams& p, float* dst) {
  const PointwiseTileKernels& kern = pointwise_tile_kernels(active_isa());
  const TransposePanelFn<float> transpose = transpose_panel<float>(active_isa());
  const int64_t Kg = p.Kg(), Cg = p.Cg();
  const SmallBlocking b = small_blocking(kern, Kg, Cg);
  const int64_t slices = ceil_div(Cg, b.kc_step);
  parallel_for(p.groups * b.mblocks * slices, [&](int64_t item) {
    const int64_t g = item / (b.mblocks * slices), m0 = (item / slices % b.mblocks) * b.bw;
    const int64_t pc = item % slices * b.kc_step, kc = std::min(b.kc_step, Cg - pc), rows = std::min(b.bw, Kg - m0);
    pack_small_forward_slice(w, p, transpose, g, m0, rows, static_cast<int>(round_up(rows, kern.vec)), pc, kc,
                             dst + b.offset(g, m0, Cg, pc));
  });
}

template <typename T>
void conv2d_pointwise_forward(const T* x, const T* w, const T* bias, T* y, const ConvParams& p,
                              const OutputEpilogue<T>* ep, const T* prepacked) {
  if constexpr (std::is_same_v<T, float>) {
    if (small_maps(p, p.Kg(), p.Cg(), bias != nullptr, true)) {
      const PointwiseTileKernels& kern = pointwise_tile_kernels(active_isa());
      const TransposePanelFn<float> transpose = transpose_panel<float>(active_isa());
      const int64_t Kg = p.Kg(), Cg = p.Cg();
      const SmallBlocking blocking = small_blocking(kern, Kg, Cg);
      const bool in_store = ep && ep->act != kActSilu;  // the epilogue in the transposing store
      pointwise_small_gemm(
          kern, p.groups, Kg, Cg, p.N, p.out_pixels(),
          [&](int64_t g, int64_t m0, int64_t rows, int ch, int64_t pc, int64_t kc, float* buf) -> const float* {
            if (prepacked) return prepacked + blocking.offset(g, m0, Cg, pc);
            pack_small_forward_slice(w, p, transpose, g, m0, rows, ch, pc, kc, buf);
            return buf;
          },
          [&](int64_t g) { return input_columns(x, p, g); },
          [&](int64_t g, int64_t m0, int64_t rows, const float* ct, int64_t ldct, int64_t q0, int64_t q1) {
            const auto dst = output_columns(y, p, g);
            for_image_runs(q0, q1, p.out_pixels(), [&](int64_t n, int64_t pix, int64_t cnt, int64_t pos) {
              float* at = dst.base + n * dst.image + m0 * dst.plane + pix;
              kern.store(ct + pos * ldct, ldct, int(rows), cnt, at, dst.plane,
                         tile_epilogue_for(in_store ? ep : nullptr, bias ? bias + g * Kg + m0 : nullptr, at));
            });
          });
      // SiLU as a pass of its own: the store has no register form of it, and a call per stored
      // row cost more than the pass (192 -> 64 at 14x14: 43 -> 56 us).
      if (ep && !in_store) epilogue_in_place(*ep, static_cast<const float*>(nullptr), p.N, p.K, p.out_pixels());
      return;
    }
  }
  const MicroKernel<T> uk = micro_kernel<T>(active_isa(), p.Kg());
  const int64_t G = p.groups, Kg = p.Kg(), Cg = p.Cg(), mpad = round_up(Kg, uk.mr);
  AlignedBuffer<T> apack;
  if (!prepacked) {
    apack.resize(G * mpad * Cg);
    pack_weight_panels_all(w, p, uk.mr, uk.kc, apack.data());
  }
  pointwise_gemm(
      uk, G, Kg, Cg, p.N, p.out_pixels(), prepacked ? prepacked : apack.data(),
      [&](int64_t g) { return input_columns(x, p, g); }, [&](int64_t g) { return output_columns(y, p, g); }, bias,
      ep);
}

template <typename T>
void conv2d_pointwise_input_grad(const T* dy, const T* w, T* dx, const ConvParams& p) {
  if constexpr (std::is_same_v<T, float>) {
    if (small_maps(p, p.Cg(), p.Kg(), false, true)) {
      const PointwiseTileKernels& kern = pointwise_tile_kernels(active_isa());
      const int64_t Kg = p.Kg(), Cg = p.Cg();
      // A = W^T: its rows (input channels) are contiguous in w, so a slice is copied, not transposed.
      if (p.stride_h != 1 || p.stride_w != 1 || p.OH * p.stride_h < p.H || p.OW * p.stride_w < p.W)
        parallel_for_chunks(p.N * p.C * p.H * p.W, 1 << 16, [&](int64_t a, int64_t b) { std::fill(dx + a, dx + b, 0.0f); });
      std::vector<std::vector<int64_t>> offs(max_threads());
      pointwise_small_gemm(
          kern, p.groups, Cg, Kg, p.N, p.out_pixels(),
          [&](int64_t g, int64_t m0, int64_t rows, int ch, int64_t pc, int64_t kc, float* buf) -> const float* {
            float* dst = buf;
            for (int64_t k = 0; k < kc; ++k, dst += ch) {
              const float* s = w + (g * Kg + pc + k) * Cg + m0;
              std::copy(s, s + rows, dst);
              std::fill(dst + rows, dst + ch, 0.0f);
            }
            return buf;
          },
          [&](int64_t g) { return output_columns(dy, p, g); },
          [&](int64_t g, int64_t m0, int64_t rows, const float* ct, int64_t ldct, int64_t q0, int64_t q1) {
            const auto dst = input_columns(dx, p, g);
            if (dst.dense()) {
              for_image_runs(q0, q1, p.out_pixels(), [&](int64_t n, int64_t pix, int64_t cnt, int64_t pos) {
                kern.store(ct + pos * ldct, ldct, int(rows), cnt, dst.base + n * dst.image + m0 * dst.plane + pix,
                           dst.plane, TileEpilogue<float>{});
              });
              return;
            }
            std::vector<int64_t>& off = offs[thread_id()];
            off.resize(q1 - q0);
            dst.offsets(q0, q1 - q0, off.data());
            for (int64_t i = 0; i < rows; ++i) {
              float* row = dst.base + (m0 + i) * dst.plane;
              for (int64_t q = 0; q < q1 - q0; ++q) row[off[q]] = ct[q * ldct + i];
            }
          });
      return;
    }
  }
  const MicroKernel<T> uk = micro_kernel<T>(active_isa(), p.Cg());
  const int64_t G = p.groups, Kg = p.Kg(), Cg = p.Cg(), mpad = round_up(Cg, uk.mr);
  const int64_t kc_step = slice_kc(Kg, uk.kc), slices = ceil_div(Kg, kc_step);
  // A = W^T per group, A(c, k) = w[(g*Kg + k)*Cg + c]: each panel row is MR consecutive values.
  AlignedBuffer<T> apack(G * mpad * Kg);
  parallel_for(G * slices, [&](int64_t item) {
    const int64_t g = item / slices, pc = (item % slices) * kc_step;
    pack_a_strided(w + g * Kg * Cg, int64_t(1), Cg, 0, Cg, pc, std::min(kc_step, Kg - pc), uk.mr,
                   apack.data() + g * mpad * Kg + pc * mpad);
  });
  // A strided conv writes every stride-th row and column of dx; the rest gets no gradient.
  if (p.stride_h != 1 || p.stride_w != 1 || p.OH * p.stride_h < p.H || p.OW * p.stride_w < p.W)
    parallel_for_chunks(p.N * p.C * p.H * p.W, 1 << 16, [&](int64_t a, int64_t b) { std::fill(dx + a, dx + b, T(0)); });
  pointwise_gemm(
      uk, G, Cg, Kg, p.N, p.out_pixels(), apack.data(), [&](int64_t g) { return output_columns(dy, p, g); },
      [&](int64_t g) { return input_columns(dx, p, g); }, static_cast<const T*>(nullptr),
      static_cast<const OutputEpilogue<T>*>(nullptr));
}

// dw[Kg x Cg] = sum over the batch's pixels q of dy[Kg x q] * x^T[q x Cg]. Both operands are
// contiguous along q for a stride-1 conv, so their panels are in-register transposes of
// channel rows; a strided x is gathered. Where that pads much less (few input channels, many
// output channels: MobileNetV2's 16 -> 96 at 112x112 padded 16 columns to 48, two thirds of
// its FMAs on zeros), a stride-1 conv computes dw^T = x[Cg x q] * dy^T[q x Kg] instead and
// transposes the small result.
template <typename T>
void conv2d_pointwise_weight_grad(const T* x, const T* dy, T* dw, const ConvParams& p) {
  const Isa isa = active_isa();
  const TransposePanelFn<T> transpose = transpose_panel<T>(isa);
  const int64_t Kg = p.Kg(), Cg = p.Cg(), P = p.out_pixels(), G = p.groups;
  // Rows [r0, r0 + count) of a dense operand (row r of image n at base + n * image + r * P),
  // columns q in [q0, q0 + kc), as panels of `width` rows (zero-padded).
  auto pack_rows = [&](const T* base, int64_t image, int64_t r0, int64_t count, int width, int64_t q0, int64_t kc,
                       T* dst) {
    for_image_runs(q0, q0 + kc, P, [&](int64_t n, int64_t pix, int64_t cnt, int64_t pos) {
      const T* rows[64];
      for (int64_t i0 = 0; i0 < count; i0 += width) {
        for (int i = 0; i < width; ++i) rows[i] = i0 + i < count ? base + n * image + (r0 + i0 + i) * P + pix : nullptr;
        transpose(rows, width, cnt, dst + (i0 / width) * kc * width + pos * width);
      }
    });
  };
  const MicroKernel<T> uk = micro_kernel<T>(isa, Kg), ukt = micro_kernel<T>(isa, Cg);
  const bool dense = input_columns(x, p, 0).dense();
  if (dense && round_up(Cg, ukt.mr) * round_up(Kg, ukt.nr) < 0.75 * round_up(Kg, uk.mr) * round_up(Cg, uk.nr)) {
    AlignedBuffer<T> dwt(G * Cg * Kg);
    weight_grad_gemm(
        ukt, G, Cg, Kg, p.N * P, dwt.data(),
        [&](int64_t g, int64_t q0, int64_t kc, T* abuf) {  // A = x[Cg x q]
          const auto xv = input_columns(x, p, g);
          pack_rows(xv.base, xv.image, 0, Cg, ukt.mr, q0, kc, abuf);
        },
        [&](int64_t g, int64_t q0, int64_t kc, int64_t j0, int64_t nc, T* dst) {  // B = dy^T[q x Kg]
          const auto dyv = output_columns(dy, p, g);
          pack_rows(dyv.base, dyv.image, j0, nc, ukt.nr, q0, kc, dst);
        });
    for (int64_t g = 0; g < G; ++g)
      for (int64_t k = 0; k < Kg; ++k)
        for (int64_t c = 0; c < Cg; ++c) dw[(g * Kg + k) * Cg + c] = dwt.data()[(g * Cg + c) * Kg + k];
    return;
  }
  const int nr = uk.nr;
  std::vector<std::vector<int64_t>> offs(max_threads());
  weight_grad_gemm(
      uk, G, Kg, Cg, p.N * P, dw,
      [&](int64_t g, int64_t q0, int64_t kc, T* abuf) {  // A = dy[Kg x q], MR-row panels
        const auto dyv = output_columns(dy, p, g);
        pack_rows(dyv.base, dyv.image, 0, Kg, uk.mr, q0, kc, abuf);
      },
      [&](int64_t g, int64_t q0, int64_t kc, int64_t j0, int64_t nc, T* dst) {  // B = x^T, NR-column panels
        const auto xv = input_columns(x, p, g);
        if (xv.dense()) return pack_rows(xv.base, xv.image, j0, nc, nr, q0, kc, dst);
        std::vector<int64_t>& off = offs[thread_id()];
        off.resize(kc);
        xv.offsets(q0, kc, off.data());
        for (int64_t j = 0; j < round_up(nc, nr); ++j) {
          T* d = dst + (j / nr) * kc * nr + j % nr;
          if (j >= nc) {
            for (int64_t t = 0; t < kc; ++t) d[t * nr] = T(0);
            continue;
          }
          const T* row = xv.base + (j0 + j) * xv.plane;
          for (int64_t t = 0; t < kc; ++t) d[t * nr] = row[off[t]];
        }
      });
}

template void conv2d_pointwise_forward<float>(const float*, const float*, const float*, float*, const ConvParams&,
                                              const OutputEpilogue<float>*, const float*);
template void conv2d_pointwise_forward<double>(const double*, const double*, const double*, double*, const ConvParams&,
                                               const OutputEpilogue<double>*, const double*);
template void conv2d_pointwise_input_grad<float>(const float*, const float*, float*, const ConvParams&);
template void conv2d_pointwise_input_grad<double>(const double*, const double*, double*, const ConvParams&);
template void conv2d_pointwise_weight_grad<float>(const float*, const float*, float*, const ConvParams&);
template void conv2d_pointwise_weight_grad<double>(const double*, const double*, double*, const ConvParams&);

}  // namespace fastconv
