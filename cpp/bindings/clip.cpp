// Bindings for the clip kernels (cpp/cpu/clip.hpp): lists of C-contiguous arrays of one float
// dtype; clip_by_value and scale_tensors work in place, the norms return Python floats.
#include <cmath>
#include <string>
#include <vector>

#include "binders.hpp"
#include "checks.hpp"
#include "cpu/clip.hpp"

namespace trainart::bind {

namespace {

// Every array of the list non-empty, C-contiguous and of the float dtype T.
template <class T>
void check_tensors(const std::vector<py::array>& arrays, bool writeable) {
  for (size_t i = 0; i < arrays.size(); ++i) {
    check_array<T>(arrays[i], ArgName("tensors", i), writeable);
    check_nonempty(arrays[i], ArgName("tensors", i));
  }
}

std::vector<py::array> tensor_list(const py::object& obj) {
  if (!py::isinstance<py::list>(obj) && !py::isinstance<py::tuple>(obj))
    throw py::type_error("tensors must be a list of arrays, got " +
                         std::string(py::str(py::type::of(obj).attr("__name__"))));
  auto arrays = array_list(obj.cast<py::sequence>(), "tensors");
  if (arrays.empty()) throw py::value_error("tensors must not be empty");
  return arrays;
}

template <class T>
std::vector<cpu::TensorView<T>> views(const std::vector<py::array>& arrays) {
  std::vector<cpu::TensorView<T>> out;
  for (const auto& a : arrays) {
    py::array w = a;
    out.push_back({static_cast<T*>(w.mutable_data()), static_cast<index_t>(a.size())});
  }
  return out;
}

template <class T>
std::vector<cpu::TensorView<const T>> const_views(const std::vector<py::array>& arrays) {
  std::vector<cpu::TensorView<const T>> out;
  for (const auto& a : arrays) out.push_back({static_cast<const T*>(a.data()), static_cast<index_t>(a.size())});
  return out;
}

double finite_real(double x, const char* name, double low) {
  if (!std::isfinite(x)) throw py::value_error(std::string(name) + " must be finite, got " + std::to_string(x));
  if (x < low) throw py::value_error(std::string(name) + " must be >= " + std::to_string(low) + ", got " + std::to_string(x));
  return x;
}

// Per-tensor sums of squares in double (fixed partition), the GIL released while summing.
std::vector<double> sums_of(const py::object& tensors) {
  const auto arrays = tensor_list(tensors);
  return dispatch_float(arrays[0], "tensors[0]", [&](auto tag) {
    using T = decltype(tag);
    check_tensors<T>(arrays, false);
    const auto v = const_views<T>(arrays);
    py::gil_scoped_release release;
    return cpu::sum_squares<T>(v);
  });
}

}  // namespace

void bind_clip(py::module_& m) {
  m.def(
      "clip_by_value",
      [](py::object tensors, double clip_value) {
        const auto arrays = tensor_list(tensors);
        finite_real(clip_value, "clip_value", 0.0);
        dispatch_float(arrays[0], "tensors[0]", [&](auto tag) {
          using T = decltype(tag);
          check_tensors<T>(arrays, true);
          const auto v = views<T>(arrays);
          py::gil_scoped_release release;
          cpu::clip_by_value<T>(v, T(clip_value));
        });
      },
      py::arg("tensors"), py::arg("clip_value"),
      "Clamp every element of every tensor to [-clip_value, clip_value] in place (NaN stays NaN).");
  m.def(
      "global_norm",
      [](py::object tensors) {
        double total = 0.0;
        for (double s : sums_of(tensors)) total += s;
        return std::sqrt(total);
      },
      py::arg("tensors"),
      "sqrt(sum of squares over every tensor), accumulated in double over a fixed partition "
      "(chunks of each tensor in order, tensors in order): bitwise identical at any thread count. "
      "NaN or inf in the tensors gives a NaN or inf norm.");
  m.def(
      "tensor_norms",
      [](py::object tensors) {
        py::list norms;
        for (double s : sums_of(tensors)) norms.append(std::sqrt(s));
        return norms;
      },
      py::arg("tensors"), "The L2 norm of each tensor (a list of floats), summed as global_norm sums.");
  m.def(
      "scale_tensors",
      [](py::object tensors, double scale) {
        const auto arrays = tensor_list(tensors);
        if (!std::isfinite(scale)) throw py::value_error("scale must be finite, got " + std::to_string(scale));
        dispatch_float(arrays[0], "tensors[0]", [&](auto tag) {
          using T = decltype(tag);
          check_tensors<T>(arrays, true);
          const auto v = views<T>(arrays);
          py::gil_scoped_release release;
          cpu::scale_tensors<T>(v, T(scale));
        });
      },
      py::arg("tensors"), py::arg("scale"), "Multiply every element of every tensor by scale in place.");
}

}  // namespace trainart::bind
