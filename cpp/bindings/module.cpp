// The _cpu extension module: every kernel binding, registered op by op.
#include "binders.hpp"

PYBIND11_MODULE(_cpu, m) {
  m.doc() = "trainart CPU kernels (C++, OpenBLAS). Private: use trainart.ops.";
  using namespace trainart::bind;
  bind_runtime(m);
  bind_activation(m);
  bind_loss(m);
  bind_dense(m);
  bind_dropout(m);
  bind_clip(m);
  bind_optimizer(m);
  bind_batchnorm(m);
  bind_solve(m);
  bind_engine(m);
  bind_finite(m);
}
