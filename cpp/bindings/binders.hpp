// One bind_<op> per file in cpp/bindings/; module.cpp calls them all.
#pragma once

#include <pybind11/pybind11.h>

namespace trainart::bind {

void bind_runtime(pybind11::module_& m);
void bind_activation(pybind11::module_& m);
void bind_loss(pybind11::module_& m);
void bind_dense(pybind11::module_& m);
void bind_dropout(pybind11::module_& m);
void bind_clip(pybind11::module_& m);
void bind_optimizer(pybind11::module_& m);
void bind_batchnorm(pybind11::module_& m);
void bind_solve(pybind11::module_& m);
void bind_engine(pybind11::module_& m);
void bind_finite(pybind11::module_& m);

}  // namespace trainart::bind
