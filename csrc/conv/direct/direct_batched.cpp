// Direct convolution on small maps as ONE GEMM over every image's output pixels:
//   Y[Kg x N*P] = W[Kg x Cg*R*S] * im2col(x of all images)[Cg*R*S x N*P]      (P = OH*OW)
// The per-image paths (direct.cpp, direct_shifted.cpp) run one GEMM per image, so each image
// re-reads all of W (9.4 MB for a 512->512 3x3 layer) for a few dozen output pixels, and the
// shifted-row path also computes the padded-width columns (25% of a 14x14 map's columns, 67%
// of a 3x3 map's). Here W is read once per call (per 1024-column block), packed slice by
// slice straight into each thread's L2-sized buffer with no whole packed copy, and the
// batch's im2col is gathered once from the padded input, so only real pixels are computed.
// Threads split output channels (and column blocks), never images.
// The input gradient of a stride-1 conv is the same GEMM on dy with the flipped, transposed
// kernel; the weight gradient reduces over the batch's real pixels (weight_grad_split.h).
#include <algorithm>
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

// Offset in the padded input of one group of column q = n*P + pixel's window corner.
std::vector<int64_t> column_offsets(const ConvParams& p) {
  const int64_t Wp = p.W + 2 * p.pad_w, HpWp = (p.H + 2 * p.pad_h) * Wp, P = p.out_pixels();
  std::vector<int64_t> cols(p.N * P);
  for (int64_t q = 0; q < p.N * P; ++q) {
    const int64_t n = q / P, oh = (q % P) / p.OW, ow = q % p.OW;
    cols[q] = n * p.C * HpWp + oh * p.stride_h * Wp + ow * p.stride_w;
  }
  return cols;
}

// The batch's im2col, packed once in the layout the GEMM reads: per group, per reduction
// slice pc (kc = slice_kc rows), NR-column panels, bpack[g][pc * NQpad + panel * kc * NR + k * NR + j].
// Each value is a plain gather from the padded input (no bounds tests, however small the map).
template <typename T>
AlignedBuffer<T> pack_batch_im2col(const T* x, const ConvParams& p, int nr, int64_t kc_step) {
  const int64_t G = p.groups, Cg = p.Cg(), KK = p.patch(), NQ = p.N * p.out_pixels();
  const int64_t NQpad = round_up(NQ, nr), HpWp = (p.H + 2 * p.pad_h) * (p.W + 2 * p.pad_w);
  const AlignedBuffer<T> xpad = padded_input(x, p, 0);
  const std::vector<int64_t> taps = tap_offsets(p), cols = column_offsets(p);
  const int64_t slices = ceil_div(KK, kc_step), panels = NQpad / nr;
  AlignedBuffer<T> bpack(G * KK * NQpad);
  parallel_for(G * slices * panels, [&](int64_t item) {
    const int64_t jp = item % panels, s = (item / panels) % slices, g = item / (panels * slices);
    const int64_t pc = s * kc_step, kc = std::min(kc_step, KK - pc);
    const int64_t q0 = jp * nr, cnt = std::min<int64_t>(nr, NQ - q0);
    const int64_t* qcols = cols.data() + q0;
    const T* xg = xpad.data() + g * Cg * HpWp;
    T* d = bpack.data() + g * KK * NQpad + pc * NQpad + jp * kc * nr;
    for (int64_t k = 0; k < kc; ++k, d += nr) {
      const T* src = xg + taps[pc + k];
      int64_t t = 0;
      for (; t < cnt; ++t) d[t] = src[qcols[t]];
      for (; t < nr; ++t) d[t] = T(0);
    }
  });
  return bpack;
}

