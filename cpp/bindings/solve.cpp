// Bindings for the solve kernels (cpp/cpu/solve.hpp).
#include "binders.hpp"
#include "checks.hpp"

namespace trainart::bind {

void bind_solve(pybind11::module_& m) {}

}  // namespace trainart::bind
