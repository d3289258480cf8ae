#include "common/cpu.h"

#include <atomic>
#include <cstdlib>
#include <stdexcept>

namespace fastconv {

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::avx512: return "avx512";
    case Isa::avx2: return "avx2";
    default: return "scalar";
  }
}

Isa parse_isa(const std::string& name) {
  if (name == "scalar") return Isa::scalar;
  if (name == "avx2") return Isa::avx2;
  if (name == "avx512") return Isa::avx512;
  throw std::invalid_argument("isa must be one of 'scalar', 'avx2', 'avx512', got '" + name + "'");
}

Isa detected_isa() {
#if defined(FASTCONV_X86) && (defined(__GNUC__) || defined(__clang__))
  static const Isa isa = [] {
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
        __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
        __builtin_cpu_supports("fma"))
      return Isa::avx512;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return Isa::avx2;
    return Isa::scalar;
  }();
  return isa;
#else
  return Isa::scalar;
#endif
}

std::vector<Isa> available_isas() {
  std::vector<Isa> out;
  for (int i = 0; i <= static_cast<int>(detected_isa()); ++i) out.push_back(static_cast<Isa>(i));
  return out;
}

namespace {
Isa initial_isa() {
  Isa isa = detected_isa();
  if (const char* env = std::getenv("FASTCONV_ISA")) {
    if (*env) {
      Isa wanted;
      try {
        wanted = parse_isa(env);
      } catch (const std::invalid_argument&) {
        return isa;  // an unknown name is reported by the Python layer; keep the best ISA
      }
      if (static_cast<int>(wanted) < static_cast<int>(isa)) isa = wanted;
    }
  }
  return isa;
}
std::atomic<int>& active_slot() {
  static std::atomic<int> slot{static_cast<int>(initial_isa())};
  return slot;
}
}  // namespace

Isa active_isa() { return static_cast<Isa>(active_slot().load(std::memory_order_relaxed)); }

void set_active_isa(Isa isa) {
  if (static_cast<int>(isa) > static_cast<int>(detected_isa()))
    throw std::invalid_argument(std::string("isa '") + isa_name(isa) +
                                "' is not available on this CPU/build (best: '" +
                                isa_name(detected_isa()) + "')");
  active_slot().store(static_cast<int>(isa), std::memory_order_relaxed);
}

}  // namespace fastconv