// Writes a GEMM tile back to the images, adding the bias: output channel k in [k0, k1) of
// group g and batch column q in [q0, q1) (q = n*P + pixel) come from tile[(k - k0) * ks +
// (q - q0) * qs]; ks = row stride, qs = 1 for the usual orientation, the reverse for pixel rows.
template <typename T>
void scatter_to_images(const T* tile, int64_t ks, int64_t qs, int64_t g, int64_t k0, int64_t k1, int64_t q0,
                       int64_t q1, const T* bias, const ConvParams& p, T* y) {
  const int64_t Kg = p.Kg(), P = p.out_pixels();
  for (int64_t k = k0; k < k1; ++k) {
    const T b = bias ? bias[g * Kg + k] : T(0);
    const T* src = tile + (k - k0) * ks;
    for (int64_t q = q0; q < q1;) {
      const int64_t n = q / P, pix = q % P, cnt = std::min(P - pix, q1 - q);
      T* dst = y + (n * p.K + g * Kg + k) * P + pix;
      for (int64_t t = 0; t < cnt; ++t) dst[t] = src[(q - q0 + t) * qs] + b;
      q += cnt;
    }
  }
}

// y = the batched GEMM. panels(g, r0, r1, pc, kc, buf) gives group g's A rows [r0, r1) for
// reduction slice [pc, pc+kc) as MR-row panels (zero past Kg; panel r at (r - r0) * kc): packed
// into buf, or a prepacked block. Per slice, the work item's A panels (L2) and the B slice
// (kc x column block, L2) meet in a per-thread C tile.
template <typename T, typename Panels>
void batched_gemm(const MicroKernel<T>& uk, const ConvParams& p, const T* bpack, Panels&& panels,
                  const T* bias, T* y) {
  const int mr = uk.mr, nr = uk.nr;
  const int64_t G = p.groups, Kg = p.Kg(), KK = p.patch(), P = p.out_pixels(), NQ = p.N * P;
  const int64_t NQpad = round_up(NQ, nr), kc_step = slice_kc(KK, uk.kc);
  const int64_t jblocks = ceil_div(NQpad, uk.nc), ncb = round_up(ceil_div(NQpad, jblocks), nr);
  const int threads = max_threads();
  // Output-channel chunks: enough items for dynamic balancing. Each chunk re-reads only the
  // B slice (from L2), never more of W.
  const int64_t mpanels = ceil_div(Kg, mr);
  const int64_t want = std::max<int64_t>(1, ceil_div(threads, G * jblocks));
  const int64_t mstep = ceil_div(mpanels, std::min(mpanels, want)) * mr, mchunks = ceil_div(Kg, mstep);
  // Tile row stride: one cache line more than the block, so a micro-tile's rows do not all
  // fall into the same L1 sets.
  const int64_t ldt = ncb + 64 / static_cast<int64_t>(sizeof(T));
  std::vector<AlignedBuffer<T>> abufs(threads), tiles(threads);
  parallel_for(G * jblocks * mchunks, [&](int64_t item) {
    const int64_t mc = item % mchunks, jb = (item / mchunks) % jblocks, g = item / (mchunks * jblocks);
    const int64_t j0 = jb * ncb, j1 = std::min(NQpad, j0 + ncb);
    const int64_t m0 = mc * mstep, m1 = std::min(Kg, m0 + mstep);
    const int tid = thread_id();
    abufs[tid].resize(mstep * kc_step);
    tiles[tid].resize(mstep * ldt);
    T* abuf = abufs[tid].data();
    T* tile = tiles[tid].data();
    for (int64_t pc = 0; pc < KK; pc += kc_step) {
      const int64_t kc = std::min(kc_step, KK - pc);
      const T* bslice = bpack + g * KK * NQpad + pc * NQpad;
      const T* a = panels(g, m0, m1, pc, kc, abuf);
      // Column panels outer: one B panel stays in L1 while the chunk's A panels stream from L2.
      for (int64_t jr = j0; jr < j1; jr += nr)
        for (int64_t ir = m0; ir < m1; ir += mr)
          uk.fn(kc, a + (ir - m0) * kc, bslice + (jr / nr) * kc * nr, tile + (ir - m0) * ldt + (jr - j0), ldt, pc > 0);
    }
    scatter_to_images(tile, ldt, 1, g, m0, m1, j0, std::min(j1, NQ), bias, p, y);
  });
}

