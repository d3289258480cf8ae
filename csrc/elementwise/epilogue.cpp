// The fused conv / linear epilogue as one pass over memory:
//
//   y = x * scale[c] + bias[c]            (scale, bias optional; c = the channel axis)
//   y = y + residual                      (optional; before or after the activation)
//   y = act(y)                            act: none, relu, clamp(lo, hi) (relu6, hardtanh), silu
//
// x is viewed as (outer, channels, inner): (N, C, H*W) for a conv output, (rows, features, 1) for
// a linear one. y may be x (in place). The torch.compile backend runs it right after each conv
// (an eval BatchNorm folded into the weights at plan time leaves a bias) and for a standalone
// BatchNorm (scale + shift). Doing this inside each conv family's own output pass, while the
// tile is still in registers, is where this is going (DESIGN.md: one shared epilogue used by
// every family). Today the compiled conv steps pass the activation and residual to the conv's
// own native call (epilogue.h): the pointwise GEMMs, the dense depthwise kernels and the
// shifted-row copy out (epilogue_store.cpp) apply it in their output pass, the other families in
// a pass of their own inside that call.
#include "elementwise/epilogue.h"

#include <cmath>
#include <cstdint>
#include <vector>

#include "common/binding_util.h"
#include "common/isa_target.h"
#include "common/parallel.h"

