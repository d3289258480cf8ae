// Python bindings of the Winograd convolution (3x3 or 5x5, stride 1): forward with optional
// pre-transformed weights, input and weight gradients, weight transform, and the matrices for testing.
#include <pybind11/stl.h>

#include <string>

#include "common/binding_util.h"
#include "common/pack.h"
#include "conv/winograd/winograd.h"
#include "conv/winograd/winograd_input_grad.h"
#include "conv/winograd/winograd_matrices.h"
#include "conv/winograd/winograd_weight_grad.h"
#include "elementwise/epilogue_args.h"

namespace fastconv {
namespace {

using P2 = std::pair<int64_t, int64_t>;

// r: the kernel size (3 or 5); tile: the output tile m it supports (winograd_tile_supported).
int check_tile(int tile, int r = 3) {
  if (r != 3 && r != 5) throw py::value_error("kernel_size must be 3 or 5, got " + std::to_string(r));
  if (!winograd_tile_supported(tile, r))
    throw py::value_error("tile must be " + std::string(r == 3 ? "2, 4 or 6" : "2 or 4") + " for a " + std::to_string(r) +
                          "x" + std::to_string(r) + " kernel, got " + std::to_string(tile));
  return tile;
}

// Kernel size of an (K, Cg, r, r) weight, r = 3 or 5.
int kernel_size_of(const py::array& w, const char* name) {
  if (w.ndim() != 4 || w.shape(2) != w.shape(3) || (w.shape(2) != 3 && w.shape(2) != 5))
    throw py::value_error(std::string(name) + " must be (K, C/groups, 3, 3) or (K, C/groups, 5, 5)");
  return int(w.shape(2));
}

// (N, C, H, W) x (K, Cg, r, r), stride 1, dilation 1 -> ConvParams, checked.
ConvParams wino_params(const std::vector<int64_t>& xs, int64_t K, int64_t Cg, int r, P2 pad, int64_t groups,
                       int64_t OH, int64_t OW) {
  ConvParams p{xs[0], xs[1], xs[2], xs[3], K, r, r, OH, OW, 1, 1, pad.first, pad.second, 1, 1, groups};
  if (groups < 1 || p.C % groups || p.K % groups || Cg != p.C / groups)
    throw py::value_error("groups does not divide the channels of input and weight");
  if (p.pad_h < 0 || p.pad_w < 0) throw py::value_error("padding must be >= 0");
  if (OH != p.H + 2 * p.pad_h - (r - 1) || OW != p.W + 2 * p.pad_w - (r - 1) || OH < 1 || OW < 1)
    throw py::value_error("output size does not match a " + std::to_string(r) + "x" + std::to_string(r) +
                          " stride-1 convolution");
  return p;
}

std::vector<int64_t> shape_of(const py::array& a) {
  std::vector<int64_t> s;
  for (py::ssize_t i = 0; i < a.ndim(); ++i) s.push_back(a.shape(i));
  return s;
}

py::array_t<double> to_numpy(const std::vector<double>& v, int rows, int cols) {
  py::array_t<double> out({rows, cols});
  std::copy(v.begin(), v.end(), out.mutable_data());
  return out;
}

void bind(py::module_& m) {
  m.def(
      "winograd_matrices", [](int tile, int kernel_size) {
        const WinoMatrices& w = winograd_matrices(check_tile(tile, kernel_size), kernel_size);
        return py::make_tuple(to_numpy(w.AT, w.m, w.alpha), to_numpy(w.G, w.alpha, w.r),
                              to_numpy(w.BT, w.alpha, w.alpha), py::cast(w.points));
      },
      py::arg("tile"), py::arg("kernel_size") = 3,
      "(AT, G, BT, points) of F(tile x tile, kernel_size x kernel_size), float64 (for testing).");
  m.def("winograd_by_element", &winograd_by_element, py::arg("cg"), py::arg("kg"), py::arg("tiles"),
        py::arg("weights_cached"),
        "Whether the Winograd forward of one group with cg -> kg channels over `tiles` tiles runs "
        "element-major (winograd.h); for tests.");
  m.def(
      "winograd_pack_info", [](py::dtype dt) {
        const WinoPackInfo i = dt.is(py::dtype::of<float>()) ? winograd_pack_info<float>() : winograd_pack_info<double>();
        return py::make_tuple(i.mr, i.kc);
      },
      "(mr, kc) of the packed transformed-weight layout for the active ISA.");
  m.def(
      "packed_a_offsets", [](int64_t rows, int64_t cols, int mr, int64_t kc) {
        if (rows < 1 || cols < 1 || mr < 1 || kc < 1) throw py::value_error("rows, cols, mr and kc must be >= 1");
        py::array_t<int64_t> out({rows, cols});
        int64_t* o = out.mutable_data();
        for (int64_t r = 0; r < rows; ++r)
          for (int64_t c = 0; c < cols; ++c) o[r * cols + c] = packed_a_offset(r, c, rows, cols, mr, kc);
        return out;
      },
      py::arg("rows"), py::arg("cols"), py::arg("mr"), py::arg("kc"),
      "offsets[r, c]: where a (rows, cols) matrix's element (r, c) lies when packed in GEMM row panels "
      "of mr rows and reduction slices of at most kc (common/pack.h), e.g. U's layout (mr, kc).");
  m.def(
      "winograd_weight_grad_block", [](int tile, int64_t kg, int64_t cg, int64_t tiles) {
        check_tile(tile);
        if (kg < 1 || cg < 1 || tiles < 1) throw py::value_error("kg, cg and tiles must be >= 1");
        return winograd_weight_grad_block<float>(tile, kg, cg, tiles);
      },
      py::arg("tile"), py::arg("kg"), py::arg("cg"), py::arg("tiles"),
      "Tiles per block of the float32 Winograd weight gradient under the active ISA (its cost "
      "model's block count is ceil(tiles / this)).");
  m.def(
      "winograd_tile_rows", [](int64_t tiles, int64_t kg) {
        if (kg < 1 || tiles < 0) throw py::value_error("kg must be >= 1 and tiles >= 0");
        return winograd_tile_rows<float>(tiles, kg, false);
      },
      py::arg("tiles"), py::arg("kg"),
      "Padded GEMM size (tile rows x output-channel columns) of the float32 Winograd forward's "
      "tile-rows driver under the active ISA for `tiles` tiles per group and kg output channels per "
      "group without cached weights; 0 where that driver does not run.");
  m.def(
      "winograd_transform_weights", [](py::array w, int64_t groups, int tile) {
        const int r = kernel_size_of(w, "weight");
        check_tile(tile, r);
        if (groups < 1 || w.shape(0) % groups) throw py::value_error("groups must divide the output channels");
        const int64_t K = w.shape(0), Cg = w.shape(1);
        auto run = [&](auto tag) -> py::tuple {
          using T = decltype(tag);
          check_array<T>(w, "weight", {K, Cg, r, r});
          const WinoPackInfo want = winograd_pack_info<T>();
          py::array_t<T> U(winograd_weights_size(K, Cg, groups, tile, r, want.mr));
          WinoPackInfo info;
          {
            T* u = U.mutable_data();
            py::gil_scoped_release release;
            info = winograd_transform_weights<T>(cptr<T>(w), K, Cg, groups, tile, r, u);
          }
          return py::make_tuple(U, info.mr, info.kc);
        };
        return by_dtype<float, double>(w, "weight", run);
      },
      py::arg("weight"), py::arg("groups"), py::arg("tile"),
      "(U, mr, kc): transformed weights packed for the active ISA's GEMM micro-kernel.");
  m.def(
      "conv2d_winograd",
      [](py::array x, py::object w, py::object U, py::tuple layout, py::object bias, py::array y, P2 pad,
         int64_t groups, int tile, bool relu, int kernel_size, int act, double lo, double hi, py::object residual,
         bool residual_after_act) {
        const EpilogueSpec spec{act, lo, hi, residual, residual_after_act};
        // A plain ReLU runs inside the output transform; any other epilogue after it.
        const bool relu_only = act == kActRelu && residual.is_none();
        if (relu_only) relu = true;
        check_tile(tile, kernel_size);
        if (x.ndim() != 4 || y.ndim() != 4) throw py::value_error("input and out must be 4-D");
        const int64_t K = y.shape(1), Cg = x.shape(1) / std::max<int64_t>(groups, 1);
        const int r = kernel_size;
        const ConvParams p = wino_params(shape_of(x), K, Cg, r, pad, groups, y.shape(2), y.shape(3));
        auto run = [&](auto tag) {
          using T = decltype(tag);
          check_array<T>(x, "input", {p.N, p.C, p.H, p.W});
          check_array<T>(y, "out", {p.N, p.K, p.OH, p.OW}, true);
          const T* wp = nullptr;
          const T* up = nullptr;
          WinoPackInfo info;
          py::array wa, ua, ba;
          if (!U.is_none()) {
            ua = U.cast<py::array>();
            info.mr = layout[0].cast<int>();
            info.kc = layout[1].cast<int>();
            if (info.mr < 1 || info.kc < 1) throw py::value_error("bad transformed-weight layout");
            check_array<T>(ua, "transformed weight", {winograd_weights_size(p.K, Cg, groups, tile, r, info.mr)});
            up = cptr<T>(ua);
          } else {
            wa = w.cast<py::array>();
            check_array<T>(wa, "weight", {p.K, Cg, r, r});
            wp = cptr<T>(wa);
          }
          const T* b = nullptr;
          if (!bias.is_none()) {
            ba = bias.cast<py::array>();
            check_array<T>(ba, "bias", {p.K});
            b = cptr<T>(ba);
          }
          T* yp = mptr<T>(y);
          OutputEpilogue<T> e;
          py::array keep;
          const OutputEpilogue<T>* ep = relu_only ? nullptr : output_epilogue<T>(spec, y, {p.N, p.K, p.OH, p.OW}, e, keep);
          py::gil_scoped_release release;
          conv2d_winograd_forward<T>(cptr<T>(x), wp, up, info, b, yp, p, tile, relu);
          if (ep) epilogue_in_place(*ep, static_cast<const T*>(nullptr), p.N, p.K, p.OH * p.OW);
        };
        by_dtype<float, double>(x, "input", run);
      },
      py::arg("input"), py::arg("weight"), py::arg("transformed"), py::arg("layout"), py::arg("bias"),
      py::arg("out"), py::arg("padding"), py::arg("groups"), py::arg("tile"), py::arg("relu") = false,
      py::arg("kernel_size") = 3, FASTCONV_EPILOGUE_PY_ARGS,
      "Winograd 3x3 or 5x5 (kernel_size) stride-1 conv2d into out; weight or (transformed, layout=(mr, kc)); "
      "then the output epilogue (act, residual) where given.");
  m.def(
      "conv2d_winograd_input_grad",
      [](py::array dy, py::array w, py::array dx, P2 pad, int64_t groups, int tile, bool blocked) {
        if (dx.ndim() != 4 || w.ndim() != 4 || dy.ndim() != 4) throw py::value_error("arrays must be 4-D");
        const int r = kernel_size_of(w, "weight");
        check_tile(tile, r);
        if (blocked && r != 3) throw py::value_error("the blocked Winograd input gradient needs a 3x3 kernel");
        const ConvParams p = wino_params(shape_of(dx), w.shape(0), w.shape(1), r, pad, groups, dy.shape(2), dy.shape(3));
        if (p.pad_h > r - 1 || p.pad_w > r - 1)
          throw py::value_error("Winograd input gradient needs padding <= " + std::to_string(r - 1));
        auto run = [&](auto tag) {
          using T = decltype(tag);
          check_array<T>(dy, "grad_output", {p.N, p.K, p.OH, p.OW});
          check_array<T>(w, "weight", {p.K, p.Cg(), r, r});
          check_array<T>(dx, "out", {p.N, p.C, p.H, p.W}, true);
          py::gil_scoped_release release;
          if (blocked)
            conv2d_winograd_input_grad_blocked<T>(cptr<T>(dy), cptr<T>(w), mptr<T>(dx), p, tile);
          else
            conv2d_winograd_input_grad<T>(cptr<T>(dy), cptr<T>(w), mptr<T>(dx), p, tile);
        };
        by_dtype<float, double>(dy, "grad_output", run);
      },
      py::arg("grad_output"), py::arg("weight"), py::arg("out"), py::arg("padding"), py::arg("groups"),
      py::arg("tile"), py::arg("blocked") = true,
      "Winograd input gradient of a 3x3 or 5x5 stride-1 conv2d into dx (N, C, H, W); blocked (3x3 only): "
      "transformed weights made per GEMM panel (winograd_input_grad.cpp), else the forward driver's whole transform.");
  m.def(
      "conv2d_winograd_weight_grad", [](py::array x, py::array dy, py::array dw, P2 pad, int64_t groups, int tile) {
        check_tile(tile);
        if (x.ndim() != 4 || dw.ndim() != 4 || dy.ndim() != 4) throw py::value_error("arrays must be 4-D");
        if (dw.shape(2) != 3 || dw.shape(3) != 3) throw py::value_error("out must be (K, C/groups, 3, 3)");
        const ConvParams p = wino_params(shape_of(x), dw.shape(0), dw.shape(1), 3, pad, groups, dy.shape(2), dy.shape(3));
        auto run = [&](auto tag) {
          using T = decltype(tag);
          check_array<T>(x, "input", {p.N, p.C, p.H, p.W});
          check_array<T>(dy, "grad_output", {p.N, p.K, p.OH, p.OW});
          check_array<T>(dw, "out", {p.K, p.Cg(), 3, 3}, true);
          py::gil_scoped_release release;
          conv2d_winograd_weight_grad<T>(cptr<T>(x), cptr<T>(dy), mptr<T>(dw), p, tile);
        };
        by_dtype<float, double>(x, "input", run);
      },
      py::arg("input"), py::arg("grad_output"), py::arg("out"), py::arg("padding"), py::arg("groups"), py::arg("tile"),
      "Winograd weight gradient of a 3x3 stride-1 conv2d into out (K, C/groups, 3, 3).");
}

}  // namespace
FASTCONV_REGISTER_BINDINGS(bind);
}  // namespace fastconv
