// CPU feature detection and the run-time ISA choice.
// Detected once; FASTCONV_ISA (scalar|avx2|avx512) or set_active_isa() can only lower it,
// so tests can force every kernel path on a machine that has them all.
#pragma once
#include <string>
#include <vector>

namespace fastconv {

enum class Isa : int { scalar = 0, avx2 = 1, avx512 = 2 };

const char* isa_name(Isa isa);
Isa parse_isa(const std::string& name);  // throws std::invalid_argument
Isa detected_isa();                      // best ISA both compiled in and supported by this CPU
std::vector<Isa> available_isas();       // scalar .. detected_isa()
Isa active_isa();
void set_active_isa(Isa isa);            // throws std::invalid_argument if not available

}  // namespace fastconv
