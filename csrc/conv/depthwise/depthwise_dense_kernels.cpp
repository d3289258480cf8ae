// The dense 3x3 depthwise kernel table: depthwise_dense.inc compiled once per ISA, each copy in
// its own namespace under a target pragma (as depthwise_kernels.cpp does for the window
// kernels), with a scalar, AVX2 and AVX-512 variant for float32 and the scalar one for float64.
#include <algorithm>
#include <cstdint>

#include "common/isa_target.h"
#include "common/kernel_list.h"
#include "conv/depthwise/depthwise_dense.h"
#include "conv/depthwise/depthwise_simd.h"

// Vector arguments wider than the baseline ABI's registers only pass between functions inlined
// within one ISA's copy.
#pragma GCC diagnostic ignored "-Wpsabi"
// GCC 12 warns about its own _mm512_reduce_add_ps (a false -Wuninitialized in avx512fintrin.h).
#pragma GCC diagnostic ignored "-Wuninitialized"

namespace fastconv {
namespace {

namespace dwd_scalar {
#include "conv/depthwise/depthwise_dense.inc"
}  // namespace dwd_scalar

#if defined(FASTCONV_X86) && defined(__GNUC__) && !defined(__clang__)
#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c")
namespace dwd_avx2 {
#include "conv/depthwise/depthwise_dense.inc"
}  // namespace dwd_avx2
#pragma GCC pop_options

#pragma GCC push_options
#pragma GCC target("avx512f,avx512dq,avx512bw,avx512vl,avx2,fma,f16c")
namespace dwd_avx512 {
#include "conv/depthwise/depthwise_dense.inc"
}  // namespace dwd_avx512
#pragma GCC pop_options
const KernelTable<DepthwiseDenseKernels<float>> kDenseF32(
    "depthwise_3x3_dense", "float32",
    {{Isa::scalar, "depthwise_3x3_dense_f32__scalar", dwd_scalar::dense_kernels<ScalarVec<float>>()},
     {Isa::avx2, "depthwise_3x3_dense_f32__avx2", dwd_avx2::dense_kernels<Avx2F32>()},
     {Isa::avx512, "depthwise_3x3_dense_f32__avx512", dwd_avx512::dense_kernels<Avx512F32>()}});
#else  // the portable build: the one-lane kernel only
const KernelTable<DepthwiseDenseKernels<float>> kDenseF32(
    "depthwise_3x3_dense", "float32",
    {{Isa::scalar, "depthwise_3x3_dense_f32__scalar", dwd_scalar::dense_kernels<ScalarVec<float>>()}});
#endif
// float64 (the checking dtype) runs the one-lane kernel on every ISA.
const KernelTable<DepthwiseDenseKernels<double>> kDenseF64(
    "depthwise_3x3_dense", "float64",
    {{Isa::scalar, "depthwise_3x3_dense_f64__scalar", dwd_scalar::dense_kernels<ScalarVec<double>>()}});

}  // namespace

template <>
const DepthwiseDenseKernels<float>& depthwise_dense_kernels<float>() {
  return kDenseF32.active();
}
template <>
const DepthwiseDenseKernels<double>& depthwise_dense_kernels<double>() {
  return kDenseF64.active();
}

}  // namespace fastconv
