// Shared pieces of the pybind11 layer. Only binding files include this (kernels never see
// Python objects). Each binding file registers itself with FASTCONV_REGISTER_BINDINGS, so a
// new operator family is exposed by adding its folder - bindings.cpp need not change.
#pragma once
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <string>
#include <vector>

namespace fastconv {
namespace py = pybind11;

using BindingFn = void (*)(py::module_&);
std::vector<BindingFn>& binding_registry();

struct BindingRegistrar {
  explicit BindingRegistrar(BindingFn fn) { binding_registry().push_back(fn); }
};
#define FASTCONV_REGISTER_BINDINGS(fn) static ::fastconv::BindingRegistrar fn##_registrar(&fn)

// The one dtype dispatch of the bindings: f(T{}) with T the element type of array `a` among
// Ts (e.g. by_dtype<float, double>(x, "input", run)), returning what f returns; a TypeError
// naming the argument and the dtypes it may have otherwise.
template <typename T, typename... Rest>
std::string dtype_names() {
  std::string name = py::str(py::dtype::of<T>());
  if constexpr (sizeof...(Rest) > 0) return name + " or " + dtype_names<Rest...>();
  else return name;
}

// `allowed()` builds the message's list of dtypes only when it is needed: py::str of a dtype
// calls numpy's Python-level dtype.__str__, and doing that for every call was ~200 Python
// calls per MobileNetV2 forward.
template <typename T, typename... Rest, typename F, typename Names>
decltype(auto) by_dtype_among(const py::array& a, const char* name, const Names& allowed, F&& f) {
  if (a.dtype().is(py::dtype::of<T>())) return f(T{});
  if constexpr (sizeof...(Rest) > 0) {
    return by_dtype_among<Rest...>(a, name, allowed, std::forward<F>(f));
  } else {
    throw py::type_error(std::string(name) + " must be " + allowed() + ", got " + std::string(py::str(a.dtype())));
  }
}

template <typename... Ts, typename F>
decltype(auto) by_dtype(const py::array& a, const char* name, F&& f) {
  return by_dtype_among<Ts...>(a, name, [] { return dtype_names<Ts...>(); }, std::forward<F>(f));
}

// Checks that `a` is C-contiguous with exactly `shape` and the element type T (the Python
// layer guarantees this; the check keeps a wrong call from reading out of bounds).
template <typename T>
void check_array(const py::array& a, const char* name, const std::vector<int64_t>& shape,
                 bool writable = false) {
  if (!a.dtype().is(py::dtype::of<T>()))
    throw py::type_error(std::string(name) + " has dtype " + std::string(py::str(a.dtype())) +
                         ", expected " + std::string(py::str(py::dtype::of<T>())));
  if (!(a.flags() & py::array::c_style))
    throw py::value_error(std::string(name) + " must be C-contiguous");
  if (writable && !a.writeable()) throw py::value_error(std::string(name) + " must be writable");
  bool same = a.ndim() == static_cast<py::ssize_t>(shape.size());
  for (size_t i = 0; same && i < shape.size(); ++i) same = a.shape(i) == shape[i];
  if (!same) {
    std::string want = "(", got = "(";
    for (size_t i = 0; i < shape.size(); ++i) want += std::to_string(shape[i]) + (i + 1 < shape.size() ? ", " : "");
    for (py::ssize_t i = 0; i < a.ndim(); ++i) got += std::to_string(a.shape(i)) + (i + 1 < a.ndim() ? ", " : "");
    throw py::value_error(std::string(name) + " must have shape " + want + "), got " + got + ")");
  }
}

template <typename T>
const T* cptr(const py::array& a) { return static_cast<const T*>(a.data()); }
template <typename T>
T* mptr(py::array& a) { return static_cast<T*>(a.mutable_data()); }

}  // namespace fastconv
