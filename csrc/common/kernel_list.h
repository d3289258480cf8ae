// The kernel list (XNNPACK style): every ISA-specific kernel of every operator, named
// <op>_<tile>[_<dtype>]__<isa>, with the ISA it needs and the dtype it computes. The same
// tables feed dispatch (KernelTable::active), the tests (tests/test_kernel_variants.py runs
// every entry against the numpy reference) and bench/bench_kernels.py, so a new kernel is
// tested because it is listed, and listed because dispatch can only pick listed kernels.
#pragma once
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "common/cpu.h"

namespace fastconv {

struct KernelEntry {
  const char* op;     // the operator family it serves: "gemm", "max_pool2d", "color_adjust", ...
  const char* name;   // unique: <op>_<tile>[_<dtype>]__<isa>
  Isa isa;            // the ISA it needs
  const char* dtype;  // the element type it computes: "float32", "float64" or "uint8"
};

// One operator family for one dtype: its kernels and the one dispatch runs under a given ISA.
struct KernelFamily {
  std::vector<KernelEntry> entries;
  std::function<const char*(Isa)> chosen;
};

// Every family of the module, registered by static objects in the kernel files.
std::vector<KernelFamily>& kernel_families();
struct KernelFamilyRegistrar {
  explicit KernelFamilyRegistrar(KernelFamily family) { kernel_families().push_back(std::move(family)); }
};

template <typename K>
struct KernelVariant {
  Isa isa;
  const char* name;
  K kernels;  // a function pointer, or a struct of the function pointers one call needs
};

// An operator's per-ISA variants (lowest ISA first, the scalar one always present). Lives as a
// static object in the kernel's file; constructing it lists its variants.
template <typename K>
class KernelTable {
 public:
  KernelTable(const char* op, const char* dtype, std::vector<KernelVariant<K>> variants)
      : variants_(std::move(variants)) {
    KernelFamily family;
    for (const auto& v : variants_) family.entries.push_back({op, v.name, v.isa, dtype});
    family.chosen = [this](Isa isa) { return pick(isa).name; };
    kernel_families().push_back(std::move(family));
  }
  KernelTable(const KernelTable&) = delete;
  KernelTable& operator=(const KernelTable&) = delete;

  // The best variant the given ISA allows: the first one listed at the highest ISA level it
  // allows (a level may list alternatives after its default, as the GEMM tiles do).
  const KernelVariant<K>& pick(Isa isa) const {
    const KernelVariant<K>* best = &variants_.front();
    for (const auto& v : variants_)
      if (static_cast<int>(v.isa) <= static_cast<int>(isa) && static_cast<int>(v.isa) > static_cast<int>(best->isa))
        best = &v;
    return *best;
  }
  // Every variant listed at that level, the default first: dispatch that chooses by shape
  // (micro_kernel_f32_for_rows) picks among these.
  std::vector<const KernelVariant<K>*> candidates(Isa isa) const {
    const Isa level = pick(isa).isa;
    std::vector<const KernelVariant<K>*> out;
    for (const auto& v : variants_)
      if (v.isa == level) out.push_back(&v);
    return out;
  }
  // The variant of that name whose ISA the given one allows, or nullptr.
  const KernelVariant<K>* find(const std::string& name, Isa isa) const {
    for (const auto& v : variants_)
      if (name == v.name && static_cast<int>(v.isa) <= static_cast<int>(isa)) return &v;
    return nullptr;
  }
  // The kernels for the ISA chosen by fastconv.use_isa() / FASTCONV_ISA (or the CPU's best).
  const K& active() const { return pick(active_isa()).kernels; }

 private:
  std::vector<KernelVariant<K>> variants_;
};

}  // namespace fastconv
