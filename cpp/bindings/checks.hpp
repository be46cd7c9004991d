// Argument checks every binding runs before it touches a pointer: dtype, shape, contiguity,
// writability, finiteness. Failures raise ValueError/TypeError naming the argument.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <initializer_list>
#include <sstream>
#include <string>
#include <vector>

#include "cpu/finite.hpp"
#include "trainart/blas.hpp"
#include "trainart/common.hpp"

namespace trainart::bind {

namespace py = pybind11;

template <class T>
constexpr const char* dtype_name() {
  return sizeof(T) == 4 ? "float32" : "float64";
}

inline std::string shape_str(const py::array& a) {
  std::ostringstream s;
  s << "(";
  for (py::ssize_t i = 0; i < a.ndim(); ++i) s << (i ? ", " : "") << a.shape(i);
  s << (a.ndim() == 1 ? ",)" : ")");
  return s.str();
}

// -1 in `shape` means any extent.
inline void check_shape(const py::array& a, const char* name, std::initializer_list<py::ssize_t> shape) {
  bool ok = a.ndim() == static_cast<py::ssize_t>(shape.size());
  py::ssize_t i = 0;
  for (auto want : shape) {
    if (!ok) break;
    ok = want < 0 || a.shape(i) == want;
    ++i;
  }
  if (!ok) {
    std::ostringstream s;
    s << name << " must have shape (";
    i = 0;
    for (auto want : shape) s << (i++ ? ", " : "") << (want < 0 ? std::string("*") : std::to_string(want));
    s << (shape.size() == 1 ? ",)" : ")") << ", got " << shape_str(a);
    throw py::value_error(s.str());
  }
}

// The name an error message gives an argument: "x", or "params[3]" for an item of a list. The
// string is only built when a check fails, so checking many list items allocates nothing.
struct ArgName {
  const char* base;
  py::ssize_t index = -1;
  ArgName(const char* name) : base(name) {}  // NOLINT: implicit, every check takes a plain name too
  ArgName(const char* name, size_t i) : base(name), index(static_cast<py::ssize_t>(i)) {}
  std::string str() const { return index < 0 ? std::string(base) : std::string(base) + "[" + std::to_string(index) + "]"; }
};

// Two C-contiguous arrays that share no byte: an output that overlaps an input would have the
// kernel read what it already wrote.
inline void check_not_overlapping(const py::array& out, const char* out_name, const py::array& in,
                                  const char* in_name) {
  const auto lo = [](const py::array& a) { return reinterpret_cast<std::uintptr_t>(a.data()); };
  const auto hi = [&](const py::array& a) { return lo(a) + static_cast<std::uintptr_t>(a.nbytes()); };
  if (out.nbytes() > 0 && in.nbytes() > 0 && lo(out) < hi(in) && lo(in) < hi(out))
    throw py::value_error(std::string(out_name) + " shares memory with " + in_name + ": pass a separate array");
}

// A C-contiguous array of dtype T; a wrong dtype is a TypeError, anything else ValueError.
template <class T>
void check_array(const py::array& a, const ArgName& name, bool writeable = false) {
  if (!py::isinstance<py::array_t<T>>(a) || a.dtype().kind() != 'f' || a.itemsize() != sizeof(T))
    throw py::type_error(name.str() + " must be a " + dtype_name<T>() + " array, got dtype " +
                         std::string(py::str(a.dtype())));
  if (!(a.flags() & py::array::c_style))
    throw py::value_error(name.str() + " must be C-contiguous");
  if (writeable && !a.writeable()) throw py::value_error(name.str() + " must be writeable");
}

template <class T>
const T* in_ptr(const py::array& a, const char* name) {
  check_array<T>(a, name);
  return static_cast<const T*>(a.data());
}

template <class T>
T* out_ptr(py::array& a, const char* name) {
  check_array<T>(a, name, true);
  return static_cast<T*>(a.mutable_data());
}

// No NaN or inf in `a` (C-contiguous, of dtype T: check_array first): one vectorized scan.
template <class T>
void check_finite(const py::array& a, const char* name) {
  if (!cpu::all_finite(static_cast<const T*>(a.data()), a.size()))
    throw py::value_error(std::string(name) + " contains NaN or inf");
}

// Every dimension of `a`, an operand of a GEMM, within the 32-bit BLAS's int (blas.hpp).
inline void check_blas_dims(const py::array& a, const char* name) {
  for (py::ssize_t i = 0; i < a.ndim(); ++i)
    if (a.shape(i) > kBlasMaxDim)
      throw py::value_error(std::string(name) + " has shape " + shape_str(a) + ": the 32-bit BLAS takes at most " +
                            std::to_string(kBlasMaxDim) + " rows or columns");
}

inline void check_nonempty(const py::array& a, const ArgName& name) {
  if (a.size() == 0) throw py::value_error(name.str() + " must not be empty");
}

inline void check_same_dtype(const py::array& a, const char* a_name, const py::array& b, const char* b_name) {
  // Equal, not the same object: an unpickled or byte-swapped-back array has its own dtype
  // object (check_array then holds each to the native float type).
  const py::dtype da = a.dtype(), db = b.dtype();
  if (da.kind() != db.kind() || da.itemsize() != db.itemsize())
    throw py::type_error(std::string(b_name) + " must have the dtype of " + a_name + " (" +
                         std::string(py::str(a.dtype())) + "), got " + std::string(py::str(b.dtype())));
}

// Calls fn(T{}) with T = float or double by the dtype of `a`; other dtypes are a TypeError.
template <class Fn>
auto dispatch_float(const py::array& a, const char* name, Fn&& fn) {
  if (a.dtype().kind() == 'f' && a.itemsize() == 4) return fn(float{});
  if (a.dtype().kind() == 'f' && a.itemsize() == 8) return fn(double{});
  throw py::type_error(std::string(name) + " must be float32 or float64, got dtype " +
                       std::string(py::str(a.dtype())));
}

inline std::vector<py::ssize_t> shape_of(const py::array& a) {
  return std::vector<py::ssize_t>(a.shape(), a.shape() + a.ndim());
}

inline bool same_shape(const py::array& a, const py::array& b) {
  return a.ndim() == b.ndim() && std::equal(a.shape(), a.shape() + a.ndim(), b.shape());
}

// A list argument of arrays (multi-tensor ops): a py::list or tuple of numpy arrays.
inline std::vector<py::array> array_list(const py::sequence& seq, const char* name) {
  std::vector<py::array> out;
  out.reserve(seq.size());
  for (size_t i = 0; i < seq.size(); ++i) {
    py::object item = seq[i];
    if (!py::isinstance<py::array>(item))
      throw py::type_error(std::string(name) + "[" + std::to_string(i) + "] must be a numpy array");
    out.push_back(item.cast<py::array>());
  }
  return out;
}

}  // namespace trainart::bind
