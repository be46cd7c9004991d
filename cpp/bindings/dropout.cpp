// Bindings for the dropout kernels (cpp/cpu/dropout.hpp).
#include "binders.hpp"
#include "checks.hpp"

namespace trainart::bind {

void bind_dropout(pybind11::module_& m) {}

}  // namespace trainart::bind