namespace fastconv {
namespace {

enum Act : int { kNone = kActNone, kRelu = kActRelu, kClamp = kActClamp, kSilu = kActSilu };

template <typename T>
struct EpilogueArgs {
  const T* x;
  T* y;
  const T* residual;  // null: none
  const T* scale;     // null: 1
  const T* bias;      // null: 0
  int64_t outer, channels, inner;
  int act;
  bool residual_after_act;
  T lo, hi;  // kClamp's bounds
};

// One run of n elements sharing per-channel (s, b) when `row` is false (an NCHW plane), or
// taking scale[i] / bias[i] per element when it is true (a linear output row).
template <typename T, int A>
FASTCONV_ALWAYS_INLINE void epilogue_run(const EpilogueArgs<T>& a, int64_t off, int64_t c, int64_t n, bool row) {
  const T* x = a.x + off;
  T* y = a.y + off;
  const T* r = a.residual ? a.residual + off : nullptr;
  const bool res_before = r && !a.residual_after_act, res_after = r && a.residual_after_act;
  if (!row) {
    const T s = a.scale ? a.scale[c] : T(1), b = a.bias ? a.bias[c] : T(0);
    if (res_before) {
      for (int64_t i = 0; i < n; ++i) y[i] = epilogue_activate<T, A>(x[i] * s + b + r[i], a.lo, a.hi);
    } else if (res_after) {
      for (int64_t i = 0; i < n; ++i) y[i] = epilogue_activate<T, A>(x[i] * s + b, a.lo, a.hi) + r[i];
    } else {
      for (int64_t i = 0; i < n; ++i) y[i] = epilogue_activate<T, A>(x[i] * s + b, a.lo, a.hi);
    }
    return;
  }
  for (int64_t i = 0; i < n; ++i) {
    T v = x[i] * (a.scale ? a.scale[i] : T(1)) + (a.bias ? a.bias[i] : T(0));
    if (res_before) v += r[i];
    v = epilogue_activate<T, A>(v, a.lo, a.hi);
    y[i] = res_after ? v + r[i] : v;
  }
}

// Items are (outer, channel) planes, or whole rows when inner == 1.
template <typename T, int A>
FASTCONV_ALWAYS_INLINE void epilogue_items(const EpilogueArgs<T>& a, int64_t i0, int64_t i1) {
  for (int64_t i = i0; i < i1; ++i) {
    if (a.inner == 1) epilogue_run<T, A>(a, i * a.channels, 0, a.channels, true);
    else epilogue_run<T, A>(a, i * a.inner, i % a.channels, a.inner, false);
  }
}

template <typename T>
FASTCONV_ALWAYS_INLINE void epilogue_body(const EpilogueArgs<T>& a, int64_t i0, int64_t i1) {
  switch (a.act) {
    case kRelu: epilogue_items<T, kRelu>(a, i0, i1); break;
    case kClamp: epilogue_items<T, kClamp>(a, i0, i1); break;
    case kSilu: epilogue_items<T, kSilu>(a, i0, i1); break;
    default: epilogue_items<T, kNone>(a, i0, i1); break;
  }
}

// One plane run of n values at offset off, channel c.
template <typename T>
FASTCONV_ALWAYS_INLINE void epilogue_one_run(const EpilogueArgs<T>& a, int64_t off, int64_t c, int64_t n) {
  switch (a.act) {
    case kRelu: epilogue_run<T, kRelu>(a, off, c, n, false); break;
    case kClamp: epilogue_run<T, kClamp>(a, off, c, n, false); break;
    case kSilu: epilogue_run<T, kSilu>(a, off, c, n, false); break;
    default: epilogue_run<T, kNone>(a, off, c, n, false); break;
  }
}

// Runs i < rows of n values at off + i * stride, channel i (a block of a conv's output).
template <typename T>
FASTCONV_ALWAYS_INLINE void epilogue_block(const EpilogueArgs<T>& a, int64_t off, int64_t stride, int64_t rows,
                                           int64_t n) {
  for (int64_t i = 0; i < rows; ++i) epilogue_one_run<T>(a, off + i * stride, i, n);
}

template <typename T>
struct EpilogueKernels {
  void (*items)(const EpilogueArgs<T>&, int64_t, int64_t);                   // items [i0, i1): planes or rows
  void (*block)(const EpilogueArgs<T>&, int64_t, int64_t, int64_t, int64_t);  // off, stride, rows, n
};
#define FASTCONV_EPILOGUE_KERNELS(ISA)                                                                       \
  template <typename T>                                                                                     \
  FASTCONV_TARGET(ISA) void items__##ISA(const EpilogueArgs<T>& a, int64_t i0, int64_t i1) {                \
    epilogue_body<T>(a, i0, i1);                                                                            \
  }                                                                                                         \
  template <typename T>                                                                                     \
  FASTCONV_TARGET(ISA) void block__##ISA(const EpilogueArgs<T>& a, int64_t off, int64_t stride, int64_t rows, \
                                         int64_t n) {                                                       \
    epilogue_block<T>(a, off, stride, rows, n);                                                             \
  }                                                                                                         \
  constexpr EpilogueKernels<float> epilogue_f32__##ISA{&items__##ISA<float>, &block__##ISA<float>};        \
  constexpr EpilogueKernels<double> epilogue_f64__##ISA{&items__##ISA<double>, &block__##ISA<double>};
FASTCONV_FOR_EACH_ISA(FASTCONV_EPILOGUE_KERNELS)
#undef FASTCONV_EPILOGUE_KERNELS
const KernelTable<EpilogueKernels<float>> kEpilogueF32("epilogue", "float32",
                                                       FASTCONV_ISA_VARIANTS(epilogue_f32, "epilogue_f32"));
const KernelTable<EpilogueKernels<double>> kEpilogueF64("epilogue", "float64",
                                                        FASTCONV_ISA_VARIANTS(epilogue_f64, "epilogue_f64"));
const KernelTable<EpilogueKernels<float>>& epilogue_kernels(const float*) { return kEpilogueF32; }
const KernelTable<EpilogueKernels<double>>& epilogue_kernels(const double*) { return kEpilogueF64; }

// ~64K elements per parallel item, at least one plane or row.
constexpr int64_t kChunkElements = 1 << 16;

template <typename T>
void run_epilogue(const EpilogueArgs<T>& a) {
  const auto fn = epilogue_kernels(a.x).active().items;
  const int64_t items = a.inner == 1 ? a.outer : a.outer * a.channels;
  const int64_t per_item = a.inner == 1 ? a.channels : a.inner;
  const int64_t chunk = per_item >= kChunkElements ? 1 : kChunkElements / per_item;
  parallel_for_chunks(items, chunk, [&](int64_t i0, int64_t i1) { fn(a, i0, i1); });
}

