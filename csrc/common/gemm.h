// Packed, register-blocked GEMM core shared by direct convolution (implicit GEMM: the
// im2col matrix is packed on the fly, never materialised), its gradients and Winograd's
// batched element-wise stage.
//
//   C[M x N] (+)= A[M x K] * B[K x N]
//
// Packed layouts (BLIS-style, zero-padded to whole panels):
//   A block: for each MR-row panel, kc rows of MR values      -> a[panel][k][MR]
//   B block: for each NR-column panel, kc rows of NR values   -> b[panel][k][NR]
// A micro-kernel computes one MR x NR tile of C from one A panel and one B panel.
#pragma once
#include <algorithm>
#include <cstdint>

#include "common/cpu.h"
#include "elementwise/epilogue.h"

namespace fastconv {

// What a tile applies to its values in registers before it stores them (the conv output
// epilogue of elementwise/epilogue.h, less SiLU): c = act(c + bias[i] (+ residual)), or
// act(c + bias[i]) + residual. Pointers are the tile's own: bias[i] for its row i, the
// residual laid out as c (the same ldc).
template <typename T>
struct TileEpilogue {
  const T* bias = nullptr;
  const T* residual = nullptr;
  int act = kActNone;  // kActNone, kActRelu or kActClamp
  T lo = T(0), hi = T(0);
  bool residual_after_act = false;
};

// The tile epilogue of an output block at `at` (an address in ep->y) whose rows' bias starts at
// `bias` (may be null): the conv's output epilogue (may be null: bias only), its residual at the
// block's own offset.
template <typename T>
inline TileEpilogue<T> tile_epilogue_for(const OutputEpilogue<T>* ep, const T* bias, const T* at) {
  TileEpilogue<T> e;
  e.bias = bias;
  if (ep) {
    e.act = ep->act;
    e.lo = ep->lo;
    e.hi = ep->hi;
    e.residual = ep->residual ? ep->residual + (at - ep->y) : nullptr;
    e.residual_after_act = ep->residual_after_act;
  }
  return e;
}

// The scalar form of the same, for one value of row i at offset j (partial tiles, scalar tiles).
template <typename T>
inline T tile_epilogue_value(const TileEpilogue<T>& e, T v, int64_t i, int64_t j, int64_t ldc) {
  if (e.bias) v += e.bias[i];
  if (e.residual && !e.residual_after_act) v += e.residual[i * ldc + j];
  if (e.act == kActRelu) v = epilogue_activate<T, kActRelu>(v, e.lo, e.hi);
  else if (e.act == kActClamp) v = epilogue_activate<T, kActClamp>(v, e.lo, e.hi);
  if (e.residual && e.residual_after_act) v += e.residual[i * ldc + j];
  return v;
}

template <typename T>
struct MicroKernel {
  // c[i*ldc + j] (+)= sum_k a[k*MR + i] * b[k*NR + j]   for a full MR x NR tile
  using Fn = void (*)(int64_t kc, const T* a, const T* b, T* c, int64_t ldc, bool accumulate);
  // The same tile with B read in place: row k of the B panel is b + offsets[k] (NR values,
  // unaligned). Stride-1 convolution uses it to read shifted input rows with no packing.
  using OffsetsFn = void (*)(int64_t kc, const T* a, const T* b, const int64_t* offsets, T* c,
                             int64_t ldc, bool accumulate);
  // The plain tile with an epilogue on its values before the store (the last reduction slice).
  using EpilogueFn = void (*)(int64_t kc, const T* a, const T* b, T* c, int64_t ldc, bool accumulate,
                              const TileEpilogue<T>& e);
  Fn fn;
  OffsetsFn fn_offsets;
  EpilogueFn fn_epilogue;
  int mr, nr;
  int kc, nc;  // cache blocking: kc rows of a B panel stay in L1, kc x nc of B in L2
  const char* name;
};

template <typename K> class KernelTable;
// Every micro-kernel of a dtype, as listed in kernel_list() (tests run tiles by name from it).
template <typename T> const KernelTable<MicroKernel<T>>& gemm_kernels();
template <> const KernelTable<MicroKernel<float>>& gemm_kernels<float>();
template <> const KernelTable<MicroKernel<double>>& gemm_kernels<double>();

// The micro-kernel for the given ISA (the scalar one where the ISA has none for T).
MicroKernel<float> micro_kernel_f32(Isa isa);
MicroKernel<double> micro_kernel_f64(Isa isa);
// The kernel that wastes the fewest padded rows for a GEMM with M rows (the ISA's default
// unless another of its kernels tiles M exactly where the default would not).
MicroKernel<float> micro_kernel_f32_for_rows(Isa isa, int64_t M);
template <typename T> MicroKernel<T> micro_kernel(Isa isa, int64_t M = 0);
template <> inline MicroKernel<float> micro_kernel<float>(Isa isa, int64_t M) {
  return M > 0 ? micro_kernel_f32_for_rows(isa, M) : micro_kernel_f32(isa);
}
template <> inline MicroKernel<double> micro_kernel<double>(Isa isa, int64_t) { return micro_kernel_f64(isa); }

// Packs rows [m0, m0+mc) x cols [k0, k0+kc) of a strided matrix A(i, k) = a[i*rs + k*cs]
// into panels of MR rows (zero-padded).
template <typename T>
void pack_a_strided(const T* a, int64_t rs, int64_t cs, int64_t m0, int64_t mc, int64_t k0,
                    int64_t kc, int mr, T* dst) {
  for (int64_t p = 0; p < mc; p += mr) {
    const int64_t rows = std::min<int64_t>(mr, mc - p);
    for (int64_t k = 0; k < kc; ++k) {
      T* d = dst + (p / mr) * kc * mr + k * mr;
      const T* s = a + (m0 + p) * rs + (k0 + k) * cs;
      int64_t i = 0;
      for (; i < rows; ++i) d[i] = s[i * rs];
      for (; i < mr; ++i) d[i] = T(0);
    }
  }
}

// Packs rows [k0, k0+kc) x cols [n0, n0+nc) of a row-major B (row stride ldb) into NR panels.
template <typename T>
void pack_b_rowmajor(const T* b, int64_t ldb, int64_t k0, int64_t kc, int64_t n0, int64_t nc,
                     int nr, T* dst) {
  for (int64_t j = 0; j < nc; j += nr) {
    const int64_t cols = std::min<int64_t>(nr, nc - j);
    T* d = dst + (j / nr) * kc * nr;
    for (int64_t k = 0; k < kc; ++k) {
      const T* s = b + (k0 + k) * ldb + n0 + j;
      int64_t t = 0;
      for (; t < cols; ++t) d[k * nr + t] = s[t];
      for (; t < nr; ++t) d[k * nr + t] = T(0);
    }
  }
}

// Round x up to a multiple of m.
inline int64_t round_up(int64_t x, int64_t m) { return (x + m - 1) / m * m; }

// The reduction slice length used for a reduction of K: at most kc_max, and balanced so that
// no thin last slice costs a whole extra pass over C (e.g. K=196 -> 98+98, not 192+4).
// Pre-packed A blocks and gemm_driver must agree on it.
inline int64_t slice_kc(int64_t K, int64_t kc_max) {
  const int64_t slices = (K + kc_max - 1) / kc_max;
  return (K + slices - 1) / slices;
}

// Single-threaded block driver: C rows [0, M) x cols [n0, n1), reduction over [0, K).
//   get_a(k0, kc)                -> pointer to the packed A panels for all M rows of that slice
//   pack_b(k0, kc, j0, nc, dst)  -> packs B rows [k0,k0+kc) x cols [j0,j0+nc) into NR panels
// accumulate=false overwrites C; true adds to it. bbuf holds uk.kc*round_up(uk.nc, NR) values.
// ep (may be null): applied by each tile of the last reduction slice before its store, its
// bias for C's row 0 and its residual laid out as C.
// Tile order within a slice: column panels outer (one B panel stays in L1 while the A panels
// stream from L2), or with rows_outer each MR-row panel sweeps every column panel before the
// next (the A panel stays in L1, the B panels stream from L2): C is then written as MR long
// row runs rather than MR-row strips of NR columns, which pays where C goes out to memory (see
// pointwise_gemm's rule).
template <typename T, typename GetA, typename PackB>
void gemm_driver(const MicroKernel<T>& uk, int64_t M, int64_t K, int64_t n0, int64_t n1,
                 GetA&& get_a, PackB&& pack_b, T* C, int64_t ldc, bool accumulate, T* bbuf,
                 const TileEpilogue<T>* ep = nullptr, bool rows_outer = false) {
  const int mr = uk.mr, nr = uk.nr;
  alignas(64) T tile[32 * 64];  // one partial MR x NR tile (mr*nr <= 2048)
  const int64_t kc_step = slice_kc(K, uk.kc);
  for (int64_t jc = n0; jc < n1; jc += uk.nc) {
    const int64_t nc = std::min<int64_t>(uk.nc, n1 - jc);
    for (int64_t pc = 0; pc < K; pc += kc_step) {
      const int64_t kc = std::min<int64_t>(kc_step, K - pc);
      const bool acc = accumulate || pc > 0;
      const bool last = ep && pc + kc >= K;
      pack_b(pc, kc, jc, nc, bbuf);
      const T* ablock = get_a(pc, kc);
      const int64_t panels = (nc + nr - 1) / nr, row_panels = (M + mr - 1) / mr;
      const int64_t n_outer = rows_outer ? row_panels : panels, n_inner = rows_outer ? panels : row_panels;
      for (int64_t outer = 0; outer < n_outer; ++outer)
        for (int64_t inner = 0; inner < n_inner; ++inner) {
          const int64_t jr = (rows_outer ? inner : outer) * nr, ir = (rows_outer ? outer : inner) * mr;
          const int64_t cols = std::min<int64_t>(nr, nc - jr);
          const T* bp = bbuf + (jr / nr) * kc * nr;
          const int64_t rows = std::min<int64_t>(mr, M - ir);
          const T* ap = ablock + (ir / mr) * kc * mr;
          T* cp = C + ir * ldc + jc + jr;
          TileEpilogue<T> te;
          if (last) {
            te = *ep;
            te.bias = ep->bias ? ep->bias + ir : nullptr;
            te.residual = ep->residual ? ep->residual + ir * ldc + jc + jr : nullptr;
          }
          if (rows == mr && cols == nr) {
            if (last) uk.fn_epilogue(kc, ap, bp, cp, ldc, acc, te);
            else uk.fn(kc, ap, bp, cp, ldc, acc);
          } else {
            if (acc)
              for (int64_t i = 0; i < rows; ++i)
                for (int64_t j = 0; j < cols; ++j) tile[i * nr + j] = cp[i * ldc + j];
            uk.fn(kc, ap, bp, tile, nr, acc);
            for (int64_t i = 0; i < rows; ++i)
              for (int64_t j = 0; j < cols; ++j)
                cp[i * ldc + j] = last ? tile_epilogue_value(te, tile[i * nr + j], i, j, ldc) : tile[i * nr + j];
          }
        }
    }
  }
}

}  // namespace fastconv