// The same GEMM transposed, for batches with few pixels: Y^T[N*P x Kg] = im2col^T * W^T, the
// pixels in MR-row panels (apack: pack_batch_im2col with MR-wide panels), the output channels
// in NR-column panels given by panels(g, c0, c1, pc, kc, buf) (NR wide, as batched_gemm's).
// 512->512 @3 N=8 has 72 pixels: 96 columns (a third wasted) the usual way round, 72 rows this way.
template <typename T, typename Panels>
void batched_gemm_pixel_rows(const MicroKernel<T>& uk, const ConvParams& p, const T* apack, Panels&& panels,
                             const T* bias, T* y) {
  const int mr = uk.mr, nr = uk.nr;
  const int64_t G = p.groups, Kg = p.Kg(), KK = p.patch(), P = p.out_pixels(), NQ = p.N * P;
  const int64_t NQpad = round_up(NQ, mr), kc_step = slice_kc(KK, uk.kc);
  const int threads = max_threads();
  // Output-channel chunks of whole NR panels, about two per thread: each packs only its own
  // columns of W, so W is still read once per call.
  const int64_t npanels = ceil_div(Kg, nr);
  const int64_t want = std::max<int64_t>(1, ceil_div(2 * threads, G));
  const int64_t cstep = ceil_div(npanels, std::min(npanels, want)) * nr, cchunks = ceil_div(Kg, cstep);
  const int64_t ldt = cstep + 64 / static_cast<int64_t>(sizeof(T));  // see batched_gemm
  std::vector<AlignedBuffer<T>> bbufs(threads), tiles(threads);
  parallel_for(G * cchunks, [&](int64_t item) {
    const int64_t g = item / cchunks, k0 = (item % cchunks) * cstep, k1 = std::min(Kg, k0 + cstep);
    const int64_t ncols = round_up(k1 - k0, nr);
    const int tid = thread_id();
    bbufs[tid].resize(cstep * kc_step);
    tiles[tid].resize(NQpad * ldt);
    T* bbuf = bbufs[tid].data();
    T* tile = tiles[tid].data();
    for (int64_t pc = 0; pc < KK; pc += kc_step) {
      const int64_t kc = std::min(kc_step, KK - pc);
      const T* aslice = apack + g * KK * NQpad + pc * NQpad;
      const T* b = panels(g, k0, k0 + ncols, pc, kc, bbuf);
      // Column panels outer: one B panel stays in L1 while the pixel panels stream from L2.
      for (int64_t jr = 0; jr < ncols; jr += nr)
        for (int64_t ir = 0; ir < NQpad; ir += mr)
          uk.fn(kc, aslice + (ir / mr) * kc * mr, b + jr * kc, tile + ir * ldt + jr, ldt, pc > 0);
    }
    scatter_to_images(tile, 1, ldt, g, k0, k1, 0, NQ, bias, p, y);
  });
}

// Columns the per-image shifted-row GEMM computes (padded-width columns, each image's last
// tile rounded up to NR) over the columns the batched GEMM computes.
double shifted_column_waste(const ConvParams& p, int nr) {
  const int64_t Wp = shifted_row_width(p);
  const double shifted = double(p.N) * round_up(p.OH * Wp, nr);
  return shifted / double(round_up(p.N * p.out_pixels(), nr));
}

}  // namespace

// Common ground of every batched path: not depthwise, enough rows (output channels) per group
// that each gathered im2col value feeds many FMAs (LeNet's 16 channels ran 2x slower batched),
// and a packed im2col of bounded size. Any stride (the im2col gather reads strided columns);
// the callers only ask for strided shapes in the forward pass.
bool batched_applies(const ConvParams& p, int nr, size_t elem_size) {
  if (p.Cg() == 1 || p.Kg() < 64) return false;
  const double packed = double(p.groups) * p.patch() * round_up(p.N * p.out_pixels(), nr) * elem_size;
  return packed <= 256.0 * (1 << 20);
}

