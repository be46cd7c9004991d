// Every loss from logits, value and gradient together, written once for the CPU and CUDA
// kernels. The NumPy reference (python/trainart/reference/loss.py) mirrors these lines.
#pragma once

#include <cmath>

#include "trainart/common.hpp"

namespace trainart::math {

// Numbering shared with Python (trainart.reference.loss.LOSS_CODES).
enum class Loss : int { cross_entropy = 0, binary_cross_entropy = 1, mse = 2, mae = 3, huber = 4 };
constexpr int kNumLosses = 5;

// One element's loss and its derivative with respect to the logit, before any reduction.
template <class T>
struct ValueGrad {
  T value;
  T grad;
};

// Binary cross-entropy with logits: max(z,0) - z t + log1p(exp(-|z|)); d/dz = sigmoid(z) - t.
// The one exp(-|z|) serves both, and neither overflows for |z| = 1e4.
template <class T>
TRAINART_HD ValueGrad<T> bce_with_logits(T z, T t) {
  const T e = std::exp(-std::fabs(z));
  const T sig = z >= T(0) ? T(1) / (T(1) + e) : e / (T(1) + e);
  return {(z > T(0) ? z : T(0)) - z * t + std::log1p(e), sig - t};
}

template <class T>
TRAINART_HD ValueGrad<T> squared_error(T z, T t) {
  const T d = z - t;
  return {d * d, T(2) * d};
}

// |d| with derivative sign(d): 0 at d = 0 and NaN at NaN, as torch's and NumPy's sign.
template <class T>
TRAINART_HD ValueGrad<T> absolute_error(T z, T t) {
  const T d = z - t;
  return {std::fabs(d), d != d ? d : T(d > T(0)) - T(d < T(0))};
}

// 0.5 d^2 inside |d| <= delta, delta (|d| - 0.5 delta) outside: quadratic near 0, linear tails;
// the gradient at a NaN residual is NaN, as torch's.
template <class T>
TRAINART_HD ValueGrad<T> huber(T z, T t, T delta) {
  // Both arms are computed and selected: branch-free, since real residuals straddle delta.
  const T d = z - t;
  const T ad = std::fabs(d);
  const bool inside = ad <= delta;
  const T outer_value = delta * (ad - T(0.5) * delta);
  const T outer_grad = d != d ? d : (d > T(0) ? delta : -delta);
  return {inside ? T(0.5) * d * d : outer_value, inside ? d : outer_grad};
}

// The elementwise losses (every kind but cross_entropy) by code.
template <class T>
TRAINART_HD ValueGrad<T> pointwise_loss(Loss kind, T z, T t, T delta) {
  switch (kind) {
    case Loss::binary_cross_entropy: return bce_with_logits(z, t);
    case Loss::mse: return squared_error(z, t);
    case Loss::mae: return absolute_error(z, t);
    case Loss::huber: return huber(z, t, delta);
    case Loss::cross_entropy: break;
  }
  return {T(0), T(0)};
}

// One row of an elementwise loss: g[j] = dl/dz[j] * scale, returns sum_j l(z[j], t[j]) in
// double (each element's value is computed in T, only the sum is widened).
template <class T>
TRAINART_HD double pointwise_row(Loss kind, const T* z, const T* t, T* g, index_t k, T scale, T delta) {
  double sum = 0.0;
  for (index_t j = 0; j < k; ++j) {
    const ValueGrad<T> r = pointwise_loss(kind, z[j], t[j], delta);
    g[j] = r.grad * scale;
    sum += double(r.value);
  }
  return sum;
}

// Softmax cross-entropy of one row with target row t (one-hot or soft):
//   loss = sum_j t_j (logsumexp(z) - z_j) = sum(t) logsumexp(z) - sum(t z),
//   g_j  = (softmax(z)_j sum(t) - t_j) * scale.
// logsumexp = m + log(s) with m = max(z) and s = sum exp(z - m) >= 1, so no exp overflows and
// every term t_j ((m - z_j) + log s) is >= 0 for t >= 0: no cancellation in the loss. The
// kernel parks the exponentials exp(z_j - m) (the shift, then exp, in T) in g, for a whole
// group of rows at once (cpu/loss.cpp says why); the row functions below normalize in place.
template <class T>
TRAINART_HD T row_max(const T* z, index_t k) {
  T m = z[0];
  for (index_t j = 1; j < k; ++j) m = z[j] > m ? z[j] : m;
  return m;
}

// One row once g holds exp(z - m), m = row_max(z, k).
template <class T>
TRAINART_HD double softmax_xent_row_from_exp(const T* z, const T* t, T* g, index_t k, T m, T scale) {
  double s = 0.0, st = 0.0;
  for (index_t j = 0; j < k; ++j) {
    s += double(g[j]);
    st += double(t[j]);
  }
  const double log_s = std::log(s);
  const T inv_s = T(1.0 / s), sum_t = T(st);
  double loss = 0.0;
  for (index_t j = 0; j < k; ++j) {
    loss += double(t[j]) * ((double(m) - double(z[j])) + log_s);
    g[j] = (g[j] * inv_s * sum_t - t[j]) * scale;
  }
  return loss;
}

// The same with an integer class label y in [0, k): t is one-hot at y.
template <class T>
TRAINART_HD double softmax_xent_label_row_from_exp(const T* z, index_t y, T* g, index_t k, T m, T scale) {
  double s = 0.0;
  for (index_t j = 0; j < k; ++j) s += double(g[j]);
  // Same rounding as softmax_xent_row_from_exp with a one-hot row (sum(t) = 1 multiplies exactly).
  const T inv_s = T(1.0 / s);
  for (index_t j = 0; j < k; ++j) g[j] = (g[j] * inv_s - (j == y ? T(1) : T(0))) * scale;
  return (double(m) - double(z[y])) + std::log(s);
}

}  // namespace trainart::math
