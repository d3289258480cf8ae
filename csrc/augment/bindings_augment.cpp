// Python bindings of the augmentation kernels (fastconv/augment/functional.py is the caller:
// it validates arguments and draws the per-sample parameters).
#include "augment/augment.h"
#include "common/binding_util.h"

namespace fastconv {
namespace {

using augment::Image;
using augment::Border;
using augment::Interp;

// The logical (N, C, H, W) of x, stored NCHW or (channels_last) NHWC.
Image image_of(const py::array& x, bool channels_last) {
  if (x.ndim() != 4) throw py::value_error("input must be 4-D (N, C, H, W) or (N, H, W, C)");
  if (channels_last) return {x.shape(0), x.shape(3), x.shape(1), x.shape(2), true};
  return {x.shape(0), x.shape(1), x.shape(2), x.shape(3), false};
}

std::vector<int64_t> dims(const Image& b, int64_t H, int64_t W) {
  if (b.channels_last) return {b.N, H, W, b.C};
  return {b.N, b.C, H, W};
}
std::vector<int64_t> dims(const Image& b) { return dims(b, b.H, b.W); }

Border border_of(int b) {
  if (b < 0 || b > 2) throw py::value_error("border must be 0 (constant), 1 (reflect) or 2 (replicate)");
  return static_cast<Border>(b);
}

// The kernels take float32 or uint8 images (float64 is converted in Python).
void bind(py::module_& m) {
  m.def("aug_warp_affine", [](py::array x, py::array y, py::array inv, int interp, int border, float fill, bool channels_last) {
    const Image b = image_of(x, channels_last);
    if (y.ndim() != 4) throw py::value_error("out must be 4-D");
    const int64_t OH = y.shape(channels_last ? 1 : 2), OW = y.shape(channels_last ? 2 : 3);
    if (interp < 0 || interp > 1) throw py::value_error("interpolation must be 0 (nearest) or 1 (bilinear)");
    if (b.H * b.W * b.C >= (int64_t(1) << 31)) throw py::value_error("input planes must have < 2**31 pixels");
    const Border bd = border_of(border);
    check_array<double>(inv, "matrices", {b.N, 2, 3});
    by_dtype<float, uint8_t>(x, "input", [&](auto tag) {
      using T = decltype(tag);
      check_array<T>(x, "input", dims(b));
      check_array<T>(y, "out", dims(b, OH, OW), true);
      py::gil_scoped_release release;
      augment::warp_affine<T>(cptr<T>(x), mptr<T>(y), b, OH, OW, cptr<double>(inv),
                              static_cast<Interp>(interp), bd, fill);
    });
  });
  m.def("aug_flip", [](py::array x, py::array y, py::array h, py::array v, bool channels_last) {
    const Image b = image_of(x, channels_last);
    check_array<uint8_t>(h, "horizontal", {b.N});
    check_array<uint8_t>(v, "vertical", {b.N});
    by_dtype<float, uint8_t>(x, "input", [&](auto tag) {
      using T = decltype(tag);
      check_array<T>(x, "input", dims(b));
      check_array<T>(y, "out", dims(b), true);
      py::gil_scoped_release release;
      augment::flip<T>(cptr<T>(x), mptr<T>(y), b, cptr<uint8_t>(h), cptr<uint8_t>(v));
    });
  });
  m.def("aug_gaussian_blur", [](py::array x, py::array y, py::array sigma, double truncate, int border, bool channels_last) {
    const Image b = image_of(x, channels_last);
    const Border bd = border_of(border);
    check_array<double>(sigma, "sigma", {b.N});
    by_dtype<float, uint8_t>(x, "input", [&](auto tag) {
      using T = decltype(tag);
      check_array<T>(x, "input", dims(b));
      check_array<T>(y, "out", dims(b), true);
      py::gil_scoped_release release;
      augment::gaussian_blur<T>(cptr<T>(x), mptr<T>(y), b, cptr<double>(sigma), truncate, bd);
    });
  });
  m.def("aug_color_adjust", [](py::array x, py::array y, py::array params, float lo, float hi, bool channels_last) {
    const Image b = image_of(x, channels_last);
    check_array<float>(params, "params", {b.N, 4});
    by_dtype<float, uint8_t>(x, "input", [&](auto tag) {
      using T = decltype(tag);
      check_array<T>(x, "input", dims(b));
      check_array<T>(y, "out", dims(b), true);
      py::gil_scoped_release release;
      augment::color_adjust<T>(cptr<T>(x), mptr<T>(y), b, cptr<float>(params), lo, hi);
    });
  });
  m.def("aug_color_lut_chain", [](py::array x, py::array y, py::array params, py::array ranges, bool channels_last) {
    const Image b = image_of(x, channels_last);
    const int64_t steps = ranges.ndim() == 2 ? ranges.shape(0) : -1;
    check_array<float>(ranges, "ranges", {steps, 2});
    check_array<float>(params, "params", {b.N, steps, 2});
    check_array<uint8_t>(x, "input", dims(b));
    check_array<uint8_t>(y, "out", dims(b), true);
    py::gil_scoped_release release;
    augment::color_lut_chain(cptr<uint8_t>(x), mptr<uint8_t>(y), b, steps, cptr<float>(params), cptr<float>(ranges));
  });
  m.def("aug_gaussian_noise", [](py::array x, py::array y, py::array key, py::array std, float lo, float hi) {
    const bool channels_last = false;  // element-wise: the layout does not matter
    const Image b = image_of(x, channels_last);
    const int64_t per = b.C * b.H * b.W;
    if (per >= (int64_t(1) << 32)) throw py::value_error("samples must have < 2**32 elements");
    check_array<uint64_t>(key, "key", {b.N});
    check_array<float>(std, "std", {b.N});
    by_dtype<float, uint8_t>(x, "input", [&](auto tag) {
      using T = decltype(tag);
      check_array<T>(x, "input", dims(b));
      check_array<T>(y, "out", dims(b), true);
      py::gil_scoped_release release;
      augment::gaussian_noise<T>(cptr<T>(x), mptr<T>(y), b.N, per, cptr<uint64_t>(key), cptr<float>(std), lo, hi);
    });
  });
  m.def("aug_salt_pepper", [](py::array x, py::array y, py::array key, py::array amount, float salt, float pepper) {
    const bool channels_last = false;  // element-wise: the layout does not matter
    const Image b = image_of(x, channels_last);
    const int64_t per = b.C * b.H * b.W;
    if (per >= (int64_t(1) << 32)) throw py::value_error("samples must have < 2**32 elements");
    check_array<uint64_t>(key, "key", {b.N});
    check_array<float>(amount, "amount", {b.N});
    by_dtype<float, uint8_t>(x, "input", [&](auto tag) {
      using T = decltype(tag);
      check_array<T>(x, "input", dims(b));
      check_array<T>(y, "out", dims(b), true);
      py::gil_scoped_release release;
      augment::salt_pepper<T>(cptr<T>(x), mptr<T>(y), b.N, per, cptr<uint64_t>(key), cptr<float>(amount), salt, pepper);
    });
  });
}

}  // namespace
FASTCONV_REGISTER_BINDINGS(bind);
}  // namespace fastconv
