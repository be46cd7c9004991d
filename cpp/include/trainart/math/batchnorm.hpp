// Batch-normalization formulas (torch.nn.BatchNorm1d's convention), written once for the CPU
// and CUDA kernels. The NumPy reference (python/trainart/reference/batchnorm.py) mirrors them.
#pragma once

#include <cmath>

#include "trainart/common.hpp"

namespace trainart::math {

// Statistics are formed in double whatever the activation dtype: a float32 sum of 10^5
// squared deviations loses digits the normalization would then amplify.
TRAINART_HD double bn_invstd(double var, double eps) { return 1.0 / std::sqrt(var + eps); }

// torch's exponential moving average: running <- (1 - momentum) running + momentum batch.
TRAINART_HD double bn_running(double running, double batch, double momentum) {
  return (1.0 - momentum) * running + momentum * batch;
}

template <class T>
TRAINART_HD T bn_xhat(T x, T mean, T invstd) {
  return (x - mean) * invstd;
}

template <class T>
TRAINART_HD T bn_affine(T xhat, T gamma, T beta) {
  return gamma * xhat + beta;
}

// dx = gamma invstd / n * (n dy - sum(dy) - xhat sum(dy xhat)); `scale` = gamma invstd / n.
template <class T>
TRAINART_HD T bn_dx(T dy, T xhat, T scale, T n, T dbeta, T dgamma) {
  return scale * (n * dy - dbeta - xhat * dgamma);
}

}  // namespace trainart::math
