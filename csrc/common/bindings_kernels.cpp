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
// With an epilogue (bias: MR values; residual: c's shape; act: epilogue.h's code, no SiLU), the
// tile's epilogue variant runs it on the values before the store.
struct TileEpilogueArgs {
  py::object bias, residual;
  int act;
  double lo, hi;
  bool residual_after_act;
  bool given() const { return !bias.is_none() || !residual.is_none() || act != kActNone; }
};

template <typename T>
void run_tile(const std::string& name, const py::array& a, const py::array& b, py::array& c, bool accumulate,
              const py::object& offsets, const TileEpilogueArgs& ea) {
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
    if (ea.given()) {
      if (ea.act != kActNone && ea.act != kActRelu && ea.act != kActClamp)
        throw py::value_error("act must be 0 (none), 1 (relu) or 2 (clamp) for a tile epilogue");
      TileEpilogue<T> e;
      auto array_arg = [](const py::object& o, const char* name) {
        if (!py::isinstance<py::array>(o)) throw py::type_error(std::string(name) + " must be a numpy array");
        return py::reinterpret_borrow<py::array>(o);  // the caller's array itself: its data outlives the call
      };
      if (!ea.bias.is_none()) {
        const py::array bias = array_arg(ea.bias, "bias");
        check_array<T>(bias, "bias", {uk.mr});
        e.bias = cptr<T>(bias);
      }
      if (!ea.residual.is_none()) {
        const py::array residual = array_arg(ea.residual, "residual");
        check_array<T>(residual, "residual", {uk.mr, ldc});
        e.residual = cptr<T>(residual);
      }
      e.act = ea.act;
      e.lo = T(ea.lo);
      e.hi = T(ea.hi);
      e.residual_after_act = ea.residual_after_act;
      py::gil_scoped_release release;
      uk.fn_epilogue(kc, cptr<T>(a), panel.get(), mptr<T>(c), ldc, accumulate, e);
      return;
    }
    py::gil_scoped_release release;
    uk.fn(kc, cptr<T>(a), panel.get(), mptr<T>(c), ldc, accumulate);
    return;
  }
  if (ea.given()) throw py::value_error("a tile epilogue runs on packed B panels only (no offsets)");
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
                        bool accumulate, const py::object& offsets, const py::object& bias, int act, double lo,
                        double hi, const py::object& residual, bool residual_after_act) {
    const TileEpilogueArgs ea{bias, residual, act, lo, hi, residual_after_act};
    by_dtype<float, double>(a, "a", [&](auto tag) { run_tile<decltype(tag)>(name, a, b, c, accumulate, offsets, ea); });
  }, py::arg("name"), py::arg("a"), py::arg("b"), py::arg("c"), py::arg("accumulate"), py::arg("offsets") = py::none(),
     py::arg("bias") = py::none(), py::arg("act") = 0, py::arg("lo") = 0.0, py::arg("hi") = 0.0,
     py::arg("residual") = py::none(), py::arg("residual_after_act") = false,
     "Run one full tile of the named GEMM micro-kernel (tests and bench/bench_kernels.py); with bias, "
     "act (0 none, 1 relu, 2 clamp to [lo, hi]) or residual, its epilogue variant.");
}
FASTCONV_REGISTER_BINDINGS(bind_kernel_list);

}  // namespace
}  // namespace fastconv
