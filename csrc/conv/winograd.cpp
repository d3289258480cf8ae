// Winograd F(m x m, 3 x 3) convolution driver (see winograd.h for the algorithm).
//
// Work is organised per group, per block of nb tiles (tiles numbered over images, rows, columns):
//   1. input transform   V[xi][c][0..nb)   parallel over (channel, chunk of 64 tiles)
//   2. alpha^2 GEMMs     M[xi] = U[xi] V[xi]  parallel over xi; U is pre-packed A panels,
//                        V rows are packed into B panels by the shared gemm_driver
//   3. output transform  y tiles + bias (+ReLU)  parallel over (output channel, chunk)
// nb is chosen so V and M of a block stay within one core's L2 when U is small, and is kept
// >= 128 when U is large (U streams from memory once per block, so nb is its reuse factor),
// never above a 32 MiB cap. With many blocks each thread takes whole blocks; with few (batch 1
// on deep layers) every phase splits over channels / xi, so batch 1 also uses every core.
#include "conv/flip.h"
#include "conv/winograd.h"

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
  std::vector<AlignedBuffer<T>> V, M, scratch, bbuf;
  void ensure(size_t threads) {
    if (V.size() < threads) { V.resize(threads); M.resize(threads); scratch.resize(threads); bbuf.resize(threads); }
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

}  // namespace

int64_t winograd_weights_size(int64_t K, int64_t Cg, int64_t groups, int m, int mr) {
  const int64_t a = m + 2;
  return groups * a * a * round_up(K / groups, mr) * Cg;
}

template <typename T>
WinoPackInfo winograd_pack_info() {
  const MicroKernel<T> uk = micro_kernel<T>(active_isa());
  return {uk.mr, uk.kc};
}

const char* winograd_unsupported(const ConvParams& p) {
  if (p.R != 3 || p.S != 3) return "Winograd needs a 3x3 kernel";
  if (p.stride_h != 1 || p.stride_w != 1) return "Winograd needs stride 1";
  if (p.dil_h != 1 || p.dil_w != 1) return "Winograd needs dilation 1";
  return nullptr;
}

template <typename T>
WinoPackInfo winograd_transform_weights(const T* w, int64_t K, int64_t Cg, int64_t groups, int m, T* U) {
  const WinoPackInfo info = winograd_pack_info<T>();
  const WinoKernels<T> wk = wino_kernels<T>(active_isa());
  const std::vector<T> G = cast<T>(winograd_matrices(m).G);
  // Slices of the reduction over Cg exactly as gemm_driver takes them (slice_kc).
  const int a = m + 2, mr = info.mr;
  const int64_t kcb = slice_kc(Cg, info.kc);
  const int64_t Kg = K / groups, mpad = round_up(Kg, mr), slab = mpad * Cg;
  const int64_t npanels = mpad / mr, nslices = ceil_div(Cg, kcb);
  const int threads = max_threads();
  std::vector<AlignedBuffer<T>> srcs(threads), scratch(threads);
  // One item = one (group, channel slice, row panel): its kc * mr filters are interleaved
  // so that transformed values land contiguously in the packed A layout.
  parallel_for(groups * nslices * npanels, [&](int64_t item) {
    const int64_t panel = item % npanels, rest = item / npanels, s = rest % nslices, g = rest / nslices;
    const int64_t pc = s * kcb, kc = std::min<int64_t>(kcb, Cg - pc), L = kc * mr;
    const int tid = thread_id();
    srcs[tid].resize(9 * kcb * mr);
    scratch[tid].resize(3 * a * kcb * mr);
    T* src = srcs[tid].data();
    for (int64_t c = 0; c < kc; ++c)
      for (int kk = 0; kk < mr; ++kk) {
        const int64_t k = panel * mr + kk;
        const T* f = w + ((g * Kg + k) * Cg + pc + c) * 9;
        for (int ab = 0; ab < 9; ++ab) src[ab * L + c * mr + kk] = k < Kg ? f[ab] : T(0);
      }
    T* dst = U + g * a * a * slab + pc * mpad + panel * kc * mr;
    wk.weight(a, G.data(), src, L, dst, slab, scratch[tid].data());
  });
  return info;
}

