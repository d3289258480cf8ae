// Transposing pack: gathers up to `width` rows (each contiguous over t) into a panel laid out
// [t][width], the layout the GEMM micro-kernels read. Used where both GEMM operands are
// contiguous along the reduction (the weight gradient reduces over pixels).
//   dst[t * width + j] = rows[j] ? rows[j][t] : 0      for t < count, j < width
#pragma once
#include <cstdint>

#include "common/cpu.h"

namespace fastconv {

template <typename T>
using TransposePanelFn = void (*)(const T* const* rows, int width, int64_t count, T* dst);

TransposePanelFn<float> transpose_panel_f32(Isa isa);
TransposePanelFn<double> transpose_panel_f64(Isa isa);
template <typename T> TransposePanelFn<T> transpose_panel(Isa isa);
template <> inline TransposePanelFn<float> transpose_panel<float>(Isa isa) { return transpose_panel_f32(isa); }
template <> inline TransposePanelFn<double> transpose_panel<double>(Isa isa) { return transpose_panel_f64(isa); }

}  // namespace fastconv
