// fastconv._C.kernel_list() and friends: the kernel list for tests and benchmarks, the name
// dispatch picks, and a way to run one named GEMM micro-kernel tile on given panels.
#include <pybind11/stl.h>

#include <cstdlib>
#include <memory>
#include <string>

#include "common/binding_util.h"
#include "common/gemm.h"
#include "common/kernel_list.h"

namespace fastconv {

namespace {

Isa isa_arg(const std::string& name) {
  try {
    return parse_isa(name);
  } catch (const std::invalid_argument& e) {
    throw py::value_error(e.what());
  }
}

// A micro-kernel this CPU can run, looked up by name in its dtype's table.
template <typename T>
MicroKernel<T> runnable_micro_kernel(const std::string& name) {
  if (const auto* v = gemm_kernels<T>().find(name, detected_isa())) return v->kernels;
  throw py::value_error("no " + std::string(std::is_same_v<T, float> ? "float32" : "float64") +
                        " GEMM micro-kernel named '" + name + "' runs on this CPU/build (best ISA: " +
                        isa_name(detected_isa()) + ")");
}

struct AlignedFree {
  void operator()(void* p) const { std::free(p); }
};

// C[MR x NR] (+)= Apanel^T Bpanel: a is (kc, MR) packed, b is (kc, NR) packed (copied to a
// 64-byte aligned panel, as the packing code provides) or, with offsets, any array whose row
// k starts at flat element offsets[k] (read in place, as shifted-row convolution does).
template <typename T>
void run_tile(const std::string& name, const py::array& a, const py::array& b, py::array& c, bool accumulate,
              const py::object& offsets) {
  const MicroKernel<T> uk = runnable_micro_kernel<T>(name);
  const int64_t kc = a.ndim() == 2 ? a.shape(0) : -1;
  check_array<T>(a, "a", {kc, uk.mr});
  if (c.ndim() != 2 || c.shape(0) != uk.mr || c.shape(1) < uk.nr)
    throw py::value_error("c must be (" + std::to_string(uk.mr) + ", >= " + std::to_string(uk.nr) + ")");
  check_array<T>(c, "c", {uk.mr, c.shape(1)}, true);
  const int64_t ldc = c.shape(1);
  if (offsets.is_none()) {
    check_array<T>(b, "b", {kc, uk.nr});
    std::unique_ptr<T, AlignedFree> panel(
        static_cast<T*>(std::aligned_alloc(64, round_up(sizeof(T) * kc * uk.nr + 1, 64))));
    if (!panel) throw std::bad_alloc();
    std::copy(cptr<T>(b), cptr<T>(b) + kc * uk.nr, panel.get());
    py::gil_scoped_release release;
    uk.fn(kc, cptr<T>(a), panel.get(), mptr<T>(c), ldc, accumulate);
    return;
  }
  const py::array_t<int64_t, py::array::c_style | py::array::forcecast> off(offsets);
  check_array<int64_t>(off, "offsets", {kc});
  check_array<T>(b, "b", {b.size()});
  for (int64_t k = 0; k < kc; ++k)
    if (off.at(k) < 0 || off.at(k) + uk.nr > b.size())
      throw py::value_error("offsets[" + std::to_string(k) + "] + " + std::to_string(uk.nr) + " exceeds b");
  py::gil_scoped_release release;
  uk.fn_offsets(kc, cptr<T>(a), cptr<T>(b), off.data(), mptr<T>(c), ldc, accumulate);
}

void bind_kernel_list(py::module_& m) {
  m.def("kernel_list", [] {
    py::list out;
    for (const KernelFamily& f : kernel_families())
      for (const KernelEntry& e : f.entries)
        out.append(py::dict(py::arg("op") = e.op, py::arg("name") = e.name, py::arg("isa") = isa_name(e.isa),
                            py::arg("dtype") = e.dtype));
    return out;
  }, "Every listed kernel: dicts of op, name (<op>_<tile>__<isa>), isa (the ISA it needs) and dtype.");
  m.def("kernel_chosen", [](const std::string& op, const std::string& dtype, const std::string& isa) {
    const Isa i = isa_arg(isa);
    for (const KernelFamily& f : kernel_families())
      if (op == f.entries.front().op && dtype == f.entries.front().dtype) return std::string(f.chosen(i));
    throw py::value_error("no kernel family for op '" + op + "' and dtype '" + dtype + "'");
  }, py::arg("op"), py::arg("dtype"), py::arg("isa"), "The kernel dispatch runs for (op, dtype) under that ISA.");
  m.def("gemm_kernel_for_rows", [](const std::string& isa, int64_t rows) {
    return std::string(micro_kernel_f32_for_rows(isa_arg(isa), rows).name);
  }, py::arg("isa"), py::arg("rows"), "The float32 GEMM tile chosen for a GEMM with that many rows.");
  m.def("gemm_tile", [](const std::string& name, const py::array& a, const py::array& b, py::array c,
                        bool accumulate, const py::object& offsets) {
    by_dtype<float, double>(a, "a", [&](auto tag) { run_tile<decltype(tag)>(name, a, b, c, accumulate, offsets); });
  }, py::arg("name"), py::arg("a"), py::arg("b"), py::arg("c"), py::arg("accumulate"), py::arg("offsets") = py::none(),
     "Run one full tile of the named GEMM micro-kernel (tests and bench/bench_kernels.py).");
}
FASTCONV_REGISTER_BINDINGS(bind_kernel_list);

}  // namespace
}  // namespace fastconv
