// The output-epilogue arguments the conv bindings take (elementwise/epilogue.h): act (0 none,
// 1 relu, 2 clamp(lo, hi), 3 silu), lo, hi, residual (the output's shape, or None) and
// residual_after_act, as keyword arguments after each binding's own.
#pragma once
#include <cstdint>
#include <vector>

#include "common/binding_util.h"
#include "elementwise/epilogue.h"

namespace fastconv {

// Hidden, as pybind11's own types are: it holds a py::object.
struct __attribute__((visibility("hidden"))) EpilogueSpec {
  int act = kActNone;
  double lo = 0.0, hi = 0.0;
  py::object residual = py::none();
  bool residual_after_act = false;
  bool active() const { return act != kActNone || !residual.is_none(); }
};

// The OutputEpilogue for output y (of `shape`), or null when spec asks for nothing; the residual
// is checked against y's shape and dtype and kept alive in `keep`.
template <typename T>
const OutputEpilogue<T>* output_epilogue(const EpilogueSpec& spec, const py::array& y, const std::vector<int64_t>& shape,
                                         OutputEpilogue<T>& e, py::array& keep) {
  if (spec.act < kActNone || spec.act > kActSilu)
    throw py::value_error("act must be 0 (none), 1 (relu), 2 (clamp) or 3 (silu)");
  if (!spec.active()) return nullptr;
  e.act = spec.act;
  e.lo = static_cast<T>(spec.lo);
  e.hi = static_cast<T>(spec.hi);
  e.residual_after_act = spec.residual_after_act;
  e.y = cptr<T>(y);
  if (!spec.residual.is_none()) {
    keep = spec.residual.cast<py::array>();
    check_array<T>(keep, "residual", shape);
    e.residual = cptr<T>(keep);
  }
  return &e;
}

}  // namespace fastconv

// The keyword arguments of an EpilogueSpec, after a binding's own py::arg list.
#define FASTCONV_EPILOGUE_PY_ARGS                                                                   \
  py::arg("act") = 0, py::arg("lo") = 0.0, py::arg("hi") = 0.0, py::arg("residual") = py::none(), \
  py::arg("residual_after_act") = false
