// A linear layer on a few rows (batch 1-8), forward and both gradients, streaming the weight
// matrix once per pass on all threads.
//
// Why: with few rows a big linear layer is bound by reading (or, for its weight gradient,
// writing) W: AlexNet's first classifier layer is 151 MB, VGG-16's 411 MB. Through BLAS the
// reads go through the whole cache hierarchy and evict everything else (a VGG-16 forward took
// 150 ms where its features, 92 ms, and classifier, 18 ms, took 110 ms apart), and in training
// BLAS runs on one thread (fit() limits it: OpenBLAS's spinning threads fight fastconv's pool).
// Here the forward reads W with non-temporal prefetches (into L1 only on x86), so the caches
// keep the rest of the network, and all three passes run on fastconv's pool:
//   forward       y[r, o]   = sum_c x[r, c] W[o, c] (+ b[o])   each thread a block of outputs
//   input grad    dx[r, c]  = sum_o dy[r, o] W[o, c]           each thread a block of W's rows
//                                                              into its own partial dx, summed
//   weight grad   dW[o, c] (+)= sum_r dy[r, o] x[r, c]         each thread a block of W's rows
#include <algorithm>
#include <array>
#include <cstdint>
#include <vector>

#include "common/binding_util.h"
#include "common/cpu.h"
#include "common/isa_target.h"
#include "common/parallel.h"
#include "common/params.h"
#include "common/workspace.h"

// The 64-byte GCC vectors below pass between always-inlined helpers; GCC warns that such a
// value's calling convention differs without AVX-512, which cannot matter once inlined.
#pragma GCC diagnostic ignored "-Wpsabi"

