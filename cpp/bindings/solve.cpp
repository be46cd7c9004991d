// Bindings for the batched Cholesky solve (cpp/cpu/solve.hpp): checks, then the GIL-free kernel.
#include <cmath>
#include <cstdint>
#include <string>

#include "binders.hpp"
#include "checks.hpp"
#include "cpu/finite.hpp"
#include "cpu/solve.hpp"

namespace trainart::bind {

void bind_solve(py::module_& m) {
  m.def(
      "cholesky_solve",
      [](py::array a, py::array b, double damping) {
        return dispatch_float(a, "a", [&](auto tag) -> py::tuple {
          using T = decltype(tag);
          check_array<T>(a, "a");
          check_same_dtype(a, "a", b, "b");
          check_array<T>(b, "b");
          check_shape(a, "a", {-1, -1, -1});
          const py::ssize_t batch = a.shape(0), n = a.shape(1);
          if (a.shape(2) != n) throw py::value_error("a must hold square systems (batch, n, n), got " + shape_str(a));
          check_nonempty(a, "a");
          check_shape(b, "b", {batch, n, -1});
          check_nonempty(b, "b");
          if (!std::isfinite(damping) || damping < 0.0)
            throw py::value_error("damping must be finite and >= 0, got " + std::to_string(damping));
          const py::ssize_t k = b.shape(2);
          py::array_t<T> x({batch, n, k});
          py::array_t<std::int32_t> status(batch);
          {
            py::gil_scoped_release release;
            cpu::cholesky_solve<T>(static_cast<const T*>(a.data()), static_cast<const T*>(b.data()),
                                   batch, n, k, damping, x.mutable_data(), status.mutable_data());
          }
          // The kernel tests finiteness as it reads each system (one pass over a); nothing was
          // written in place, so raising now is as if the check had come first.
          const std::int32_t* st = status.data();
          for (py::ssize_t s = 0; s < batch; ++s) {
            if (st[s] >= 0) continue;
            // Name the argument: look again at this one system's lower triangle (what is read).
            const bool a_bad = !cpu::lower_triangle_finite(static_cast<const T*>(a.data()) + s * n * n, n);
            throw py::value_error(std::string(a_bad ? "a contains NaN or inf in its lower triangle"
                                                    : "b contains NaN or inf") +
                                  " (system " + std::to_string(s) + ")");
          }
          return py::make_tuple(x, status);
        });
      },
      py::arg("a"), py::arg("b"), py::arg("damping"),
      "Batched Cholesky solve: x[s] = (a[s] + damping I)^-1 b[s] for a (batch, n, n) (lower "
      "triangle read), b (batch, n, k). Returns (x, status int32 (batch,)): status 0 = solved, "
      "j > 0 = leading minor of order j not positive definite (x[s] = 0 then).");
}

}  // namespace trainart::bind