template <typename T>
void conv2d_winograd_forward(const T* x, const T* w, const T* U, WinoPackInfo info, const T* bias,
                             T* y, const ConvParams& p, int m, bool relu) {
  const MicroKernel<T> uk = micro_kernel<T>(active_isa());
  const WinoKernels<T> wk = wino_kernels<T>(active_isa());
  const WinoMatrices& mat = winograd_matrices(m);
  const std::vector<T> AT = cast<T>(mat.AT), BT = cast<T>(mat.BT);
  const int a = m + 2, a2 = a * a, mr = uk.mr, nr = uk.nr;
  const int64_t G = p.groups, Kg = p.Kg(), Cg = p.Cg(), mpad = round_up(Kg, mr), slab = mpad * Cg;
  const WinoTiling tl{m, a, p.H, p.W, p.OH, p.OW, p.pad_h, p.pad_w, ceil_div(p.OH, m), ceil_div(p.OW, m)};
  const int64_t total = p.N * tl.TH * tl.TW;

  // Transformed weights in the current micro-kernel's layout.
  WinoWorkspace<T>& wsp = workspace<T>();
  const int threads = max_threads();
  wsp.ensure(threads);
  AlignedBuffer<T>& ubuf = wsp.U;
  if (U == nullptr) {
    ubuf.resize(winograd_weights_size(p.K, Cg, G, m, mr));
    winograd_transform_weights<T>(w, p.K, Cg, G, m, ubuf.data());
    U = ubuf.data();
  } else if (info.mr != uk.mr || info.kc != uk.kc) {
    // Packed under another ISA: move every value to its place in this ISA's panels.
    const int64_t mpad_src = round_up(Kg, info.mr), slab_src = mpad_src * Cg;
    ubuf.resize(winograd_weights_size(p.K, Cg, G, m, mr));
    T* dst = ubuf.data();
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

  // Tile block size (see the file comment).
  const int64_t per_tile = int64_t(a2) * (Cg + Kg) * int64_t(sizeof(T));
  const int64_t u_group_bytes = int64_t(a2) * Kg * Cg * int64_t(sizeof(T));
  int64_t nb = (int64_t(1) << 20) / per_tile;  // 1 MiB of V + M: one core's L2
  nb = std::max<int64_t>(nb, u_group_bytes > (int64_t(1) << 20) ? 128 : 32);
  // All threads' blocks together stay within 32 MiB (threads may each hold one).
  nb = std::min<int64_t>(nb, std::max<int64_t>(int64_t(32), (int64_t(32) << 20) / max_threads() / per_tile));
  nb = std::min<int64_t>(nb, std::max<int64_t>(uk.nc, 32));
  nb = std::min<int64_t>(round_up(nb, 16), total);
  const int64_t nblocks = ceil_div(total, nb);

  // Enough blocks: each thread runs whole blocks in its own workspace (one fork/join in all,
  // which matters on a loaded machine where every barrier can cost a time slice). Few blocks
  // (deep layers, batch 1): one block at a time, each phase split across the threads.
  const bool outer = G * nblocks >= 2 * threads;
  std::vector<AlignedBuffer<T>>&Vs = wsp.V, &Ms = wsp.M, &scratch = wsp.scratch, &bbufs = wsp.bbuf;
  const int64_t in_img = p.C * p.H * p.W, out_img = p.K * p.OH * p.OW;

  auto run_block = [&](int64_t g, int64_t t0, int ws) {
    const T* Ug = U + g * a2 * slab;
    Vs[ws].resize(a2 * Cg * nb);
    Ms[ws].resize(a2 * Kg * nb);
    T* V = Vs[ws].data();
    T* M = Ms[ws].data();
    const int64_t cnt = std::min(nb, total - t0), nch = ceil_div(cnt, kWinoChunk);
    // parallel_for runs serially inside the outer parallel loop.
    parallel_for(Cg * nch, [&](int64_t item) {
      const int64_t c = item / nch, j0 = (item % nch) * kWinoChunk;
      const int tid = thread_id();
      scratch[tid].resize(2 * a2 * kWinoChunk);
      wk.input(tl, BT.data(), x + (g * Cg + c) * p.H * p.W, in_img, t0 + j0,
               std::min(kWinoChunk, cnt - j0), V + c * nb + j0, Cg * nb, scratch[tid].data());
    });
    parallel_for(a2, [&](int64_t xi) {
      const int tid = thread_id();
      bbufs[tid].resize(uk.kc * round_up(uk.nc, nr));
      const T* Ux = Ug + xi * slab;
      const T* Vx = V + xi * Cg * nb;
      gemm_driver(
          uk, Kg, Cg, 0, cnt, [&](int64_t k0, int64_t) { return Ux + k0 * mpad; },
          [&](int64_t k0, int64_t kc, int64_t j0, int64_t nc, T* dst) {
            pack_b_rowmajor(Vx, nb, k0, kc, j0, nc, nr, dst);
          },
          M + xi * Kg * nb, nb, false, bbufs[tid].data());
    });
    parallel_for(Kg * nch, [&](int64_t item) {
      const int64_t k = item / nch, j0 = (item % nch) * kWinoChunk;
      const int tid = thread_id();
      scratch[tid].resize(2 * a2 * kWinoChunk);
      wk.output(tl, AT.data(), M + k * nb + j0, Kg * nb, t0 + j0, std::min(kWinoChunk, cnt - j0),
                bias ? bias[g * Kg + k] : T(0), relu, y + (g * Kg + k) * p.OH * p.OW, out_img,
                scratch[tid].data());
    });
  };

  if (outer) {
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
  const std::vector<T> wt = flipped_transposed_kernel(w, p);  // the adjoint's kernel
  ConvParams q = p;
  q.C = p.K; q.H = p.OH; q.W = p.OW;
  q.K = p.C; q.OH = p.H; q.OW = p.W;
  q.pad_h = 2 - p.pad_h;
  q.pad_w = 2 - p.pad_w;
  conv2d_winograd_forward<T>(dy, wt.data(), nullptr, {}, nullptr, dx, q, m, false);
}

template WinoPackInfo winograd_pack_info<float>();
template WinoPackInfo winograd_pack_info<double>();
template WinoPackInfo winograd_transform_weights<float>(const float*, int64_t, int64_t, int64_t, int, float*);
template WinoPackInfo winograd_transform_weights<double>(const double*, int64_t, int64_t, int64_t, int, double*);
template void conv2d_winograd_forward<float>(const float*, const float*, const float*, WinoPackInfo, const float*, float*, const ConvParams&, int, bool);
template void conv2d_winograd_forward<double>(const double*, const double*, const double*, WinoPackInfo, const double*, double*, const ConvParams&, int, bool);
template void conv2d_winograd_input_grad<float>(const float*, const float*, float*, const ConvParams&, int);
template void conv2d_winograd_input_grad<double>(const double*, const double*, double*, const ConvParams&, int);

}  // namespace fastconv
