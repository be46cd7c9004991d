// The exact Hessian-vector product of the CPU engine's training loss (Pearlmutter's R-operator,
// forward over backward), float64, mirroring python/trainart/second_order/hvp.py (_rop).
#pragma once

#include <cstddef>
#include <vector>

#include "cpu/engine.hpp"
#include "trainart/common.hpp"

namespace trainart::cpu {

// Scratch hvp reuses between calls (grown, shrunk only by release), so repeated products on one
// batch size allocate nothing. One per caller: concurrent calls must not share it.
struct HvpWork {
  std::vector<std::vector<double>> a, z, rin, rz;
  std::vector<double> g, rg, gz, rgz, rh;

  // Frees every buffer (all are sized by the batch's rows): for when the products are done.
  void release();
  std::size_t bytes() const;
};

// hv = H v for one direction v at the parameters `params` (Plan order, as the engine's), on the
// batch `data` in training mode at step 0 (dropout masks as loss_and_grad's). H is the Hessian of
// the mean loss plus the penalty (2 l2 on W; l1 adds 0 away from 0). v and hv hold one array per
// parameter, each with its parameter's size; hv must not alias anything else. Dense, activation
// and dropout ops only: a batchnorm op raises std::invalid_argument.
void hvp(const EngineSpec& spec, const std::vector<const double*>& params, const Batchable<double>& data,
         const std::vector<const double*>& v, const std::vector<double*>& hv,
         const std::vector<index_t>& sizes, HvpWork& work);

}  // namespace trainart::cpu