template <typename T>
EpilogueArgs<T> in_place_args(const OutputEpilogue<T>& e, const T* bias, int64_t outer, int64_t channels,
                              int64_t inner) {
  return {e.y, const_cast<T*>(e.y), e.residual, nullptr, bias, outer, channels, inner, e.act, e.residual_after_act,
          e.lo, e.hi};
}

std::vector<int64_t> shape_of(const py::array& a) { return std::vector<int64_t>(a.shape(), a.shape() + a.ndim()); }

void bind(py::module_& m) {
  // x, out: C-contiguous, the same shape, axis 1 the channels (ndim >= 2); out may be x.
  // scale, bias: (channels,) or None; residual: x's shape or None. act: 0 none, 1 relu,
  // 2 clamp(lo, hi), 3 silu.
  m.def("epilogue", [](py::array x, py::object scale, py::object bias, py::object residual, int act,
                       bool residual_after_act, double lo, double hi, py::array out) {
    if (x.ndim() < 2) throw py::value_error("input must have at least 2 dimensions (N, C, ...)");
    if (act < kNone || act > kSilu) throw py::value_error("act must be 0 (none), 1 (relu), 2 (clamp) or 3 (silu)");
    auto run = [&](auto tag) {
      using T = decltype(tag);
      const auto shape = shape_of(x);
      check_array<T>(x, "input", shape);
      check_array<T>(out, "out", shape, true);
      EpilogueArgs<T> a{cptr<T>(x), mptr<T>(out), nullptr, nullptr, nullptr, shape[0], shape[1], 1,
                        act, residual_after_act, static_cast<T>(lo), static_cast<T>(hi)};
      for (size_t d = 2; d < shape.size(); ++d) a.inner *= shape[d];
      py::array s, b, r;
      if (!scale.is_none()) { s = scale.cast<py::array>(); check_array<T>(s, "scale", {shape[1]}); a.scale = cptr<T>(s); }
      if (!bias.is_none()) { b = bias.cast<py::array>(); check_array<T>(b, "bias", {shape[1]}); a.bias = cptr<T>(b); }
      if (!residual.is_none()) { r = residual.cast<py::array>(); check_array<T>(r, "residual", shape); a.residual = cptr<T>(r); }
      if (a.outer == 0 || a.channels == 0 || a.inner == 0) return;
      py::gil_scoped_release release;
      run_epilogue<T>(a);
    };
    by_dtype<float, double>(x, "input", run);
  });
}

}  // namespace

template <typename T>
void epilogue_in_place_rows(const OutputEpilogue<T>& e, T* y, int64_t row_stride, int64_t rows, const T* bias,
                            int64_t n) {
  const EpilogueArgs<T> a = in_place_args(e, bias, 1, rows, n);
  epilogue_kernels(e.y).active().block(a, y - e.y, row_stride, rows, n);
}

template <typename T>
void epilogue_in_place(const OutputEpilogue<T>& e, const T* bias, int64_t outer, int64_t channels, int64_t inner) {
  if (outer == 0 || channels == 0 || inner == 0) return;
  run_epilogue<T>(in_place_args(e, bias, outer, channels, inner));
}

template void epilogue_in_place_rows<float>(const OutputEpilogue<float>&, float*, int64_t, int64_t, const float*,
                                            int64_t);
template void epilogue_in_place_rows<double>(const OutputEpilogue<double>&, double*, int64_t, int64_t, const double*,
                                             int64_t);
template void epilogue_in_place<float>(const OutputEpilogue<float>&, const float*, int64_t, int64_t, int64_t);
template void epilogue_in_place<double>(const OutputEpilogue<double>&, const double*, int64_t, int64_t, int64_t);

FASTCONV_REGISTER_BINDINGS(bind);
}  // namespace fastconv
