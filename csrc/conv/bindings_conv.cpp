// Python bindings of the direct convolution kernels. Python validates arguments and
// allocates outputs; here we re-check shapes/dtypes, release the GIL and run.
#include "common/binding_util.h"
#include "conv/direct/direct.h"

namespace fastconv {
namespace {

ConvParams conv_params(const py::array& x, const py::array& w, std::pair<int64_t, int64_t> stride,
                       std::pair<int64_t, int64_t> pad, std::pair<int64_t, int64_t> dil,
                       int64_t groups, int64_t OH, int64_t OW) {
  if (x.ndim() != 4 || w.ndim() != 4) throw py::value_error("input and weight must be 4-D");
  ConvParams p{x.shape(0), x.shape(1), x.shape(2), x.shape(3), w.shape(0), w.shape(2), w.shape(3),
               OH, OW, stride.first, stride.second, pad.first, pad.second, dil.first, dil.second,
               groups};
  if (groups < 1 || p.C % groups || p.K % groups || w.shape(1) != p.C / groups)
    throw py::value_error("groups does not divide the channels of input and weight");
  if (p.stride_h < 1 || p.stride_w < 1 || p.dil_h < 1 || p.dil_w < 1 || p.pad_h < 0 || p.pad_w < 0)
    throw py::value_error("stride/dilation must be >= 1 and padding >= 0");
  const int64_t eh = (p.H + 2 * p.pad_h - p.dil_h * (p.R - 1) - 1), ew = (p.W + 2 * p.pad_w - p.dil_w * (p.S - 1) - 1);
  if (eh < 0 || ew < 0 || OH != eh / p.stride_h + 1 || OW != ew / p.stride_w + 1)
    throw py::value_error("output size does not match the convolution parameters");
  return p;
}

template <typename T>
void forward(const py::array& x, const py::array& w, const py::object& bias, py::array& y, const ConvParams& p) {
  check_array<T>(x, "input", {p.N, p.C, p.H, p.W});
  check_array<T>(w, "weight", {p.K, p.Cg(), p.R, p.S});
  check_array<T>(y, "out", {p.N, p.K, p.OH, p.OW}, true);
  const T* b = nullptr;
  if (!bias.is_none()) {
    py::array ba = bias.cast<py::array>();
    check_array<T>(ba, "bias", {p.K});
    b = cptr<T>(ba);
  }
  py::gil_scoped_release release;
  conv2d_direct_forward<T>(cptr<T>(x), cptr<T>(w), b, mptr<T>(y), p);
}

void bind(py::module_& m) {
  using P2 = std::pair<int64_t, int64_t>;
  m.def(
      "conv2d_direct", [](py::array x, py::array w, py::object bias, py::array y, P2 stride, P2 pad, P2 dil, int64_t groups) {
        const ConvParams p = conv_params(x, w, stride, pad, dil, groups, y.shape(2), y.shape(3));
        by_dtype<float, double>(x, "input", [&](auto tag) { forward<decltype(tag)>(x, w, bias, y, p); });
      },
      "Direct conv2d into y (N,K,OH,OW).");
  m.def(
      "conv2d_direct_input_grad", [](py::array dy, py::array w, py::array dx, P2 stride, P2 pad, P2 dil, int64_t groups) {
        const ConvParams p = conv_params(dx, w, stride, pad, dil, groups, dy.shape(2), dy.shape(3));
        auto run = [&](auto tag) {
          using T = decltype(tag);
          check_array<T>(dy, "grad_output", {p.N, p.K, p.OH, p.OW});
          check_array<T>(w, "weight", {p.K, p.Cg(), p.R, p.S});
          check_array<T>(dx, "out", {p.N, p.C, p.H, p.W}, true);
          py::gil_scoped_release release;
          conv2d_direct_input_grad<T>(cptr<T>(dy), cptr<T>(w), mptr<T>(dx), p);
        };
        by_dtype<float, double>(dy, "grad_output", run);
      },
      "Gradient of conv2d with respect to its input, into dx (N,C,H,W).");
  m.def(
      "conv2d_direct_weight_grad", [](py::array x, py::array dy, py::array dw, P2 stride, P2 pad, P2 dil, int64_t groups) {
        const ConvParams p = conv_params(x, dw, stride, pad, dil, groups, dy.shape(2), dy.shape(3));
        auto run = [&](auto tag) {
          using T = decltype(tag);
          check_array<T>(x, "input", {p.N, p.C, p.H, p.W});
          check_array<T>(dy, "grad_output", {p.N, p.K, p.OH, p.OW});
          check_array<T>(dw, "out", {p.K, p.Cg(), p.R, p.S}, true);
          py::gil_scoped_release release;
          conv2d_direct_weight_grad<T>(cptr<T>(x), cptr<T>(dy), mptr<T>(dw), p);
        };
        by_dtype<float, double>(x, "input", run);
      },
      "Gradient of conv2d with respect to its weight, into dw (K,C/g,R,S).");
  m.def(
      "conv2d_direct_path", [](py::array x, py::array w, py::array y, P2 stride, P2 pad, P2 dil, int64_t groups,
                               const std::string& pass) {
        const ConvParams p = conv_params(x, w, stride, pad, dil, groups, y.shape(2), y.shape(3));
        DirectPass dp;
        if (pass == "forward") dp = DirectPass::forward;
        else if (pass == "input_grad") dp = DirectPass::input_grad;
        else if (pass == "weight_grad") dp = DirectPass::weight_grad;
        else throw py::value_error("pass must be 'forward', 'input_grad' or 'weight_grad', got '" + pass + "'");
        const DirectPath path = by_dtype<float, double>(x, "input", [&](auto tag) { return direct_path<decltype(tag)>(p, dp); });
        return std::string(direct_path_name(path));
      },
      "The implementation conv2d_direct* runs for these arrays (x, w, y as for the forward): "
      "'depthwise', 'im2col', 'shifted' or 'batched'. For tests of dispatch.");
}

}  // namespace
FASTCONV_REGISTER_BINDINGS(bind);
}  // namespace fastconv
