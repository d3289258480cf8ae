// The module fastconv._C: runtime/ISA/thread controls here; every operator family adds its
// own functions from its folder (conv/bindings_conv.cpp, pool/bindings_pool.cpp, ...).
#include <pybind11/stl.h>

#include "common/binding_util.h"
#include "common/cpu.h"
#include "common/gemm.h"
#include "common/parallel.h"

namespace fastconv {

std::vector<BindingFn>& binding_registry() {
  static std::vector<BindingFn> fns;
  return fns;
}

}  // namespace fastconv

PYBIND11_MODULE(_C, m) {
  namespace fc = fastconv;
  m.doc() = "fastconv compiled kernels (C++ SIMD + fastconv's own thread pool)";
  m.def("detected_isa", [] { return std::string(fc::isa_name(fc::detected_isa())); },
        "Best ISA compiled in and supported by this CPU.");
  m.def("available_isas", [] {
    std::vector<std::string> out;
    for (fc::Isa i : fc::available_isas()) out.emplace_back(fc::isa_name(i));
    return out;
  });
  m.def("active_isa", [] { return std::string(fc::isa_name(fc::active_isa())); });
  m.def("set_active_isa", [](const std::string& name) {
    try {
      fc::set_active_isa(fc::parse_isa(name));
    } catch (const std::invalid_argument& e) {
      throw pybind11::value_error(e.what());
    }
  });
  m.def("gemm_kernel_name", [](const std::string& dtype) {
    return std::string(dtype == "float64" ? fc::micro_kernel_f64(fc::active_isa()).name
                                          : fc::micro_kernel_f32(fc::active_isa()).name);
  });
  m.def("get_num_threads", [] { return fc::max_threads(); });
  m.def("set_num_threads", [](int n) {
    if (n < 1) throw pybind11::value_error("num_threads must be >= 1, got " + std::to_string(n));
    fc::set_threads(n);
  });
  m.def("thread_pool_info", [] {
    pybind11::dict d;
    d["workers_started"] = fc::pool_workers_started();
    d["spin_us"] = fc::pool_spin_us();
    d["runs_on"] = fc::pool_on_host_openmp() ? "host OpenMP team (libgomp, loaded by another library)" : "own pool";
    return d;
  });
  for (fc::BindingFn fn : fc::binding_registry()) fn(m);
}
