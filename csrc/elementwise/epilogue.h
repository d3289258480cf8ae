// The activation and residual add that run on a conv's output after its bias (what the
// torch.compile backend fuses after a conv: an eval BatchNorm folded into the weights leaves a
// bias, then ReLU / ReLU6 / hardtanh / SiLU and a residual add):
//
//   y = act(y (+ residual))  or  y = act(y) + residual      (residual_after_act)
//
// Conv families apply it inside their own output pass where they have one that touches each
// output block once while it is in cache (the pointwise GEMMs, the dense depthwise kernels, the
// shifted-row paths' copy out through epilogue_store_rows); the rest call epilogue_in_place over
// the whole output after computing it, in the same native call.
#pragma once
#include <cmath>
#include <cstdint>

namespace fastconv {

enum EpilogueAct : int { kActNone = 0, kActRelu = 1, kActClamp = 2, kActSilu = 3 };

// The activation on one value, NaN propagating as torch.relu / torch.clamp / SiLU do (v < lo is
// false for NaN): the one scalar definition the epilogue pass, the tile copy out and the GEMM's
// partial tiles share (the register forms in the kernels order their max / min to match).
// Always inlined, so a per-ISA caller compiles it at its own ISA (common/isa_target.h).
template <typename T, int ACT>
inline __attribute__((always_inline)) T epilogue_activate(T v, T lo, T hi) {
  if constexpr (ACT == kActRelu) return v < T(0) ? T(0) : v;
  else if constexpr (ACT == kActClamp) return v < lo ? lo : (v > hi ? hi : v);
  else if constexpr (ACT == kActSilu) return v / (T(1) + std::exp(-v));
  else return v;
}

template <typename T>
struct OutputEpilogue {
  int act = kActNone;
  T lo = T(0), hi = T(0);         // kActClamp's bounds
  const T* residual = nullptr;    // the output's shape, or null
  bool residual_after_act = false;
  const T* y = nullptr;           // the output: residual[i] pairs with y[i]
};

// For each of `rows` runs of n values, run i at y + i * row_stride (channel i of a block of
// e.y): y[j] = epilogue(y[j] + bias[i]) (bias null: 0), the residual read at the same offset
// from e.residual as y from e.y. One call per output block: a call per row cost more than the
// pass at batch 8.
template <typename T>
void epilogue_in_place_rows(const OutputEpilogue<T>& e, T* y, int64_t row_stride, int64_t rows, const T* bias,
                            int64_t n);

// A conv tile's copy out with the epilogue in the same pass (epilogue_store.cpp, per ISA): the
// virtual pixels [v0, v1) of one output channel's tile row src (virtual pixel v = oh * Wv + ow at
// src[v - v0]; columns ow >= OW are padding and dropped) go to its plane dst as
// dst[oh * OW + ow] = epilogue(src + bias); e null: the bias alone; e's act not SiLU.
template <typename T>
void epilogue_store_rows(const OutputEpilogue<T>* e, const T* src, T bias, T* dst, int64_t v0, int64_t v1, int64_t Wv,
                         int64_t OW);

// The whole output e.y (outer x channels x inner, NCHW), bias[c] first where bias is given.
template <typename T>
void epilogue_in_place(const OutputEpilogue<T>& e, const T* bias, int64_t outer, int64_t channels, int64_t inner);

}  // namespace fastconv
