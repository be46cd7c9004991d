// Binding for the finiteness scan (cpu::all_finite) that trainart._validate uses to check every
// float array a public entry receives: one pass of bit tests, no temporaries.
#include "binders.hpp"
#include "checks.hpp"
#include "cpu/finite.hpp"

namespace trainart::bind {

void bind_finite(py::module_& m) {
  m.def(
      "all_finite",
      [](const py::array& a) {
        return dispatch_float(a, "a", [&](auto tag) {
          using T = decltype(tag);
          check_array<T>(a, "a");
          const T* p = static_cast<const T*>(a.data());
          const index_t n = a.size();
          py::gil_scoped_release release;
          return cpu::all_finite(p, n);
        });
      },
      py::arg("a"),
      "Whether the C-contiguous float32/float64 array `a` (any shape, empty allowed) holds no NaN or inf.");
}

}  // namespace trainart::bind