// Thresholds from CPU-time A/B runs of both paths on VGG-16 and LeNet shapes (1 thread, 2-core
// AVX-512 Xeon). Batched wins where the shifted path wastes columns (3x3 maps: 2.4x faster) and
// where an image's columns are so few (7x7: 63) that streaming the packed W per image, not the
// FMAs, sets the pace (512->512 @7: 1.25x). From 14x14 up the gather of the batch's im2col
// costs about what it saves (batch 1, 512 channels: within the +-10% noise either way) or more
// (batch 8: shifted 1.15-1.25x faster), so those keep the shifted path.
bool batched_direct_pays(const ConvParams& p, int nr, size_t elem_size, bool input_grad) {
  if (!batched_applies(p, nr, elem_size)) return false;
  const double waste = shifted_column_waste(p, nr);
  const bool thin_images = p.OH * shifted_row_width(p) <= 4 * nr;
  // The input gradient's flipped weight panels pack more slowly (a strided gather, not a
  // transpose): thin images only pay with 256+ rows (512->512 @7: 1.6x, 64->64 @7: 0.9x).
  if (input_grad) return waste > 1.5 || (thin_images && p.Kg() >= 256);
  return waste > 1.15 || thin_images;
}

// The weight gradient reduces over the shifted path's virtual pixels, Wp per OW real ones:
// batched (real pixels only) was 1.2-1.5x faster at 3x3-14x14 maps, 0.8x at 28x28 N=8 (Wp/OW 1.07).
bool pixel_rows_pay(const ConvParams& p, int mr, int nr) {
  const int64_t NQ = p.N * p.out_pixels(), Kg = p.Kg();
  return double(round_up(NQ, mr)) * round_up(Kg, nr) < 0.9 * double(round_up(NQ, nr)) * round_up(Kg, mr);
}

bool batched_weight_grad_pays(const ConvParams& p, int nr, size_t elem_size) {
  return batched_applies(p, nr, elem_size) && p.W + 2 * p.pad_w > 1.1 * p.OW;
}

template <typename T>
void conv2d_batched_forward(const T* x, const T* w, const T* bias, T* y, const ConvParams& p, bool pixel_rows,
                            const T* prepacked) {
  const Isa isa = active_isa();
  const TransposePanelFn<T> transpose = transpose_panel<T>(isa);
  const int64_t KK = p.patch();
  // Group g's weight rows [r0, r1) for slice pc as panels of `width` rows: from the prepacked
  // whole (pack_weight_panels_all's layout, direct_pack.h) or packed into buf.
  auto panels_of_width = [&](int width) {
    const int64_t rows_pad = round_up(p.Kg(), width);
    return [&, width, rows_pad](int64_t g, int64_t r0, int64_t r1, int64_t pc, int64_t kc, T* buf) -> const T* {
      if (prepacked) return prepacked + g * rows_pad * KK + pc * rows_pad + (r0 / width) * kc * width;
      for (int64_t r = r0; r < r1; r += width) pack_weight_panel(w, p, transpose, width, g, r, pc, kc, buf + (r - r0) * kc);
      return buf;
    };
  };
  if (pixel_rows) {
    const MicroKernel<T> uk = batched_pixel_rows_kernel<T>(p);
    const AlignedBuffer<T> apack = pack_batch_im2col(x, p, uk.mr, slice_kc(KK, uk.kc));
    batched_gemm_pixel_rows(uk, p, apack.data(), panels_of_width(uk.nr), bias, y);
    return;
  }
  const MicroKernel<T> uk = micro_kernel<T>(isa, p.Kg());
  const AlignedBuffer<T> bpack = pack_batch_im2col(x, p, uk.nr, slice_kc(KK, uk.kc));
  batched_gemm(uk, p, bpack.data(), panels_of_width(uk.mr), bias, y);
}