namespace fastconv {
namespace {

constexpr int kMaxRows = 8;               // input rows handled per pass over W
constexpr int64_t kPrefetchAhead = 2048;  // bytes ahead in a weight row (512: 24 ms, 2048: 16 ms, 4096: 19 ms for 411 MB)
constexpr int64_t kOutputsPerItem = 16;   // forward: weight rows per work item
constexpr int64_t kGradRowsPerItem = 8;   // weight gradient: weight rows per work item

// 64 bytes of T as one GCC vector: one zmm under the AVX-512 variant's target, two ymm under
// AVX2's, SSE pairs in the scalar (baseline) variant. Written with vectors, not left to the
// auto-vectoriser, because the forward is eight reductions at once (which it will not reorder)
// and the input gradient must keep four weight rows' vectors in registers across the rows.
template <typename T>
struct Vec {
  typedef T V __attribute__((vector_size(64)));
  static constexpr int kLanes = 64 / sizeof(T);
  FASTCONV_ALWAYS_INLINE static V load(const T* p) {
    V v;
    __builtin_memcpy(&v, p, sizeof(V));
    return v;
  }
  FASTCONV_ALWAYS_INLINE static void store(T* p, V v) { __builtin_memcpy(p, &v, sizeof(V)); }
  FASTCONV_ALWAYS_INLINE static T sum(V v) {
    T s = 0;
    for (int l = 0; l < kLanes; ++l) s += v[l];
    return s;
  }
};

// y[r, o] for weight rows [o0, o1): OB weight rows at a time (each x vector loaded once for
// them; OB * ROWS independent accumulator chains), in vector partial sums, W prefetched
// non-temporally a few cache lines ahead. One row at a time ran at 19 GB/s on a Zen 4 core
// (x, 36 KB for AlexNet's 9216 inputs, reloaded from L2 per row), torch's GEMV at 25.
template <typename T, int ROWS, int OB>
FASTCONV_ALWAYS_INLINE void forward_rows(const T* x, const T* w, const T* b, T* y, int64_t in, int64_t out,
                                         int64_t o) {
  using Q = Vec<T>;
  constexpr int L = Q::kLanes;
  const T* wo[OB];
  for (int j = 0; j < OB; ++j) wo[j] = w + (o + j) * in;
  typename Q::V acc[ROWS][OB] = {};
  int64_t i = 0;
  for (; i + L <= in; i += L) {
    typename Q::V wv[OB];
    for (int j = 0; j < OB; ++j) {
      __builtin_prefetch(wo[j] + i + kPrefetchAhead / int64_t(sizeof(T)), 0, 0);
      wv[j] = Q::load(wo[j] + i);
    }
    for (int r = 0; r < ROWS; ++r) {
      const typename Q::V xv = Q::load(x + r * in + i);
      for (int j = 0; j < OB; ++j) acc[r][j] += xv * wv[j];
    }
  }
  for (int r = 0; r < ROWS; ++r)
    for (int j = 0; j < OB; ++j) {
      T s = Q::sum(acc[r][j]);
      for (int64_t k = i; k < in; ++k) s += x[r * in + k] * wo[j][k];
      y[r * out + o + j] = s + (b ? b[o + j] : T(0));
    }
}

template <typename T, int ROWS>
FASTCONV_ALWAYS_INLINE void forward_block(const T* x, const T* w, const T* b, T* y, int64_t in, int64_t out,
                                          int64_t o0, int64_t o1) {
  constexpr int OB = ROWS <= 4 ? 4 : 2;   // accumulators + weight vectors within 32 registers
  int64_t o = o0;
  for (; o + OB <= o1; o += OB) forward_rows<T, ROWS, OB>(x, w, b, y, in, out, o);
  for (; o < o1; ++o) forward_rows<T, ROWS, 1>(x, w, b, y, in, out, o);
}

// part[r, :] += sum over weight rows o in [o0, o1) of dy[r, o] W[o, :]: four weight rows per
// sweep, each vector of them loaded once and applied to every row's partial sums.
template <typename T, int ROWS>
FASTCONV_ALWAYS_INLINE void input_grad_block(const T* dy, const T* w, T* part, int64_t in, int64_t out,
                                             int64_t o0, int64_t o1) {
  using Q = Vec<T>;
  constexpr int L = Q::kLanes;
  int64_t o = o0;
  for (; o + 4 <= o1; o += 4) {
    const T *w0 = w + o * in, *w1 = w0 + in, *w2 = w1 + in, *w3 = w2 + in;
    T d[ROWS][4];
    for (int r = 0; r < ROWS; ++r)
      for (int j = 0; j < 4; ++j) d[r][j] = dy[r * out + o + j];
    int64_t c = 0;
    for (; c + L <= in; c += L) {
      const typename Q::V v0 = Q::load(w0 + c), v1 = Q::load(w1 + c), v2 = Q::load(w2 + c), v3 = Q::load(w3 + c);
      for (int r = 0; r < ROWS; ++r)
        Q::store(part + r * in + c, Q::load(part + r * in + c) + d[r][0] * v0 + d[r][1] * v1 + d[r][2] * v2 +
                                        d[r][3] * v3);
    }
    for (; c < in; ++c)
      for (int r = 0; r < ROWS; ++r)
        part[r * in + c] += d[r][0] * w0[c] + d[r][1] * w1[c] + d[r][2] * w2[c] + d[r][3] * w3[c];
  }
  for (; o < o1; ++o) {
    const T* wo = w + o * in;
    for (int r = 0; r < ROWS; ++r) {
      const T d0 = dy[r * out + o];
      for (int64_t c = 0; c < in; ++c) part[r * in + c] += d0 * wo[c];
    }
  }
}

// dW[o, :] (+)= sum_r dy[r, o] x[r, :] for weight rows [o0, o1); x stays in L2.
template <typename T, int ROWS>
FASTCONV_ALWAYS_INLINE void weight_grad_block(const T* x, const T* dy, T* dw, int64_t in, int64_t out,
                                              int64_t o0, int64_t o1, bool accumulate) {
  using Q = Vec<T>;
  constexpr int L = Q::kLanes;
  for (int64_t o = o0; o < o1; ++o) {
    T d[ROWS];
    for (int r = 0; r < ROWS; ++r) d[r] = dy[r * out + o];
    T* dwo = dw + o * in;
    int64_t c = 0;
    for (; c + L <= in; c += L) {
      typename Q::V s = accumulate ? Q::load(dwo + c) : typename Q::V{};
      for (int r = 0; r < ROWS; ++r) s += d[r] * Q::load(x + r * in + c);
      Q::store(dwo + c, s);
    }
    for (; c < in; ++c) {
      T s = accumulate ? dwo[c] : T(0);
      for (int r = 0; r < ROWS; ++r) s += d[r] * x[r * in + c];
      dwo[c] = s;
    }
  }
}

// The row count as a template argument (the inner loops unroll over it). A switch, not a
// generic lambda: a lambda would be a function without the variant's target attribute.
#define FASTCONV_ROW_CASES(F, ...)                                                               \
  case 1: return F<T, 1>(__VA_ARGS__);                                                           \
  case 2: return F<T, 2>(__VA_ARGS__);                                                           \
  case 3: return F<T, 3>(__VA_ARGS__);                                                           \
  case 4: return F<T, 4>(__VA_ARGS__);                                                           \
  case 5: return F<T, 5>(__VA_ARGS__);                                                           \
  case 6: return F<T, 6>(__VA_ARGS__);                                                           \
  case 7: return F<T, 7>(__VA_ARGS__);                                                           \
  default: return F<T, 8>(__VA_ARGS__);
static_assert(kMaxRows == 8, "FASTCONV_ROW_CASES lists 1..8 rows");

template <typename T>
struct DenseKernels {
  void (*forward)(const T* x, const T* w, const T* b, T* y, int64_t rows, int64_t in, int64_t out, int64_t o0,
                  int64_t o1);
  void (*input_grad)(const T* dy, const T* w, T* part, int64_t rows, int64_t in, int64_t out, int64_t o0,
                     int64_t o1);
  void (*weight_grad)(const T* x, const T* dy, T* dw, int64_t rows, int64_t in, int64_t out, int64_t o0,
                      int64_t o1, bool accumulate);
};

#define FASTCONV_DENSE_KERNELS(ISA)                                                                          \
  template <typename T>                                                                                     \
  FASTCONV_TARGET(ISA) void forward__##ISA(const T* x, const T* w, const T* b, T* y, int64_t rows, int64_t in, \
                                           int64_t out, int64_t o0, int64_t o1) {                           \
    switch (rows) { FASTCONV_ROW_CASES(forward_block, x, w, b, y, in, out, o0, o1) }                         \
  }                                                                                                         \
  template <typename T>                                                                                     \
  FASTCONV_TARGET(ISA) void input_grad__##ISA(const T* dy, const T* w, T* part, int64_t rows, int64_t in,   \
                                              int64_t out, int64_t o0, int64_t o1) {                        \
    switch (rows) { FASTCONV_ROW_CASES(input_grad_block, dy, w, part, in, out, o0, o1) }                     \
  }                                                                                                         \
  template <typename T>                                                                                     \
  FASTCONV_TARGET(ISA) void weight_grad__##ISA(const T* x, const T* dy, T* dw, int64_t rows, int64_t in,    \
                                               int64_t out, int64_t o0, int64_t o1, bool accumulate) {      \
    switch (rows) { FASTCONV_ROW_CASES(weight_grad_block, x, dy, dw, in, out, o0, o1, accumulate) }          \
  }                                                                                                         \
  constexpr DenseKernels<float> dense_f32__##ISA{&forward__##ISA<float>, &input_grad__##ISA<float>,         \
                                                &weight_grad__##ISA<float>};                                \
  constexpr DenseKernels<double> dense_f64__##ISA{&forward__##ISA<double>, &input_grad__##ISA<double>,      \
                                                  &weight_grad__##ISA<double>};
