// Bindings for the loss kernels (cpp/cpu/loss.hpp).
#include "binders.hpp"
#include "checks.hpp"

namespace trainart::bind {

void bind_loss(pybind11::module_& m) {}

}  // namespace trainart::bind
