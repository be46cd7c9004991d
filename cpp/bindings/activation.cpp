// Bindings for the activation kernels (cpp/cpu/activation.hpp).
#include "binders.hpp"
#include "checks.hpp"
#include "cpu/activation.hpp"

namespace trainart::bind {

namespace py = pybind11;

namespace {

math::Act act_kind(int kind) {
  if (kind < 0 || kind >= math::kNumActs)
    throw py::value_error("kind must be an activation code in [0, " + std::to_string(math::kNumActs) +
                          "), got " + std::to_string(kind));
  return static_cast<math::Act>(kind);
}

void check_param(double param) {
  if (!std::isfinite(param)) throw py::value_error("param must be finite, got " + std::to_string(param));
}

}  // namespace

void bind_activation(py::module_& m) {
  m.def(
      "activation_forward",
      [](py::array z, int kind, double param) -> py::array {
        const math::Act act = act_kind(kind);
        check_param(param);
        return dispatch_float(z, "z", [&](auto tag) -> py::array {
          using T = decltype(tag);
          const T* zp = in_ptr<T>(z, "z");
          check_nonempty(z, "z");
          py::array_t<T> a(shape_of(z));
          T* ap = a.mutable_data();
          const index_t n = z.size();
          {
            py::gil_scoped_release release;
            cpu::activation_forward<T>(act, zp, ap, n, T(param));
          }
          return std::move(a);
        });
      },
      py::arg("z"), py::arg("kind"), py::arg("param"),
      "a = f(z) elementwise for activation code `kind` (trainart.reference.ACTIVATION_CODES); "
      "`param` is leaky_relu's slope or elu's alpha, ignored otherwise. Returns a new array "
      "of z's shape and dtype.");
  m.def(
      "activation_backward",
      [](py::array grad_a, py::array z, py::array a, int kind, double param) -> py::array {
        const math::Act act = act_kind(kind);
        check_param(param);
        return dispatch_float(z, "z", [&](auto tag) -> py::array {
          using T = decltype(tag);
          const T* zp = in_ptr<T>(z, "z");
          check_nonempty(z, "z");
          const T* gp = in_ptr<T>(grad_a, "grad_a");
          const T* ap = in_ptr<T>(a, "a");
          const auto shape = shape_of(z);
          if (shape_of(grad_a) != shape)
            throw py::value_error("grad_a must have the shape of z " + shape_str(z) + ", got " + shape_str(grad_a));
          if (shape_of(a) != shape)
            throw py::value_error("a must have the shape of z " + shape_str(z) + ", got " + shape_str(a));
          py::array_t<T> gz(shape);
          T* gzp = gz.mutable_data();
          const index_t n = z.size();
          {
            py::gil_scoped_release release;
            cpu::activation_backward<T>(act, gp, zp, ap, gzp, n, T(param));
          }
          return std::move(gz);
        });
      },
      py::arg("grad_a"), py::arg("z"), py::arg("a"), py::arg("kind"), py::arg("param"),
      "grad_z = grad_a * f'(z) for activation code `kind`, with f' from z and a = f(z). "
      "Returns a new array of z's shape and dtype.");
}

}  // namespace trainart::bind