template <typename T>
void conv2d_batched_input_grad(const T* dy, const T* w, T* dx, const ConvParams& p, bool pixel_rows) {
  const ConvParams q = adjoint_params(p);
  // The adjoint's rows [r0, r1) for slice pc as panels of `width` (the flipped, transposed kernel).
  auto flipped_panels = [&](int width) {
    return [&, width](int64_t g, int64_t r0, int64_t r1, int64_t pc, int64_t kc, T* buf) -> const T* {
      for (int64_t r = r0; r < r1; r += width) pack_flipped_weight_panel(w, p, width, g, r, pc, kc, buf + (r - r0) * kc);
      return buf;
    };
  };
  if (pixel_rows) {
    const MicroKernel<T> uk = micro_kernel<T>(active_isa());
    const AlignedBuffer<T> apack = pack_batch_im2col(dy, q, uk.mr, slice_kc(q.patch(), uk.kc));
    batched_gemm_pixel_rows(uk, q, apack.data(), flipped_panels(uk.nr), static_cast<const T*>(nullptr), dx);
    return;
  }
  const MicroKernel<T> uk = micro_kernel<T>(active_isa(), q.Kg());
  const AlignedBuffer<T> bpack = pack_batch_im2col(dy, q, uk.nr, slice_kc(q.patch(), uk.kc));
  batched_gemm(uk, q, bpack.data(), flipped_panels(uk.mr), static_cast<const T*>(nullptr), dx);
}

// dw[Kg x Cg*R*S] = sum over the batch's real pixels q = n*P + pixel of dy[Kg x q] * im2col^T[q x Cg*R*S].
template <typename T>
void conv2d_batched_weight_grad(const T* x, const T* dy, T* dw, const ConvParams& p) {
  const MicroKernel<T> uk = micro_kernel<T>(active_isa(), p.Kg());
  const int mr = uk.mr, nr = uk.nr;
  const int64_t G = p.groups, Kg = p.Kg(), Cg = p.Cg(), KK = p.patch(), P = p.out_pixels();
  const int64_t HpWp = (p.H + 2 * p.pad_h) * (p.W + 2 * p.pad_w);
  const AlignedBuffer<T> xpad = padded_input(x, p, 0);
  const std::vector<int64_t> taps = tap_offsets(p), cols = column_offsets(p);
  weight_grad_gemm(
      uk, G, Kg, KK, p.N * P, dw,
      [&](int64_t g, int64_t q0, int64_t kc, T* abuf) {  // A = dy[Kg x q], MR rows per panel
        for (int64_t q = q0; q < q0 + kc;) {
          const int64_t n = q / P, pix = q % P, cnt = std::min(P - pix, q0 + kc - q);
          const T* dyg = dy + (n * p.K + g * Kg) * P + pix;
          for (int64_t i0 = 0; i0 < Kg; i0 += mr) {
            const int64_t rows = std::min<int64_t>(mr, Kg - i0);
            T* d = abuf + (i0 / mr) * kc * mr + (q - q0) * mr;
            for (int64_t t = 0; t < cnt; ++t) {
              int64_t i = 0;
              for (; i < rows; ++i) d[t * mr + i] = dyg[(i0 + i) * P + t];
              for (; i < mr; ++i) d[t * mr + i] = T(0);
            }
          }
          q += cnt;
        }
      },
      [&](int64_t g, int64_t q0, int64_t kc, int64_t j0, int64_t nc, T* dst) {  // B = im2col^T, gathered
        const T* xg = xpad.data() + g * Cg * HpWp;
        for (int64_t jp = 0; jp < nc; jp += nr) {
          const int64_t width = std::min<int64_t>(nr, nc - jp);
          const int64_t* tp = taps.data() + j0 + jp;
          T* d = dst + (jp / nr) * kc * nr;
          for (int64_t k = 0; k < kc; ++k, d += nr) {
            const T* src = xg + cols[q0 + k];
            int64_t j = 0;
            for (; j < width; ++j) d[j] = src[tp[j]];
            for (; j < nr; ++j) d[j] = T(0);
          }
        }
      });
}

template void conv2d_batched_forward<float>(const float*, const float*, const float*, float*, const ConvParams&, bool,
                                            const float*);
template void conv2d_batched_forward<double>(const double*, const double*, const double*, double*, const ConvParams&, bool,
                                             const double*);
template void conv2d_batched_input_grad<float>(const float*, const float*, float*, const ConvParams&, bool);
template void conv2d_batched_input_grad<double>(const double*, const double*, double*, const ConvParams&, bool);
template void conv2d_batched_weight_grad<float>(const float*, const float*, float*, const ConvParams&);
template void conv2d_batched_weight_grad<double>(const double*, const double*, double*, const ConvParams&);

}  // namespace fastconv
