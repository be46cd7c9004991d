// The Hessian of each loss with respect to the logits, applied to a direction, one row at a time,
// for the exact Hessian-vector product (R-operator). Mirrors loss_hessian_apply in
// python/trainart/second_order/hvp.py.
#pragma once

#include <cmath>

#include "trainart/common.hpp"
#include "trainart/math/activation.hpp"
#include "trainart/math/loss.hpp"

namespace trainart::math {

// d^2 l / dz^2 of an elementwise loss at logit z and target t (before the row scale):
// bce sigmoid'(z), mse 2, mae 0 (0 away from the kink), huber 1 inside |z - t| <= delta else 0.
template <class T>
TRAINART_HD T pointwise_loss_curvature(Loss kind, T z, T t, T delta) {
  switch (kind) {
    case Loss::binary_cross_entropy: {
      const T s = sigmoid(z);
      return s * (T(1) - s);
    }
    case Loss::mse: return T(2);
    case Loss::huber: return std::fabs(z - t) <= delta ? T(1) : T(0);
    case Loss::mae:
    case Loss::cross_entropy: break;
  }
  return T(0);
}

// out = coef (diag(p) - p p^T) r for one row of softmax cross-entropy, p = softmax(z), written as
// coef p_j (r_j - p.r). coef is w_i / n times sum(t_i) (1 for a label). out may not alias z or r.
template <class T>
TRAINART_HD void softmax_xent_curvature_row(const T* z, const T* r, T* out, index_t k, T coef) {
  T m = z[0];
  for (index_t j = 1; j < k; ++j) m = z[j] > m ? z[j] : m;
  T s = T(0);
  for (index_t j = 0; j < k; ++j) {
    out[j] = std::exp(z[j] - m);
    s += out[j];
  }
  T pr = T(0);
  for (index_t j = 0; j < k; ++j) {
    out[j] /= s;
    pr += out[j] * r[j];
  }
  for (index_t j = 0; j < k; ++j) out[j] = coef * out[j] * (r[j] - pr);
}

}  // namespace trainart::math
