// The depthwise kernel tables. depthwise_kernels.inc is compiled once per ISA below, each copy
// in its own namespace under a target pragma (a template compiled per ISA this way may call
// the ISA's always-inline vector operations; a target attribute on the outer function alone
// does not reach the templates and lambdas it instantiates). Three tables per dtype: the 3x3
// and 5x5 windows and any R x S, each with a scalar, AVX2 and AVX-512 variant (float64: scalar).
#include <algorithm>
#include <cmath>

#include "common/isa_target.h"
#include "conv/depthwise/depthwise_simd.h"
#include "conv/depthwise/depthwise_window.h"

// Vector arguments wider than the baseline ABI's registers only pass between functions inlined
// within one ISA's copy.
#pragma GCC diagnostic ignored "-Wpsabi"

namespace fastconv {
namespace {

namespace dw_scalar {
#include "conv/depthwise/depthwise_kernels.inc"
}  // namespace dw_scalar

#if defined(FASTCONV_X86) && defined(__GNUC__) && !defined(__clang__)
#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c")
namespace dw_avx2 {
#include "conv/depthwise/depthwise_kernels.inc"
}  // namespace dw_avx2
#pragma GCC pop_options

#pragma GCC push_options
#pragma GCC target("avx512f,avx512dq,avx512bw,avx512vl,avx2,fma,f16c")
namespace dw_avx512 {
#include "conv/depthwise/depthwise_kernels.inc"
}  // namespace dw_avx512
#pragma GCC pop_options
#define FASTCONV_DW_VARIANTS(R, S, NAME)                                         \
  {{Isa::scalar, NAME "__scalar", dw_scalar::kernels<ScalarVec<float>, R, S>()}, \
   {Isa::avx2, NAME "__avx2", dw_avx2::kernels<Avx2F32, R, S>()},                \
   {Isa::avx512, NAME "__avx512", dw_avx512::kernels<Avx512F32, R, S>()}}
#else  // the portable build: the one-lane kernels only
#define FASTCONV_DW_VARIANTS(R, S, NAME) {{Isa::scalar, NAME "__scalar", dw_scalar::kernels<ScalarVec<float>, R, S>()}}
#endif

using F32Table = KernelTable<DepthwiseKernels<float>>;
using F64Table = KernelTable<DepthwiseKernels<double>>;
const F32Table kDw3x3F32("depthwise_3x3", "float32", FASTCONV_DW_VARIANTS(3, 3, "depthwise_3x3_f32"));
const F32Table kDw5x5F32("depthwise_5x5", "float32", FASTCONV_DW_VARIANTS(5, 5, "depthwise_5x5_f32"));
const F32Table kDwAnyF32("depthwise_any", "float32", FASTCONV_DW_VARIANTS(0, 0, "depthwise_any_f32"));
#undef FASTCONV_DW_VARIANTS
// float64 (the checking dtype) runs the one-lane kernels on every ISA.
const F64Table kDw3x3F64("depthwise_3x3", "float64",
                         {{Isa::scalar, "depthwise_3x3_f64__scalar", dw_scalar::kernels<ScalarVec<double>, 3, 3>()}});
const F64Table kDw5x5F64("depthwise_5x5", "float64",
                         {{Isa::scalar, "depthwise_5x5_f64__scalar", dw_scalar::kernels<ScalarVec<double>, 5, 5>()}});
const F64Table kDwAnyF64("depthwise_any", "float64",
                         {{Isa::scalar, "depthwise_any_f64__scalar", dw_scalar::kernels<ScalarVec<double>, 0, 0>()}});

template <typename T, class Table>
const DepthwiseKernels<T>& pick(const Table& t3x3, const Table& t5x5, const Table& any, int64_t R, int64_t S) {
  if (R == 3 && S == 3) return t3x3.active();
  if (R == 5 && S == 5) return t5x5.active();
  return any.active();
}

}  // namespace

template <>
const DepthwiseKernels<float>& depthwise_kernels<float>(int64_t R, int64_t S) {
  return pick<float>(kDw3x3F32, kDw5x5F32, kDwAnyF32, R, S);
}
template <>
const DepthwiseKernels<double>& depthwise_kernels<double>(int64_t R, int64_t S) {
  return pick<double>(kDw3x3F64, kDw5x5F64, kDwAnyF64, R, S);
}

}  // namespace fastconv