FASTCONV_FOR_EACH_ISA(FASTCONV_DENSE_KERNELS)
#undef FASTCONV_DENSE_KERNELS
#undef FASTCONV_ROW_CASES

const KernelTable<DenseKernels<float>> kDenseF32("linear_few_rows", "float32",
                                                 FASTCONV_ISA_VARIANTS(dense_f32, "linear_few_rows_f32"));
const KernelTable<DenseKernels<double>> kDenseF64("linear_few_rows", "float64",
                                                  FASTCONV_ISA_VARIANTS(dense_f64, "linear_few_rows_f64"));
const KernelTable<DenseKernels<float>>& dense_kernels(const float*) { return kDenseF32; }
const KernelTable<DenseKernels<double>>& dense_kernels(const double*) { return kDenseF64; }

template <typename T>
void linear_forward(const T* x, const T* w, const T* b, T* y, int64_t rows, int64_t in, int64_t out) {
  const DenseKernels<T>& k = dense_kernels(x).active();
  parallel_for(ceil_div(out, kOutputsPerItem), [&](int64_t item) {
    k.forward(x, w, b, y, rows, in, out, item * kOutputsPerItem, std::min(out, (item + 1) * kOutputsPerItem));
  });
}

// One contiguous block of W's rows per thread (each streams its half of W front to back) into
// a partial dx of its own; then the partials are summed into dx, a column block per item.
template <typename T>
void linear_input_grad(const T* dy, const T* w, T* dx, int64_t rows, int64_t in, int64_t out) {
  const DenseKernels<T>& k = dense_kernels(dy).active();
  const int64_t parts = std::max<int64_t>(1, std::min<int64_t>(max_threads(), out / 4));
  AlignedBuffer<T> partials((parts - 1) * rows * in);  // part 0 is dx itself
  parallel_for(parts, [&](int64_t p) {
    T* part = p == 0 ? dx : partials.data() + (p - 1) * rows * in;
    std::fill(part, part + rows * in, T(0));
    k.input_grad(dy, w, part, rows, in, out, out * p / parts, out * (p + 1) / parts);
  });
  if (parts == 1) return;
  parallel_for_chunks(rows * in, 4096, [&](int64_t a, int64_t b) {
    for (int64_t p = 1; p < parts; ++p) {
      const T* part = partials.data() + (p - 1) * rows * in;
      for (int64_t i = a; i < b; ++i) dx[i] += part[i];
    }
  });
}

