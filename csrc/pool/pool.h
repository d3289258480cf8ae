// Max and average pooling, forward and backward, NCHW contiguous, PyTorch semantics.
#pragma once
#include <cstdint>

#include "common/params.h"

namespace fastconv {

// y[N,C,OH,OW], idx[N,C,OH,OW] (flat h*W+w within each plane; first maximum wins; NaN wins).
// idx null: the values only (inference), the same y.
template <typename T>
void max_pool2d_forward(const T* x, T* y, int64_t* idx, const PoolParams& p);

// dx[N,C,H,W] = scatter-add of dy by idx. Returns false (writing nothing out of bounds) if an
// index lies outside [0, H*W).
template <typename T>
bool max_pool2d_backward(const T* dy, const int64_t* idx, T* dx, const PoolParams& p);

struct AvgPoolOptions {
  bool count_include_pad;
  int64_t divisor_override;  // 0 = none
};

template <typename T>
void avg_pool2d_forward(const T* x, T* y, const PoolParams& p, AvgPoolOptions o);

template <typename T>
void avg_pool2d_backward(const T* dy, T* dx, const PoolParams& p, AvgPoolOptions o);

}  // namespace fastconv
