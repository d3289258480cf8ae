// Python bindings of the direct convolution kernels. Python validates arguments and
// allocates outputs; here we re-check shapes/dtypes, release the GIL and run.
#include <cstdlib>
#include <string>

#include "common/binding_util.h"
#include "conv/direct/direct.h"
#include "conv/strided/polyphase.h"
#include "elementwise/epilogue_args.h"

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

// Checks the forward's arrays, then runs run(x, w, bias or null, y, epilogue or null) without
// the GIL.
template <typename Run>
void forward(const py::array& x, const py::array& w, const py::object& bias, py::array& y, const ConvParams& p,
             const EpilogueSpec& spec, Run&& run) {
  auto go = [&](auto tag) {
    using T = decltype(tag);
    check_array<T>(x, "input", {p.N, p.C, p.H, p.W});
    check_array<T>(w, "weight", {p.K, p.Cg(), p.R, p.S});
    check_array<T>(y, "out", {p.N, p.K, p.OH, p.OW}, true);
    const T* b = nullptr;
    py::array ba, keep;
    if (!bias.is_none()) {
      ba = bias.cast<py::array>();
      check_array<T>(ba, "bias", {p.K});
      b = cptr<T>(ba);
    }
    OutputEpilogue<T> e;
    const OutputEpilogue<T>* ep = output_epilogue<T>(spec, y, {p.N, p.K, p.OH, p.OW}, e, keep);
    py::gil_scoped_release release;
    run(cptr<T>(x), cptr<T>(w), b, mptr<T>(y), ep);
  };
  by_dtype<float, double>(x, "input", go);
}

// Checks an input gradient's arrays, then runs run(dy, w, dx) without the GIL.
template <typename Run>
void input_grad(const py::array& dy, const py::array& w, py::array& dx, const ConvParams& p, Run&& run) {
  auto go = [&](auto tag) {
    using T = decltype(tag);
    check_array<T>(dy, "grad_output", {p.N, p.K, p.OH, p.OW});
    check_array<T>(w, "weight", {p.K, p.Cg(), p.R, p.S});
    check_array<T>(dx, "out", {p.N, p.C, p.H, p.W}, true);
    py::gil_scoped_release release;
    run(cptr<T>(dy), cptr<T>(w), mptr<T>(dx));
  };
  by_dtype<float, double>(dy, "grad_output", go);
}

// Checks a weight gradient's arrays, then runs run(x, dy, dw) without the GIL.
template <typename Run>
void weight_grad(const py::array& x, const py::array& dy, py::array& dw, const ConvParams& p, Run&& run) {
  auto go = [&](auto tag) {
    using T = decltype(tag);
    check_array<T>(x, "input", {p.N, p.C, p.H, p.W});
    check_array<T>(dy, "grad_output", {p.N, p.K, p.OH, p.OW});
    check_array<T>(dw, "out", {p.K, p.Cg(), p.R, p.S}, true);
    py::gil_scoped_release release;
    run(cptr<T>(x), cptr<T>(dy), mptr<T>(dw));
  };
  by_dtype<float, double>(x, "input", go);
}

// The forward's prepacked weights (forward_weight_layout), checked: the packed array's dtype,
// size and alignment must fit (a ValueError / TypeError otherwise), and null where its layout is
// not the one this call packs now (an ISA switched, a bias added since it was made), which then
// packs the weights itself.
template <typename T>
const T* prepacked_weights(const py::object& packed, const std::string& layout, const ConvParams& p, bool bias) {
  if (packed.is_none()) return nullptr;
  const py::array a = packed.cast<py::array>();
  const ForwardWeightLayout now = forward_weight_layout<T>(p, bias);
  check_array<T>(a, "packed", {now.size});
  if (reinterpret_cast<uintptr_t>(a.data()) % 64) throw py::value_error("packed must be 64-byte aligned");
  return layout == now.name ? cptr<T>(a) : nullptr;
}

