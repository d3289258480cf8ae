// Per-function ISA targets for kernels that are compiled once per ISA inside their own file
// (the augmentation kernels, the 2x2 max-pool). FASTCONV_FOR_EACH_ISA(X) stamps out X(scalar),
// X(avx2), X(avx512); FASTCONV_TARGET(isa) gives a function exactly the instruction sets that
// CMakeLists.txt gives the *__avx2.cpp / *__avx512.cpp files and that detected_isa() checks.
//
// Why attributes here and per-ISA files for GEMM / Winograd: these kernels inline shared
// helpers (pixels.h, std::min / std::max). Under a target attribute every helper is compiled
// inside the function that uses it, so no AVX copy of a shared inline function can reach the
// baseline code through the linker, which per-file flags would risk.
#pragma once
#include "common/cpu.h"
#include "common/kernel_list.h"

#if defined(FASTCONV_X86) && defined(__GNUC__)
#define FASTCONV_TARGET_scalar
#define FASTCONV_TARGET_avx2 __attribute__((target("avx2,fma,f16c")))
#define FASTCONV_TARGET_avx512 __attribute__((target("avx512f,avx512dq,avx512bw,avx512vl,avx2,fma,f16c")))
#define FASTCONV_FOR_EACH_ISA(X) X(scalar) X(avx2) X(avx512)
// The KernelVariant list of FN##__scalar, FN##__avx2, FN##__avx512, named NAME "__<isa>".
#define FASTCONV_ISA_VARIANTS(FN, NAME) \
  {FASTCONV_VARIANT_(scalar, FN, NAME), FASTCONV_VARIANT_(avx2, FN, NAME), FASTCONV_VARIANT_(avx512, FN, NAME)}
#else
#define FASTCONV_TARGET_scalar
#define FASTCONV_FOR_EACH_ISA(X) X(scalar)
#define FASTCONV_ISA_VARIANTS(FN, NAME) {FASTCONV_VARIANT_(scalar, FN, NAME)}
#endif
#define FASTCONV_TARGET(ISA) FASTCONV_TARGET_##ISA
#define FASTCONV_VARIANT_(ISA, FN, NAME) {::fastconv::Isa::ISA, NAME "__" #ISA, FN##__##ISA}
// The body each variant wraps must be inlined into it, or every variant would call one
// baseline copy.
#define FASTCONV_ALWAYS_INLINE inline __attribute__((always_inline))
