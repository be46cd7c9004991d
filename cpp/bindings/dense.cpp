// Bindings for the dense kernels (cpp/cpu/dense.hpp).
#include "binders.hpp"
#include "checks.hpp"

namespace trainart::bind {

void bind_dense(pybind11::module_& m) {}

}  // namespace trainart::bind
