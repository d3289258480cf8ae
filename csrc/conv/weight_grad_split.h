// How the weight gradient's work is split, shared by its im2col and shifted-row paths.
// dw[Kg x KK] = sum over q of dy[Kg x q] * patches[q x KK], q running over every image's
// output pixels. Threads either split the reduction (each chunk of q sums into its own
// partial dw; the partials are added in chunk order, so the result does not depend on which
// thread ran which chunk) or, when there is little to reduce but dw is wide, split dw's
// columns (disjoint outputs, no partials).
#pragma once
#include <algorithm>
#include <cstdint>
#include <vector>

#include "common/gemm.h"
#include "common/parallel.h"
#include "common/params.h"
#include "common/workspace.h"

namespace fastconv {

struct WeightGradSplit {
  int64_t qchunks, qstep;  // reduction chunks
  int64_t cchunks, cstep;  // column chunks (multiples of NR)
};

inline WeightGradSplit split_weight_grad(int64_t Q, int64_t KK, int nr, int threads) {
  int64_t cchunks = 1, qchunks = 1;
  if (threads > 1) {
    if (Q < 2048 * threads && KK >= 4 * nr * threads) cchunks = threads;
    else qchunks = std::min<int64_t>(threads, (Q + 63) / 64);
  }
  const int64_t cstep = round_up((KK + cchunks - 1) / cchunks, nr);
  const int64_t qstep = (Q + qchunks - 1) / qchunks;
  return {(Q + qstep - 1) / qstep, qstep, (KK + cstep - 1) / cstep, cstep};
}

// One partial sum per reduction chunk; chunk 0 is the output itself. Nothing is zeroed: the
// first reduction slice of each chunk's GEMM overwrites it (dw is megabytes at 512 channels,
// and a zeroing pass cost as much as a third of a small map's GEMM).
template <typename T>
class ChunkPartials {
 public:
  ChunkPartials(T* out, int64_t size, int64_t chunks) : out_(out), size_(size), extra_(chunks > 1 ? chunks - 1 : 0) {
    for (auto& b : extra_) b.resize(size);
  }
  T* chunk(int64_t c) { return c == 0 ? out_ : extra_[c - 1].data(); }
  // out += every other chunk, in chunk order.
  void reduce() {
    if (extra_.empty()) return;
    parallel_for((size_ + 4095) / 4096, [&](int64_t blk) {
      const int64_t i0 = blk * 4096, i1 = std::min(size_, i0 + 4096);
      for (const auto& b : extra_) {
        const T* src = b.data();
        for (int64_t i = i0; i < i1; ++i) out_[i] += src[i];
      }
    });
  }

 private:
  T* out_;
  int64_t size_;
  std::vector<AlignedBuffer<T>> extra_;
};

// dw[g] (Kg x KK) = sum over q in [0, Q) of A_g[Kg x q] * B_g[q x KK], split as
// split_weight_grad says. The two paths differ only in how they pack the operands:
//   pack_a(g, q, kc, abuf)          A rows for q in [q, q+kc), MR-row panels ([panel][k][MR])
//   pack_b(g, q, kc, j0, nc, dst)   B for q in [q, q+kc), columns [j0, j0+nc), NR panels
template <typename T, typename PackA, typename PackB>
void weight_grad_gemm(const MicroKernel<T>& uk, int64_t G, int64_t Kg, int64_t KK, int64_t Q, T* dw,
                      PackA&& pack_a, PackB&& pack_b) {
  if (Q == 0) {  // no pixels: nothing would overwrite dw
    std::fill(dw, dw + G * Kg * KK, T(0));
    return;
  }
  const int threads = max_threads();
  const WeightGradSplit split = split_weight_grad(Q, KK, uk.nr, threads);
  ChunkPartials<T> partials(dw, G * Kg * KK, split.qchunks);
  // dw's column blocks: narrow enough that the Kg x nc block of C stays in L2 across the
  // reduction slices (at 512 channels a 1024-column block was 2 MiB and went to L3 per slice).
  MicroKernel<T> ukb = uk;
  const int64_t c_cols = (int64_t(1) << 20) / (Kg * static_cast<int64_t>(sizeof(T)));
  ukb.nc = static_cast<int>(std::clamp<int64_t>(c_cols / uk.nr * uk.nr, 4 * uk.nr, uk.nc));
  const int64_t mpad = round_up(Kg, uk.mr);
  // Fewer items than threads (a short reduction into a narrow dw: MobileNetV2's 160 -> 960 1x1
  // at 7x7 was one item, so one thread): dw's rows are cut into MR-aligned chunks as well.
  // Each chunk packs all of A (Kg x a short q), which costs little beside its GEMM.
  const int64_t outer = G * split.qchunks * split.cchunks;
  int64_t mstep = mpad;
  if (outer < threads)  // (more than one item per thread measured slower: each packs A again)
    mstep = round_up(ceil_div(mpad, std::min<int64_t>(ceil_div(threads, outer), mpad / uk.mr)), uk.mr);
  const int64_t mchunks = ceil_div(Kg, mstep);
  std::vector<AlignedBuffer<T>> abufs(threads), bbufs(threads);
  parallel_for(outer * mchunks, [&](int64_t item) {
    const int64_t mc = item % mchunks, m0 = mc * mstep, m1 = std::min(Kg, m0 + mstep);
    const int64_t cc = (item / mchunks) % split.cchunks, rest = item / mchunks / split.cchunks;
    const int64_t qc = rest % split.qchunks, g = rest / split.qchunks;
    const int64_t q0 = qc * split.qstep, q1 = std::min(Q, q0 + split.qstep);
    const int64_t col0 = cc * split.cstep, col1 = std::min(KK, col0 + split.cstep);
    const int tid = thread_id();
    bbufs[tid].resize(ukb.kc * round_up(ukb.nc, ukb.nr));
    // A is packed once for the whole chunk (every column block reuses it) when that takes at
    // most 4 MiB; otherwise slice by slice as the driver asks. Slice pc sits at pc * mpad.
    const int64_t qlen = q1 - q0, kc_step = slice_kc(qlen, ukb.kc);
    const bool whole = mpad * qlen * static_cast<int64_t>(sizeof(T)) <= (int64_t(4) << 20) && col1 - col0 > ukb.nc;
    abufs[tid].resize(mpad * (whole ? qlen : kc_step));
    T* abuf = abufs[tid].data();
    if (whole)
      for (int64_t pc = 0; pc < qlen; pc += kc_step) pack_a(g, q0 + pc, std::min(kc_step, qlen - pc), abuf + pc * mpad);
    // Rows [m0, m1): their panels start (m0 / MR) panels into each packed slice of A.
    gemm_driver(
        ukb, m1 - m0, qlen, col0, col1,
        [&](int64_t k0, int64_t kc) {
          if (whole) return static_cast<const T*>(abuf + k0 * mpad + (m0 / uk.mr) * kc * uk.mr);
          pack_a(g, q0 + k0, kc, abuf);
          return static_cast<const T*>(abuf + (m0 / uk.mr) * kc * uk.mr);
        },
        [&](int64_t k0, int64_t kc, int64_t j0, int64_t nc, T* dst) { pack_b(g, q0 + k0, kc, j0, nc, dst); },
        partials.chunk(qc) + g * Kg * KK + m0 * KK, KK, false, bbufs[tid].data());
  });
  partials.reduce();
}

}  // namespace fastconv
