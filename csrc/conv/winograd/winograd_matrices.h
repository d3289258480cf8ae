// Winograd minimal-filtering matrices F(m x m, 3 x 3) for m = 2, 4, 6, built in float64 from
// the interpolation points by the Toom-Cook construction (winograd_matrices.cpp):
//   y = A^T [ (G g G^T) (.) (B^T d B) ] A      d: alpha x alpha input tile, alpha = m + 2
// 1-D:  y = A^T [ (G g) (.) (B^T d) ]  equals  y_i = sum_k d_{i+k} g_k  (correlation).
#pragma once
#include <vector>

namespace fastconv {

struct WinoMatrices {
  int m = 0, alpha = 0;
  std::vector<double> AT;  // m x alpha, row-major
  std::vector<double> G;   // alpha x 3
  std::vector<double> BT;  // alpha x alpha
  std::vector<double> points;  // the alpha - 1 finite points (the last point is infinity)
};

// m in {2, 4, 6}; throws std::invalid_argument otherwise. Computed once, then cached.
const WinoMatrices& winograd_matrices(int m);

}  // namespace fastconv
