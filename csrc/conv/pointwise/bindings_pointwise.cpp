// fastconv._C.pointwise_variant / set_pointwise_variant: which GEMM the 1x1 path runs for a shape, and a
// switch that forces one (tests of dispatch and of each GEMM on every shape).
#include "common/binding_util.h"
#include "conv/pointwise/pointwise.h"

namespace fastconv {
namespace {

void bind(py::module_& m) {
  m.def(
      "pointwise_variant",
      [](py::sequence xs, py::sequence ws, std::pair<int64_t, int64_t> stride, int64_t groups, const std::string& pass,
         const std::string& dtype, bool bias) {
        if (py::len(xs) != 4 || py::len(ws) != 4) throw py::value_error("input and weight shapes must be 4-D");
        int64_t x_shape[4], w_shape[4];
        for (int i = 0; i < 4; ++i) x_shape[i] = xs[i].cast<int64_t>(), w_shape[i] = ws[i].cast<int64_t>();
        if (groups < 1 || stride.first < 1 || stride.second < 1 || x_shape[1] % groups || w_shape[0] % groups)
          throw py::value_error("bad groups or stride");
        const int64_t OH = (x_shape[2] - 1) / stride.first + 1, OW = (x_shape[3] - 1) / stride.second + 1;
        const ConvParams p{x_shape[0], x_shape[1], x_shape[2], x_shape[3], w_shape[0], w_shape[2], w_shape[3],
                           OH, OW, stride.first, stride.second, 0, 0, 1, 1, groups};
        if (!pointwise_applies(p)) throw py::value_error("not a 1x1 convolution");
        PointwisePass pp;
        if (pass == "forward") pp = PointwisePass::forward;
        else if (pass == "input_grad") pp = PointwisePass::input_grad;
        else if (pass == "weight_grad") pp = PointwisePass::weight_grad;
        else throw py::value_error("pass must be 'forward', 'input_grad' or 'weight_grad', got '" + pass + "'");
        if (dtype != "float32" && dtype != "float64") throw py::value_error("dtype must be 'float32' or 'float64'");
        return std::string(pointwise_variant(p, pp, dtype == "float32", bias));
      },
      py::arg("x_shape"), py::arg("w_shape"), py::arg("stride"), py::arg("groups"), py::arg("pass"),
      py::arg("dtype") = "float32", py::arg("bias") = true,
      "The GEMM the 1x1 (unpadded) path runs under the active ISA: 'small_maps' (channels in the vector "
      "lanes, pixels broadcast) or 'gemm' (the shared micro-kernels); bias: whether the forward has one. "
      "For tests of dispatch.");
  m.def(
      "set_pointwise_variant", [](const std::string& variant) {
        try {
          set_pointwise_variant(variant.c_str());
        } catch (const std::invalid_argument& e) {
          throw py::value_error(e.what());
        }
      },
      py::arg("variant"),
      "For tests: 'small_maps' or 'gemm' makes every float32 forward and input gradient of the 1x1 path "
      "take that GEMM whatever the shape (and pointwise_variant report it); 'auto' restores the cost rule.");
}

}  // namespace
FASTCONV_REGISTER_BINDINGS(bind);
}  // namespace fastconv
