// Winograd minimal-filtering matrices F(m x m, r x r) for r = 3 (m = 2, 4, 6) and r = 5
// (m = 2, 4), built in float64 from the interpolation points by the Toom-Cook construction
// (winograd_matrices.cpp):
//   y = A^T [ (G g G^T) (.) (B^T d B) ] A      d: alpha x alpha input tile, alpha = m + r - 1
// 1-D:  y = A^T [ (G g) (.) (B^T d) ]  equals  y_i = sum_k d_{i+k} g_k  (correlation).
#pragma once
#include <vector>

namespace fastconv {

struct WinoMatrices {
  int m = 0, r = 0, alpha = 0;
  std::vector<double> AT;  // m x alpha, row-major
  std::vector<double> G;   // alpha x r
  std::vector<double> BT;  // alpha x alpha
  std::vector<double> points;  // the alpha - 1 finite points (the last point is infinity)
};

// Whether F(m, r) is built: r = 3 with m in {2, 4, 6}, r = 5 with m in {2, 4} (F(6,5) would need
// alpha 10 and points of magnitude 3 or 1/3, past any useful fp32 accuracy).
bool winograd_tile_supported(int m, int r);
// Throws std::invalid_argument for an unsupported (m, r). Computed once, then cached.
const WinoMatrices& winograd_matrices(int m, int r = 3);

}  // namespace fastconv
