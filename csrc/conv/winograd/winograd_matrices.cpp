// Toom-Cook construction of the Winograd F(m, r) matrices in float64 (r = 3 or 5).
//
// Linear convolution s = h * x (h: r taps, x: m values, s: alpha = m + r - 1 values) is computed
// exactly by evaluating both polynomials at alpha points (alpha - 1 finite points a_j and
// infinity, where "evaluating" means taking the leading coefficient), multiplying, and
// interpolating:  s = C [ (E_3 h) (.) (E_m x) ],  E_n[j][k] = a_j^k (infinity row: [0..0 1]),
// C = V^-1 with V = E_alpha. Correlation is the transpose of that map:
//   y = E_m^T [ (E_r g) (.) (C^T d) ]   so   A^T = E_m^T,  G = E_r,  B^T = C^T.
// The points depend only on alpha, so B^T does too: F(2,5) has F(4,3)'s B^T and F(4,5) has
// F(6,3)'s (the input transform kernels serve both kernel sizes); A^T and G differ.
// Row j of G is divided by f_j = prod_{l != j} (a_j - a_l) and row j of B^T multiplied by it
// (the Lagrange denominators), which gives the familiar integer-ish B^T (and fractions in G).
//
// The matrices this produces (fastconv._C.winograd_matrices(m) returns them; the tests check
// them against an independent numpy construction and the correlation identity in float64):
//
// F(2,3), points 0, 1, -1, inf:
//   B^T = [ 1  0 -1  0 ]   G = [ 1    0    0   ]   A^T = [ 1  1  1  0 ]
//         [ 0  1  1  0 ]       [ 1/2  1/2  1/2 ]         [ 0  1 -1  1 ]
//         [ 0 -1  1  0 ]       [ 1/2 -1/2  1/2 ]
//         [ 0 -1  0  1 ]       [ 0    0    1   ]
//   (row 3 of B^T is Lavin's negated: the construction's sign; the products are identical.)
//
// F(4,3), points 0, 1, -1, 1/2, -1/2, inf:
//   B^T = [ 1/4  0    -5/4  0    1  0 ]   G = [ 4    0    0   ]   A^T = [ 1 1  1  1    1    0 ]
//         [ 0   -1/4  -1/4  1    1  0 ]       [ 2/3  2/3  2/3 ]         [ 0 1 -1  1/2 -1/2  0 ]
//         [ 0    1/4  -1/4 -1    1  0 ]       [ 2/3 -2/3  2/3 ]         [ 0 1  1  1/4  1/4  0 ]
//         [ 0    1/2   1   -1/2 -1  0 ]       [ 8/3  4/3  2/3 ]         [ 0 1 -1  1/8 -1/8  1 ]
//         [ 0   -1/2   1    1/2 -1  0 ]       [ 8/3 -4/3  2/3 ]
//         [ 0    1/4   0   -5/4  0  1 ]       [ 0    0    1   ]
//
// F(6,3), points 0, 1, -1, 2, -2, 1/2, -1/2, inf (the ncnn / NNPACK choice):
//   B^T = [ 1  0    -21/4  0     21/4  0    -1  0 ]   G = [ 1       0       0     ]
//         [ 0 -1    -1     17/4  17/4 -1    -1  0 ]       [ 2/9     2/9     2/9   ]
//         [ 0  1    -1    -17/4  17/4  1    -1  0 ]       [ 2/9    -2/9     2/9   ]
//         [ 0  1/2   1/4  -5/2  -5/4   2     1  0 ]       [ 1/90    1/45    2/45  ]
//         [ 0 -1/2   1/4   5/2  -5/4  -2     1  0 ]       [ 1/90   -1/45    2/45  ]
//         [ 0  2     4    -5/2  -5     1/2   1  0 ]       [ 32/45   16/45   8/45  ]
//         [ 0 -2     4     5/2  -5    -1/2   1  0 ]       [ 32/45  -16/45   8/45  ]
//         [ 0 -1     0     21/4  0    -21/4  0  1 ]       [ 0       0       1     ]
//   A^T = [ 1  1  1  1   1   1     1     0 ]
//         [ 0  1 -1  2  -2   1/2  -1/2   0 ]
//         [ 0  1  1  4   4   1/4   1/4   0 ]
//         [ 0  1 -1  8  -8   1/8  -1/8   0 ]
//         [ 0  1  1  16  16  1/16  1/16  0 ]
//         [ 0  1 -1  32 -32  1/32 -1/32  1 ]
//
// F(2,5), the points of F(4,3): B^T as F(4,3)'s,  A^T = [ 1 1  1  1    1    0 ]
//                                                         [ 0 1 -1  1/2 -1/2  1 ]
//   G rows: [4 0 0 0 0], (2/3)[1 1 1 1 1], (2/3)[1 -1 1 -1 1], (8/3)[1 1/2 1/4 1/8 1/16],
//           (8/3)[1 -1/2 1/4 -1/8 1/16], [0 0 0 0 1]
// F(4,5), the points of F(6,3): B^T as F(6,3)'s, A^T = F(6,3)'s first four rows with the last
//   column [0 0 0 1], G rows = F(6,3)'s scaled point powers continued to the 4th power.
#include "conv/winograd/winograd_matrices.h"

