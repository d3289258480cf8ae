// y = x W^T (+ b) for a few input rows (inference at batch 1-4), streaming W past the caches.
//
// Why: with one row, a big linear layer is a matrix-vector product that reads each weight
// once; VGG-16's first classifier layer reads 411 MB. Through BLAS those reads go through the
// whole cache hierarchy and evict everything else: the next forward's convolutions then found
// their (transformed) weights and workspaces gone, and a VGG-16 forward took 150 ms where its
// features (92 ms) and classifier (18 ms) took 110 ms apart. Here W is read with
// non-temporal prefetches (into L1 only on x86), so the caches keep the rest of the network.
#include <algorithm>
#include <cstdint>
#include <vector>

#include "common/binding_util.h"
#include "common/cpu.h"
#include "common/isa_target.h"
#include "common/parallel.h"

namespace fastconv {
namespace {

constexpr int kMaxRows = 4;           // input rows handled per pass over W
constexpr int64_t kPrefetchAhead = 2048;  // bytes ahead in a weight row (512: 24 ms, 2048: 16 ms, 4096: 19 ms for 411 MB)
constexpr int64_t kOutputsPerItem = 16;

// One output row o per step: ROWS dot products of length `in` against weight row o, in 16
// partial sums each (the reduction vectorises without reassociation flags), W prefetched
// non-temporally a few cache lines ahead.
template <typename T, int ROWS>
FASTCONV_ALWAYS_INLINE void dot_rows(const T* x, const T* wo, int64_t in, T* sums) {
  constexpr int L = 16;
  T acc[ROWS][L] = {};
  int64_t i = 0;
  for (; i + L <= in; i += L) {
    __builtin_prefetch(wo + i + kPrefetchAhead / int64_t(sizeof(T)), 0, 0);
    for (int r = 0; r < ROWS; ++r)
      for (int l = 0; l < L; ++l) acc[r][l] += x[r * in + i + l] * wo[i + l];
  }
  for (int r = 0; r < ROWS; ++r) {
    T s = 0;
    for (int64_t k = i; k < in; ++k) s += x[r * in + k] * wo[k];
    for (int l = 0; l < L; ++l) s += acc[r][l];
    sums[r] = s;
  }
}

template <typename T, int ROWS>
FASTCONV_ALWAYS_INLINE void output_block(const T* x, const T* w, const T* b, T* y, int64_t in, int64_t out,
                                         int64_t o0, int64_t o1) {
  for (int64_t o = o0; o < o1; ++o) {
    T sums[ROWS];
    dot_rows<T, ROWS>(x, w + o * in, in, sums);
    for (int r = 0; r < ROWS; ++r) y[r * out + o] = sums[r] + (b ? b[o] : T(0));
  }
}

template <typename T>
FASTCONV_ALWAYS_INLINE void block_any_rows(const T* x, const T* w, const T* b, T* y, int64_t rows, int64_t in,
                                           int64_t out, int64_t o0, int64_t o1) {
  switch (rows) {
    case 1: return output_block<T, 1>(x, w, b, y, in, out, o0, o1);
    case 2: return output_block<T, 2>(x, w, b, y, in, out, o0, o1);
    case 3: return output_block<T, 3>(x, w, b, y, in, out, o0, o1);
    default: return output_block<T, 4>(x, w, b, y, in, out, o0, o1);
  }
}

template <typename T>
using BlockFn = void (*)(const T*, const T*, const T*, T*, int64_t, int64_t, int64_t, int64_t, int64_t);
#define FASTCONV_LINEAR_FEW_ROWS(ISA)                                                                          \
  template <typename T>                                                                                       \
  FASTCONV_TARGET(ISA) void block__##ISA(const T* x, const T* w, const T* b, T* y, int64_t rows, int64_t in,   \
                                         int64_t out, int64_t o0, int64_t o1) {                               \
    block_any_rows<T>(x, w, b, y, rows, in, out, o0, o1);                                                     \
  }
FASTCONV_FOR_EACH_ISA(FASTCONV_LINEAR_FEW_ROWS)
#undef FASTCONV_LINEAR_FEW_ROWS

template <typename T>
BlockFn<T> block_for_active_isa() {
#if defined(FASTCONV_X86) && defined(__GNUC__)
  switch (active_isa()) {
    case Isa::avx512: return &block__avx512<T>;
    case Isa::avx2: return &block__avx2<T>;
    default: break;
  }
#endif
  return &block__scalar<T>;
}

template <typename T>
void linear_few_rows(const T* x, const T* w, const T* b, T* y, int64_t rows, int64_t in, int64_t out) {
  const BlockFn<T> block = block_for_active_isa<T>();
  const int64_t items = (out + kOutputsPerItem - 1) / kOutputsPerItem;
  parallel_for(items, [&](int64_t item) {
    block(x, w, b, y, rows, in, out, item * kOutputsPerItem, std::min(out, (item + 1) * kOutputsPerItem));
  });
}

void bind(py::module_& m) {
  m.def("linear_few_rows", [](py::array x, py::array w, py::object bias, py::array y) {
    auto run = [&](auto tag) {
      using T = decltype(tag);
      if (x.ndim() != 2 || w.ndim() != 2) throw py::value_error("input and weight must be 2-D");
      const int64_t rows = x.shape(0), in = x.shape(1), out = w.shape(0);
      if (rows < 1 || rows > kMaxRows)
        throw py::value_error("input must have 1 to " + std::to_string(kMaxRows) + " rows, got " +
                              std::to_string(rows));
      check_array<T>(x, "input", {rows, in});
      check_array<T>(w, "weight", {out, in});
      check_array<T>(y, "out", {rows, out}, true);
      const T* b = nullptr;
      py::array barr;
      if (!bias.is_none()) {
        barr = bias.cast<py::array>();
        check_array<T>(barr, "bias", {out});
        b = cptr<T>(barr);
      }
      py::gil_scoped_release release;
      linear_few_rows<T>(cptr<T>(x), cptr<T>(w), b, mptr<T>(y), rows, in, out);
    };
    by_dtype<float, double>(x, "input", run);
  });
}

}  // namespace
FASTCONV_REGISTER_BINDINGS(bind);
}  // namespace fastconv
