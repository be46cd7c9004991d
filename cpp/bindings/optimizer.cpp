// Bindings for the optimizer kernels (cpp/cpu/optimizer.hpp).
#include "binders.hpp"
#include "checks.hpp"

namespace trainart::bind {

void bind_optimizer(pybind11::module_& m) {}

}  // namespace trainart::bind