#include <cmath>
#include <mutex>
#include <stdexcept>

namespace fastconv {
namespace {

// Interpolation points per alpha. Alpha 6 (F(4,3), F(2,5)) uses 0, +-1, +-1/2 rather than the
// usual 0, +-1, +-2: the smaller magnitudes keep the transforms' dynamic range (and fp32 error)
// lower.
std::vector<double> points_for(int alpha) {
  if (alpha == 4) return {0.0, 1.0, -1.0};
  if (alpha == 6) return {0.0, 1.0, -1.0, 0.5, -0.5};
  return {0.0, 1.0, -1.0, 2.0, -2.0, 0.5, -0.5};  // alpha 8
}

// Inverse of an n x n matrix by Gauss-Jordan elimination with partial pivoting.
std::vector<double> invert(std::vector<double> a, int n) {
  std::vector<double> inv(n * n, 0.0);
  for (int i = 0; i < n; ++i) inv[i * n + i] = 1.0;
  for (int col = 0; col < n; ++col) {
    int piv = col;
    for (int r = col + 1; r < n; ++r)
      if (std::fabs(a[r * n + col]) > std::fabs(a[piv * n + col])) piv = r;
    if (a[piv * n + col] == 0.0) throw std::runtime_error("singular Vandermonde matrix");
    for (int k = 0; k < n; ++k) {
      std::swap(a[col * n + k], a[piv * n + k]);
      std::swap(inv[col * n + k], inv[piv * n + k]);
    }
    const double d = a[col * n + col];
    for (int k = 0; k < n; ++k) { a[col * n + k] /= d; inv[col * n + k] /= d; }
    for (int r = 0; r < n; ++r) {
      if (r == col) continue;
      const double f = a[r * n + col];
      if (f == 0.0) continue;
      for (int k = 0; k < n; ++k) { a[r * n + k] -= f * a[col * n + k]; inv[r * n + k] -= f * inv[col * n + k]; }
    }
  }
  return inv;
}

// E_n: alpha x n evaluation matrix (row j: a_j^k; last row: the coefficient of x^(n-1)).
std::vector<double> evaluation(const std::vector<double>& pts, int alpha, int n) {
  std::vector<double> e(alpha * n, 0.0);
  for (int j = 0; j < alpha - 1; ++j)
    for (int k = 0; k < n; ++k) e[j * n + k] = std::pow(pts[j], k);
  e[(alpha - 1) * n + (n - 1)] = 1.0;
  return e;
}

WinoMatrices build(int m, int r) {
  WinoMatrices w;
  w.m = m;
  w.r = r;
  w.alpha = m + r - 1;
  w.points = points_for(w.alpha);
  const int a = w.alpha;
  const std::vector<double> Em = evaluation(w.points, a, m), Er = evaluation(w.points, a, r);
  const std::vector<double> C = invert(evaluation(w.points, a, a), a);
  w.AT.assign(m * a, 0.0);
  for (int i = 0; i < m; ++i)
    for (int j = 0; j < a; ++j) w.AT[i * a + j] = Em[j * m + i];
  w.G = Er;
  w.BT.assign(a * a, 0.0);
  for (int i = 0; i < a; ++i)
    for (int j = 0; j < a; ++j) w.BT[i * a + j] = C[j * a + i];
  for (int j = 0; j < a - 1; ++j) {
    double f = 1.0;
    for (int l = 0; l < a - 1; ++l)
      if (l != j) f *= w.points[j] - w.points[l];
    f = std::fabs(f);
    for (int k = 0; k < r; ++k) w.G[j * r + k] /= f;
    for (int k = 0; k < a; ++k) w.BT[j * a + k] *= f;
  }
  // Exact zeros stay zero (the kernels skip them); clean round-off of the inversion.
  for (double& v : w.BT)
    if (std::fabs(v) < 1e-13) v = 0.0;
  return w;
}

}  // namespace

bool winograd_tile_supported(int m, int r) {
  return (r == 3 && (m == 2 || m == 4 || m == 6)) || (r == 5 && (m == 2 || m == 4));
}

const WinoMatrices& winograd_matrices(int m, int r) {
  static std::once_flag once[2][3];
  static WinoMatrices mats[2][3];
  if (!winograd_tile_supported(m, r))
    throw std::invalid_argument("winograd tile must be 2, 4 or 6 for a 3x3 kernel, 2 or 4 for 5x5");
  const int i = r / 2 - 1, j = m / 2 - 1;
  std::call_once(once[i][j], [&] { mats[i][j] = build(m, r); });
  return mats[i][j];
}

}  // namespace fastconv
