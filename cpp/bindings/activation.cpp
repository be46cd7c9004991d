// Bindings for the activation kernels (cpp/cpu/activation.hpp).
#include "binders.hpp"
#include "checks.hpp"

namespace trainart::bind {

void bind_activation(pybind11::module_& m) {}

}  // namespace trainart::bind
