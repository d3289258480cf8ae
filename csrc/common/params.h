// Shapes and hyper-parameters of the operators, validated by the Python layer and checked
// again (cheaply) by the bindings before any kernel touches memory.
#pragma once
#include <cstdint>

namespace fastconv {

// a / b rounded up (a >= 0, b > 0): blocks that cover a range, output rows that need an input row.
inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

struct ConvParams {
  int64_t N, C, H, W;        // input  (N, C, H, W)
  int64_t K, R, S;           // weight (K, C/groups, R, S)
  int64_t OH, OW;            // output (N, K, OH, OW)
  int64_t stride_h, stride_w, pad_h, pad_w, dil_h, dil_w, groups;

  int64_t Cg() const { return C / groups; }
  int64_t Kg() const { return K / groups; }
  int64_t out_pixels() const { return OH * OW; }
  int64_t in_pixels() const { return H * W; }
  int64_t patch() const { return Cg() * R * S; }  // im2col rows per group
};

struct PoolParams {
  int64_t N, C, H, W, OH, OW;
  int64_t kh, kw, stride_h, stride_w, pad_h, pad_w, dil_h, dil_w;
};

}  // namespace fastconv
