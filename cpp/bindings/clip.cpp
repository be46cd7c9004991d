// Bindings for the clip kernels (cpp/cpu/clip.hpp).
#include "binders.hpp"
#include "checks.hpp"

namespace trainart::bind {

void bind_clip(pybind11::module_& m) {}

}  // namespace trainart::bind
