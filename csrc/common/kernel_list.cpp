// The kernel registry, and the one family whose dispatch predates KernelTable: the GEMM
// micro-kernels (gemm.cpp picks by ISA and row count). Its entries are written out here;
// tests/test_kernel_variants.py checks on every host that each kernel these dispatchers can
// return is listed, and runs every listed kernel the CPU supports.
//
// The names of kernels above this CPU's ISA are not read from their factories: those live in
// files compiled for that ISA, and even returning a struct from them may use its instructions.
#include "common/gemm.h"
#include "common/kernel_list.h"

namespace fastconv {

std::vector<KernelFamily>& kernel_families() {
  static std::vector<KernelFamily> families;
  return families;
}

namespace {

KernelFamily family(const char* op, const char* dtype, std::vector<std::pair<Isa, const char*>> kernels,
                    std::function<const char*(Isa)> chosen) {
  KernelFamily f;
  for (const auto& [isa, name] : kernels) f.entries.push_back({op, name, isa, dtype});
  f.chosen = std::move(chosen);
  return f;
}

#ifdef FASTCONV_X86
#define FASTCONV_X86_ONLY(...) __VA_ARGS__
#else
#define FASTCONV_X86_ONLY(...)
#endif

// The GEMM tiles. "gemm" families list every tile; the chosen one is the ISA's default (the
// 8x48 tile is picked by row count, see micro_kernel_f32_for_rows).
const KernelFamilyRegistrar kGemmF32(family(
    "gemm", "float32",
    {{Isa::scalar, "gemm_4x16__scalar"} FASTCONV_X86_ONLY(, {Isa::avx2, "gemm_6x16__avx2"},
                                                          {Isa::avx512, "gemm_12x32__avx512"},
                                                          {Isa::avx512, "gemm_8x48__avx512"})},
    [](Isa isa) { return micro_kernel_f32(isa).name; }));
const KernelFamilyRegistrar kGemmF64(family(
    "gemm", "float64",
    {{Isa::scalar, "gemm_4x8__scalar"} FASTCONV_X86_ONLY(, {Isa::avx2, "gemm_6x8__avx2"},
                                                         {Isa::avx512, "gemm_12x16__avx512"})},
    [](Isa isa) { return micro_kernel_f64(isa).name; }));

}  // namespace
}  // namespace fastconv
