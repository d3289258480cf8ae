// Small helpers shared by the augmentation kernels: float <-> storage conversion and a floor
// that does not call libm (baseline x86-64 has no SSE4.1 roundps, and a call would stop the
// loops from vectorising).
#pragma once
#include <cstdint>

#include "common/isa_target.h"

// Hot loops are compiled once per ISA inside each kernel file (common/isa_target.h) and chosen
// by use_isa(); everything they call is forced inline, so each ISA's copy is compiled whole.
#define FASTCONV_AUG_INLINE FASTCONV_ALWAYS_INLINE

namespace fastconv {
namespace augment {

template <typename T>
inline T store(float v) { return static_cast<T>(v); }
// uint8: saturate to [0, 255], round half up.
template <>
inline uint8_t store<uint8_t>(float v) {
  v = v < 0.f ? 0.f : (v > 255.f ? 255.f : v);
  return static_cast<uint8_t>(static_cast<int32_t>(v + 0.5f));
}

inline int32_t floor_i32(float v) {
  const int32_t i = static_cast<int32_t>(v);
  return i - (v < static_cast<float>(i) ? 1 : 0);
}
inline int64_t floor_i64(double v) {
  const int64_t i = static_cast<int64_t>(v);
  return i - (v < static_cast<double>(i) ? 1 : 0);
}

inline float clampf(float v, float lo, float hi) { return v < lo ? lo : (v > hi ? hi : v); }

// Any integer index mapped into [0, n) by the border mode (0 constant, 1 reflect, 2
// replicate); -1 for a constant-border tap.
inline int64_t border_index(int64_t i, int64_t n, int border) {
  if (i >= 0 && i < n) return i;
  if (border == 0) return -1;
  if (border == 2) return i < 0 ? 0 : n - 1;
  if (n == 1) return 0;
  const int64_t period = 2 * (n - 1);
  const int64_t m = (i < 0 ? -i : i) % period;  // reflection is symmetric about 0
  return m < n ? m : period - m;
}

}  // namespace augment
}  // namespace fastconv
