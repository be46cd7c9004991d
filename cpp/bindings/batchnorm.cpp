// Bindings for the batchnorm kernels (cpp/cpu/batchnorm.hpp).
#include "binders.hpp"
#include "checks.hpp"

namespace trainart::bind {

void bind_batchnorm(pybind11::module_& m) {}

}  // namespace trainart::bind
