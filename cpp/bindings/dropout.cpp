// Bindings for the dropout kernels (cpp/cpu/dropout.hpp).
#include <cmath>
#include <cstdint>

#include "binders.hpp"
#include "checks.hpp"
#include "cpu/dropout.hpp"

namespace trainart::bind {

namespace py = pybind11;

namespace {

// A Python integer (or anything with __index__, bools excluded) in [0, max], else an error
// naming the argument.
std::uint64_t unsigned_arg(const py::handle& v, const char* name, std::uint64_t max,
                           const char* range) {
  if (PyBool_Check(v.ptr()) || !PyIndex_Check(v.ptr()))
    throw py::type_error(std::string(name) + " must be an integer, got " +
                         std::string(py::str(py::type::handle_of(v).attr("__name__"))));
  py::int_ i = py::reinterpret_steal<py::int_>(PyNumber_Index(v.ptr()));
  if (!i) throw py::error_already_set();
  if (i < py::int_(0) || i > py::int_(max))
    throw py::value_error(std::string(name) + " must lie in " + range + ", got " +
                          std::string(py::str(i)));
  return PyLong_AsUnsignedLongLong(i.ptr());
}

struct DropoutArgs {
  double p;
  std::uint64_t seed;
  std::uint32_t layer, step;
};

DropoutArgs dropout_args(double p, const py::object& seed, const py::object& layer,
                         const py::object& step) {
  if (!(p >= 0.0 && p < 1.0)) throw py::value_error("p must lie in [0, 1), got " + std::to_string(p));
  return {p, unsigned_arg(seed, "seed", UINT64_MAX, "[0, 2**64)"),
          std::uint32_t(unsigned_arg(layer, "layer", UINT32_MAX, "[0, 2**32)")),
          std::uint32_t(unsigned_arg(step, "step", UINT32_MAX, "[0, 2**32)"))};
}

py::array dropout(py::array x, double p, py::object seed, py::object layer, py::object step,
                  double scale) {
  return dispatch_float(x, "x", [&](auto tag) -> py::array {
    using T = decltype(tag);
    check_array<T>(x, "x");
    check_nonempty(x, "x");
    check_finite<T>(x, "x");
    const DropoutArgs d = dropout_args(p, seed, layer, step);
    if (!(std::isfinite(scale) && scale >= 0.0))
      throw py::value_error("scale must be finite and >= 0, got " + std::to_string(scale));
    py::array_t<T> y(shape_of(x));
    const T* xp = static_cast<const T*>(x.data());
    T* yp = y.mutable_data();
    const index_t n = x.size();
    {
      py::gil_scoped_release release;
      cpu::dropout<T>(xp, yp, n, d.p, d.seed, d.layer, d.step, scale);
    }
    return y;
  });
}

py::array_t<bool> dropout_mask(std::int64_t rows, std::int64_t cols, double p, py::object seed,
                               py::object layer, py::object step) {
  if (rows < 1) throw py::value_error("rows must be >= 1, got " + std::to_string(rows));
  if (cols < 1) throw py::value_error("cols must be >= 1, got " + std::to_string(cols));
  if (rows > (std::int64_t(1) << 62) / cols)
    throw py::value_error("rows * cols is too large: " + std::to_string(rows) + " x " +
                          std::to_string(cols));
  const DropoutArgs d = dropout_args(p, seed, layer, step);
  py::array_t<bool> mask({rows, cols});
  bool* mp = mask.mutable_data();
  {
    py::gil_scoped_release release;
    cpu::dropout_mask(mp, rows * cols, d.p, d.seed, d.layer, d.step);
  }
  return mask;
}

py::array_t<std::uint32_t> philox(py::array counters, py::object k0, py::object k1) {
  if (!py::isinstance<py::array_t<std::uint32_t>>(counters) || counters.dtype().kind() != 'u' ||
      counters.itemsize() != 4)
    throw py::type_error("counters must be a uint32 array, got dtype " +
                         std::string(py::str(counters.dtype())));
  if (!(counters.flags() & py::array::c_style))
    throw py::value_error("counters must be C-contiguous");
  check_shape(counters, "counters", {-1, 4});
  check_nonempty(counters, "counters");
  const auto key0 = std::uint32_t(unsigned_arg(k0, "k0", UINT32_MAX, "[0, 2**32)"));
  const auto key1 = std::uint32_t(unsigned_arg(k1, "k1", UINT32_MAX, "[0, 2**32)"));
  const index_t n = counters.shape(0);
  py::array_t<std::uint32_t> out({n, index_t(4)});
  const auto* in = static_cast<const std::uint32_t*>(counters.data());
  std::uint32_t* op = out.mutable_data();
  {
    py::gil_scoped_release release;
    cpu::philox4x32_10(in, op, n, key0, key1);
  }
  return out;
}

}  // namespace

void bind_dropout(py::module_& m) {
  m.def("dropout", &dropout, py::arg("x"), py::arg("p"), py::arg("seed"), py::arg("layer"),
        py::arg("step"), py::arg("scale"),
        "Dropout: y = x * keep * scale, keep from Philox4x32-10 keyed by seed with counter "
        "(element >> 3, layer, step) (spec in math/philox.hpp); mask generated in the same pass, "
        "never stored. Backward is this same call on the gradient with the same seed, layer, "
        "step and scale. p in [0, 1), seed in [0, 2**64), layer and step in [0, 2**32).");
  m.def("dropout_mask", &dropout_mask, py::arg("rows"), py::arg("cols"), py::arg("p"),
        py::arg("seed"), py::arg("layer"), py::arg("step"),
        "The keep mask (bool, shape (rows, cols)) that dropout applies to a (rows, cols) array.");
  m.def(
      "_dropout_simd_level", [](int cap) { return cpu::dropout_simd_level(cap); },
      py::arg("cap") = -1,
      "Testing hook: the Philox code path of dropout masks (2 AVX-512, 1 AVX2, 0 portable); "
      "cap >= 0 lowers it to min(cap, what the CPU supports). Returns the level in use.");
  m.def("philox4x32_10", &philox, py::arg("counters"), py::arg("k0"), py::arg("k1"),
        "Bare Philox4x32-10 (for known-answer tests): counters uint32 (n, 4), key (k0, k1) in "
        "[0, 2**32). Returns the uint32 (n, 4) output words.");
}

}  // namespace trainart::bind