template <typename T>
void linear_weight_grad(const T* x, const T* dy, T* dw, int64_t rows, int64_t in, int64_t out, bool accumulate) {
  const DenseKernels<T>& k = dense_kernels(x).active();
  parallel_for(ceil_div(out, kGradRowsPerItem), [&](int64_t item) {
    k.weight_grad(x, dy, dw, rows, in, out, item * kGradRowsPerItem, std::min(out, (item + 1) * kGradRowsPerItem),
                  accumulate);
  });
}

// (rows, in, out) of input x (rows, in) and weight w (out, in), both checked as T arrays.
template <typename T>
std::array<int64_t, 3> check_input_and_weight(const py::array& x, const py::array& w) {
  if (x.ndim() != 2) throw py::value_error("input must be 2-D (rows, in_features)");
  if (w.ndim() != 2) throw py::value_error("weight must be 2-D (out_features, in_features)");
  const int64_t rows = x.shape(0), in = x.shape(1), out = w.shape(0);
  if (rows < 1 || rows > kMaxRows)
    throw py::value_error("input must have 1 to " + std::to_string(kMaxRows) + " rows, got " + std::to_string(rows));
  check_array<T>(x, "input", {rows, in});
  check_array<T>(w, "weight", {out, in});
  return {rows, in, out};
}

void bind(py::module_& m) {
  m.def("linear_few_rows", [](py::array x, py::array w, py::object bias, py::array y) {
    by_dtype<float, double>(x, "input", [&](auto tag) {
      using T = decltype(tag);
      const auto [rows, in, out] = check_input_and_weight<T>(x, w);
      check_array<T>(y, "out", {rows, out}, true);
      const T* b = nullptr;
      py::array barr;
      if (!bias.is_none()) {
        barr = bias.cast<py::array>();
        check_array<T>(barr, "bias", {out});
        b = cptr<T>(barr);
      }
      py::gil_scoped_release release;
      linear_forward<T>(cptr<T>(x), cptr<T>(w), b, mptr<T>(y), rows, in, out);
    });
  }, py::arg("input"), py::arg("weight"), py::arg("bias"), py::arg("out"),
     "out = input @ weight.T (+ bias) for 1-8 input rows, streaming the weight once.");
  m.def("linear_backward_few_rows", [](py::array x, py::array w, py::array dy, py::object grad_input,
                                       py::array grad_weight, bool accumulate) {
    by_dtype<float, double>(x, "input", [&](auto tag) {
      using T = decltype(tag);
      const auto [rows, in, out] = check_input_and_weight<T>(x, w);
      check_array<T>(dy, "grad_output", {rows, out});
      check_array<T>(grad_weight, "grad_weight", {out, in}, true);
      T* gx = nullptr;
      py::array gx_arr;
      if (!grad_input.is_none()) {
        gx_arr = grad_input.cast<py::array>();
        check_array<T>(gx_arr, "grad_input", {rows, in}, true);
        gx = mptr<T>(gx_arr);
      }
      py::gil_scoped_release release;
      linear_weight_grad<T>(cptr<T>(x), cptr<T>(dy), mptr<T>(grad_weight), rows, in, out, accumulate);
      if (gx) linear_input_grad<T>(cptr<T>(dy), cptr<T>(w), gx, rows, in, out);
    });
  }, py::arg("input"), py::arg("weight"), py::arg("grad_output"), py::arg("grad_input"), py::arg("grad_weight"),
     py::arg("accumulate"),
     "grad_weight (+)= grad_output.T @ input and (unless grad_input is None) grad_input = grad_output @ weight, "
     "for 1-8 rows, each streaming the weight once.");
}

}  // namespace
FASTCONV_REGISTER_BINDINGS(bind);
}  // namespace fastconv
