// Python bindings of the pooling kernels.
#include "common/binding_util.h"
#include "pool/pool.h"

namespace fastconv {
namespace {

using P2 = std::pair<int64_t, int64_t>;

PoolParams pool_params(const py::array& x, int64_t OH, int64_t OW, P2 k, P2 s, P2 pad, P2 dil) {
  if (x.ndim() != 4) throw py::value_error("input must be 4-D (N, C, H, W)");
  PoolParams p{x.shape(0), x.shape(1), x.shape(2), x.shape(3), OH, OW, k.first, k.second,
               s.first, s.second, pad.first, pad.second, dil.first, dil.second};
  if (p.kh < 1 || p.kw < 1 || p.stride_h < 1 || p.stride_w < 1 || p.dil_h < 1 || p.dil_w < 1 ||
      p.pad_h < 0 || p.pad_w < 0 || 2 * p.pad_h > p.kh || 2 * p.pad_w > p.kw)
    throw py::value_error("invalid pooling parameters");
  return p;
}

void bind(py::module_& m) {
  // idx None: the values only (a kernel without the index selects, for inference).
  m.def("max_pool2d", [](py::array x, py::array y, py::object idx, P2 k, P2 s, P2 pad, P2 dil) {
    const PoolParams p = pool_params(x, y.shape(2), y.shape(3), k, s, pad, dil);
    auto run = [&](auto tag) {
      using T = decltype(tag);
      check_array<T>(x, "input", {p.N, p.C, p.H, p.W});
      check_array<T>(y, "out", {p.N, p.C, p.OH, p.OW}, true);
      py::array ia;
      int64_t* ip = nullptr;
      if (!idx.is_none()) {
        ia = idx.cast<py::array>();
        check_array<int64_t>(ia, "indices", {p.N, p.C, p.OH, p.OW}, true);
        ip = mptr<int64_t>(ia);
      }
      py::gil_scoped_release release;
      max_pool2d_forward<T>(cptr<T>(x), mptr<T>(y), ip, p);
    };
    by_dtype<float, double>(x, "input", run);
  });
  m.def("max_pool2d_backward", [](py::array dy, py::array idx, py::array dx) {
    if (dx.ndim() != 4 || dy.ndim() != 4) throw py::value_error("grad_output and input must be 4-D");
    const PoolParams p{dx.shape(0), dx.shape(1), dx.shape(2), dx.shape(3), dy.shape(2), dy.shape(3), 1, 1, 1, 1, 0, 0, 1, 1};
    auto run = [&](auto tag) {
      using T = decltype(tag);
      check_array<T>(dy, "grad_output", {p.N, p.C, p.OH, p.OW});
      check_array<int64_t>(idx, "indices", {p.N, p.C, p.OH, p.OW});
      check_array<T>(dx, "out", {p.N, p.C, p.H, p.W}, true);
      bool ok;
      {
        py::gil_scoped_release release;
        ok = max_pool2d_backward<T>(cptr<T>(dy), cptr<int64_t>(idx), mptr<T>(dx), p);
      }
      if (!ok)
        throw py::value_error("indices must lie in [0, H*W) = [0, " + std::to_string(p.H * p.W) + ")");
    };
    by_dtype<float, double>(dy, "grad_output", run);
  });
  m.def("avg_pool2d", [](py::array x, py::array y, P2 k, P2 s, P2 pad, bool count_include_pad, int64_t divisor) {
    const PoolParams p = pool_params(x, y.shape(2), y.shape(3), k, s, pad, {1, 1});
    auto run = [&](auto tag) {
      using T = decltype(tag);
      check_array<T>(x, "input", {p.N, p.C, p.H, p.W});
      check_array<T>(y, "out", {p.N, p.C, p.OH, p.OW}, true);
      py::gil_scoped_release release;
      avg_pool2d_forward<T>(cptr<T>(x), mptr<T>(y), p, {count_include_pad, divisor});
    };
    by_dtype<float, double>(x, "input", run);
  });
  m.def("avg_pool2d_backward", [](py::array dy, py::array dx, P2 k, P2 s, P2 pad, bool count_include_pad, int64_t divisor) {
    const PoolParams p = pool_params(dx, dy.shape(2), dy.shape(3), k, s, pad, {1, 1});
    auto run = [&](auto tag) {
      using T = decltype(tag);
      check_array<T>(dy, "grad_output", {p.N, p.C, p.OH, p.OW});
      check_array<T>(dx, "out", {p.N, p.C, p.H, p.W}, true);
      py::gil_scoped_release release;
      avg_pool2d_backward<T>(cptr<T>(dy), mptr<T>(dx), p, {count_include_pad, divisor});
    };
    by_dtype<float, double>(dy, "grad_output", run);
  });
}

}  // namespace
FASTCONV_REGISTER_BINDINGS(bind);
}  // namespace fastconv
