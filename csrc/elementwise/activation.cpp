// ReLU forward and backward over contiguous arrays: the two element-wise ops a CNN runs on
// every activation. numpy needs a temporary and two passes for the backward (a mask, then
// a select); here each is one vectorised, threaded pass.
#include <algorithm>
#include <vector>

#include "common/binding_util.h"
#include "common/parallel.h"

namespace fastconv {
namespace {

constexpr int64_t kChunk = 1 << 16;

// y = max(x, 0), NaN propagating (x < 0 is false for NaN), as torch.relu.
template <typename T>
void relu_forward(const T* x, T* y, int64_t n) {
  parallel_for_chunks(n, kChunk, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) y[i] = x[i] < T(0) ? T(0) : x[i];
  });
}

// dx = dy where y > 0, else 0 (torch's threshold_backward at 0).
template <typename T>
void relu_backward(const T* dy, const T* y, T* dx, int64_t n) {
  parallel_for_chunks(n, kChunk, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) {
      const T g = dy[i];  // an unconditional load, so the select vectorises
      dx[i] = y[i] > T(0) ? g : T(0);
    }
  });
}

std::vector<int64_t> shape_of(const py::array& a) { return std::vector<int64_t>(a.shape(), a.shape() + a.ndim()); }

void bind(py::module_& m) {
  m.def("relu", [](py::array x, py::array y) {
    auto run = [&](auto tag) {
      using T = decltype(tag);
      check_array<T>(x, "input", shape_of(x));
      check_array<T>(y, "out", shape_of(x), true);
      py::gil_scoped_release release;
      relu_forward<T>(cptr<T>(x), mptr<T>(y), static_cast<int64_t>(x.size()));
    };
    by_dtype<float, double>(x, "input", run);
  });
  m.def("relu_backward", [](py::array dy, py::array y, py::array dx) {
    auto run = [&](auto tag) {
      using T = decltype(tag);
      check_array<T>(dy, "grad_output", shape_of(dy));
      check_array<T>(y, "output", shape_of(dy));
      check_array<T>(dx, "out", shape_of(dy), true);
      py::gil_scoped_release release;
      relu_backward<T>(cptr<T>(dy), cptr<T>(y), mptr<T>(dx), static_cast<int64_t>(dy.size()));
    };
    by_dtype<float, double>(dy, "grad_output", run);
  });
}

}  // namespace
FASTCONV_REGISTER_BINDINGS(bind);
}  // namespace fastconv