void bind(py::module_& m) {
  using P2 = std::pair<int64_t, int64_t>;
  m.def(
      "conv2d_pack_forward_weights",
      [](py::array x, py::array w, py::array y, P2 stride, P2 pad, P2 dil, int64_t groups, bool bias) -> py::object {
        const ConvParams p = conv_params(x, w, stride, pad, dil, groups, y.shape(2), y.shape(3));
        auto go = [&](auto tag) -> py::object {
          using T = decltype(tag);
          check_array<T>(w, "weight", {p.K, p.Cg(), p.R, p.S});
          const ForwardWeightLayout layout = forward_weight_layout<T>(p, bias);
          if (layout.kind == ForwardPacking::none) return py::none();
          const int64_t n = layout.size;
          // 64-byte aligned storage the array owns (numpy's own allocations are 16-byte aligned)
          void* data = std::aligned_alloc(64, round_up(std::max<int64_t>(n, 1) * sizeof(T), 64));
          if (!data) throw std::bad_alloc();
          py::capsule owner(data, [](void* d) { std::free(d); });
          py::array_t<T> packed({n}, {static_cast<py::ssize_t>(sizeof(T))}, static_cast<T*>(data), owner);
          {
            py::gil_scoped_release release;
            pack_conv_forward_weights(cptr<T>(w), p, layout, static_cast<T*>(data));
          }
          return py::make_tuple(packed, layout.name);
        };
        return by_dtype<float, double>(w, "weight", go);
      },
      py::arg("input"), py::arg("weight"), py::arg("out"), py::arg("stride"), py::arg("padding"), py::arg("dilation"),
      py::arg("groups"), py::arg("bias"),
      "(packed, layout): the forward's weights packed once for conv2d_direct(packed=, packed_layout=) with these "
      "shapes (bias: whether the calls add one), or None where that path packs nothing.");
  m.def(
      "conv2d_direct",
      [](py::array x, py::array w, py::object bias, py::array y, P2 stride, P2 pad, P2 dil, int64_t groups, int act,
         double lo, double hi, py::object residual, bool residual_after_act, py::object packed,
         const std::string& packed_layout) {
        const ConvParams p = conv_params(x, w, stride, pad, dil, groups, y.shape(2), y.shape(3));
        const void* pre = nullptr;
        if (!packed.is_none())
          pre = w.dtype().is(py::dtype::of<float>())
                    ? static_cast<const void*>(prepacked_weights<float>(packed, packed_layout, p, !bias.is_none()))
                    : static_cast<const void*>(prepacked_weights<double>(packed, packed_layout, p, !bias.is_none()));
        forward(x, w, bias, y, p, {act, lo, hi, residual, residual_after_act},
                [&](auto* x_, auto* w_, auto* b_, auto* y_, auto* ep) {
                  conv2d_direct_forward(x_, w_, b_, y_, p, ep, static_cast<decltype(w_)>(pre));
                });
      },
      py::arg("input"), py::arg("weight"), py::arg("bias"), py::arg("out"), py::arg("stride"), py::arg("padding"),
      py::arg("dilation"), py::arg("groups"), FASTCONV_EPILOGUE_PY_ARGS, py::arg("packed") = py::none(),
      py::arg("packed_layout") = "",
      "Direct conv2d into out (N,K,OH,OW), then the output epilogue (act, residual) where given; with packed and "
      "packed_layout from conv2d_pack_forward_weights, reading the prepacked weights (weight must be what they "
      "were packed from).");
  // Strided convs (dilation 1) whose phase kernels are 3x3 (conv/strided/polyphase.h), with
  // Winograd F(tile, 3) on the phase images: forward, input gradient, weight gradient.
  auto polyphase_winograd = [](const py::array& x, const py::array& w, const py::array& y, P2 stride, P2 pad,
                               int64_t groups, int tile) {
    const ConvParams p = conv_params(x, w, stride, pad, {1, 1}, groups, y.shape(2), y.shape(3));
    const ConvParams q = polyphase_params(p);
    if (!polyphase_pays(p) || q.R != 3 || q.S != 3)
      throw py::value_error("weight and stride must split into 3x3 phase kernels (e.g. 11x11 stride 4)");
    if (tile != 2 && tile != 4 && tile != 6) throw py::value_error("tile must be 2, 4 or 6");
    return p;
  };
  m.def(
      "conv2d_polyphase_winograd",
      [=](py::array x, py::array w, py::object bias, py::array y, P2 stride, P2 pad, int64_t groups, int tile,
          int act, double lo, double hi, py::object residual, bool residual_after_act) {
        const ConvParams p = polyphase_winograd(x, w, y, stride, pad, groups, tile);
        forward(x, w, bias, y, p, {act, lo, hi, residual, residual_after_act},
                [&](auto* x_, auto* w_, auto* b_, auto* y_, auto* ep) {
                  conv2d_polyphase_forward(x_, w_, b_, y_, p, tile);
                  if (ep) epilogue_in_place(*ep, decltype(b_)(nullptr), p.N, p.K, p.out_pixels());
                });
      },
      py::arg("input"), py::arg("weight"), py::arg("bias"), py::arg("out"), py::arg("stride"), py::arg("padding"),
      py::arg("groups"), py::arg("tile"), FASTCONV_EPILOGUE_PY_ARGS,
      "Strided conv2d whose phase kernels are 3x3, as Winograd F(tile, 3) on its phase images, into out; then "
      "the output epilogue where given.");
  m.def(
      "conv2d_polyphase_winograd_input_grad",
      [=](py::array dy, py::array w, py::array dx, P2 stride, P2 pad, int64_t groups, int tile) {
        const ConvParams p = polyphase_winograd(dx, w, dy, stride, pad, groups, tile);
        input_grad(dy, w, dx, p, [&](auto* dy_, auto* w_, auto* dx_) { conv2d_polyphase_input_grad(dy_, w_, dx_, p, tile); });
      },
      "Input gradient of conv2d_polyphase_winograd, into dx (N,C,H,W).");
  m.def(
      "conv2d_polyphase_winograd_weight_grad",
      [=](py::array x, py::array dy, py::array dw, P2 stride, P2 pad, int64_t groups, int tile) {
        const ConvParams p = polyphase_winograd(x, dw, dy, stride, pad, groups, tile);
        weight_grad(x, dy, dw, p, [&](auto* x_, auto* dy_, auto* dw_) { conv2d_polyphase_weight_grad(x_, dy_, dw_, p, tile); });
      },
      "Weight gradient of conv2d_polyphase_winograd, into dw (K,C/g,R,S).");
  m.def(
      "conv2d_direct_input_grad", [](py::array dy, py::array w, py::array dx, P2 stride, P2 pad, P2 dil, int64_t groups) {
        const ConvParams p = conv_params(dx, w, stride, pad, dil, groups, dy.shape(2), dy.shape(3));
        input_grad(dy, w, dx, p, [&](auto* dy_, auto* w_, auto* dx_) { conv2d_direct_input_grad(dy_, w_, dx_, p); });
      },
      "Gradient of conv2d with respect to its input, into dx (N,C,H,W).");
  m.def(
      "conv2d_direct_weight_grad", [](py::array x, py::array dy, py::array dw, P2 stride, P2 pad, P2 dil, int64_t groups) {
        const ConvParams p = conv_params(x, dw, stride, pad, dil, groups, dy.shape(2), dy.shape(3));
        weight_grad(x, dy, dw, p, [&](auto* x_, auto* dy_, auto* dw_) { conv2d_direct_weight_grad(x_, dy_, dw_, p); });
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
      "'depthwise', 'im2col', 'shifted', 'batched', 'batched_pixel_rows', 'pointwise', 'polyphase' or 'phase_shifted'. For tests of dispatch.");
}

}  // namespace
FASTCONV_REGISTER_BINDINGS(bind);
}  // namespace fastconv
