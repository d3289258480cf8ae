// The GEMM tiles' output epilogue (gemm.h's TileEpilogue) on a tile's accumulators, written once
// over an ISA's lane operations: Ops supplies T, V, kLanes, set1, load, add, max and min. Included
// by gemm__avx2.cpp and gemm__avx512.cpp, each compiling it for its own ISA; the anonymous
// namespace keeps every copy internal to its file, as those files' rules require (no inline
// function compiled for one ISA may be picked by the linker for another file).
#pragma once
#include <cstdint>

#include "common/gemm.h"

namespace fastconv {
namespace {

// One straight-line body per activation and residual order (RES: 0 none, 1 before the
// activation, 2 after), chosen once per tile by tile_epilogue_on.
template <typename Ops, int ACT, int RES, int MR, int NV>
inline void tile_epilogue_body(const TileEpilogue<typename Ops::T>& e, typename Ops::V (&acc)[MR][NV], int64_t ldc) {
  using V = typename Ops::V;
  using T = typename Ops::T;
  const V lo = Ops::set1(ACT == kActRelu ? T(0) : e.lo), hi = Ops::set1(e.hi);
#pragma GCC unroll 16
  for (int i = 0; i < MR; ++i) {
    const V bias = Ops::set1(e.bias ? e.bias[i] : T(0));
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) {
      V x = Ops::add(acc[i][v], bias);
      if constexpr (RES == 1) x = Ops::add(x, Ops::load(e.residual + i * ldc + Ops::kLanes * v));
      // max / min return their second operand where either is NaN: x second, so NaN propagates
      // (as torch.relu and torch.clamp).
      if constexpr (ACT == kActRelu) x = Ops::max(lo, x);
      if constexpr (ACT == kActClamp) x = Ops::min(hi, Ops::max(lo, x));
      if constexpr (RES == 2) x = Ops::add(x, Ops::load(e.residual + i * ldc + Ops::kLanes * v));
      acc[i][v] = x;
    }
  }
}

template <typename Ops, int ACT, int MR, int NV>
inline void tile_epilogue_act(const TileEpilogue<typename Ops::T>& e, typename Ops::V (&acc)[MR][NV], int64_t ldc) {
  if (!e.residual) tile_epilogue_body<Ops, ACT, 0>(e, acc, ldc);
  else if (e.residual_after_act) tile_epilogue_body<Ops, ACT, 2>(e, acc, ldc);
  else tile_epilogue_body<Ops, ACT, 1>(e, acc, ldc);
}

// acc[i][v] = the epilogue of row i's vector v, before the tile stores it (c's row stride ldc
// locates the residual).
template <typename Ops, int MR, int NV>
inline void tile_epilogue_on(const TileEpilogue<typename Ops::T>& e, typename Ops::V (&acc)[MR][NV], int64_t ldc) {
  if (e.act == kActRelu) tile_epilogue_act<Ops, kActRelu>(e, acc, ldc);
  else if (e.act == kActClamp) tile_epilogue_act<Ops, kActClamp>(e, acc, ldc);
  else tile_epilogue_act<Ops, kActNone>(e, acc, ldc);
}

}  // namespace
}  // namespace fastconv
