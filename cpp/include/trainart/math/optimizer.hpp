// Every optimizer's per-element update (torch.optim's algorithms), written once for the CPU and
// CUDA kernels. The NumPy reference (python/trainart/reference/optimizer.py) mirrors these lines.
#pragma once

#include <cmath>
#include <limits>

#include "trainart/common.hpp"

namespace trainart::math {

// The per-step scalars of one multi-tensor update. The host fills every field in double
// (trainart.reference.optimizer.step_scalars: bias corrections, NAdam's mu products, ...) and the
// kernel casts them once to the element type, so one step costs no pow/exp per element.
// Fields an optimizer does not use are ignored by it.
// The one_minus_* fields are 1 - beta1, ... taken in double and rounded once to T, as torch
// passes 1 - beta (a Python float) to lerp_/addcmul_/add_: T(1) - T(beta) would round beta first
// and lose digits of the complement as beta nears 1 (float32 Adam, beta2 = 0.999999: 0.7%).
template <class T>
struct StepScalars {
  T lr;            // this step's learning rate (Adagrad: lr / (1 + (t-1) lr_decay))
  T grad_scale;    // multiplies the gradient as it is loaded: clip factor; negative for maximize
  T weight_decay;  // L2 coupled into the gradient: g += weight_decay * p
  T param_decay;   // decoupled decay, p *= param_decay first (AdamW, NAdam: 1 - lr wd; else 1)
  T beta1, beta2;  // first and second moment decays (Adam, AdamW, Adamax, NAdam)
  T one_minus_beta1, one_minus_beta2;
  T alpha;         // RMSprop's smoothing constant
  T one_minus_alpha;
  T eps;
  T momentum, dampening;  // SGD; RMSprop uses momentum only
  T one_minus_dampening;
  T step_size;     // Adam, AdamW, Adamax: lr / (1 - beta1^t)
  T bc2_sqrt;      // Adam, AdamW: sqrt(1 - beta2^t)
  T bc2;           // NAdam: 1 - beta2^t
  T nadam_grad;    // NAdam: lr (1 - mu_t) / (1 - prod_{i<=t} mu_i)
  T nadam_avg;     // NAdam: lr mu_{t+1} / (1 - prod_{i<=t+1} mu_i)
  bool nesterov;   // SGD
  bool amsgrad;    // Adam, AdamW
  bool centered;   // RMSprop
  bool first_step; // SGD: torch starts the momentum buffer at g (no dampening) on step 1
};

// max that propagates NaN from either side, as torch.maximum and np.maximum do.
template <class T>
TRAINART_HD T max_nan(T a, T b) {
  return (a > b || a != a) ? a : b;
}

// The gradient the update sees: scaled on load (clip-by-global-norm, maximize), then L2.
template <class T>
TRAINART_HD T load_grad(T grad, T p, const StepScalars<T>& s) {
  return grad * s.grad_scale + s.weight_decay * p;
}

// The flags below are separate arguments (not read from `s`) so that a launcher can pass
// compile-time constants and get a branch-free, vectorizable loop per combination.

// SGD: b = momentum b + (1 - dampening) g (b = g on step 1); g = nesterov ? g + momentum b : b;
// p -= lr g.
template <class T>
TRAINART_HD void sgd_step(T& p, T grad, T* buf, const StepScalars<T>& s, bool use_momentum,
                          bool nesterov, bool first_step) {
  T g = load_grad(grad, p, s);
  if (use_momentum) {
    const T b = first_step ? g : s.momentum * *buf + s.one_minus_dampening * g;
    *buf = b;
    g = nesterov ? g + s.momentum * b : b;
  }
  p -= s.lr * g;
}

// Adagrad: sum += g^2; p -= lr_t g / (sqrt(sum) + eps).
template <class T>
TRAINART_HD void adagrad_step(T& p, T grad, T& sum, const StepScalars<T>& s) {
  const T g = load_grad(grad, p, s);
  const T acc = sum + g * g;
  sum = acc;
  p -= s.lr * (g / (std::sqrt(acc) + s.eps));
}

// RMSprop: v = alpha v + (1 - alpha) g^2; centered: a = alpha a + (1 - alpha) g, v~ = v - a^2;
// d = sqrt(v~) + eps; momentum: b = momentum b + g / d, p -= lr b; else p -= lr g / d.
// (1 - alpha) g g is ((1 - alpha) g) g, as torch's addcmul: g^2 alone overflows float32 from
// |g| ~ 1.8e19. v >= a^2 (EMAs of g^2 and g), so a^2 overflows only with v: v~ = inf, not NaN.
template <class T>
TRAINART_HD void rmsprop_step(T& p, T grad, T& square_avg, T* buf, T* grad_avg, const StepScalars<T>& s,
                              bool use_momentum, bool centered) {
  const T g = load_grad(grad, p, s);
  const T v = s.alpha * square_avg + (s.one_minus_alpha * g) * g;
  square_avg = v;
  T var = v;
  if (centered) {
    const T a = s.alpha * *grad_avg + s.one_minus_alpha * g;
    *grad_avg = a;
    var = v == std::numeric_limits<T>::infinity() ? v : v - a * a;
  }
  const T d = std::sqrt(var) + s.eps;
  if (use_momentum) {
    const T b = s.momentum * *buf + g / d;
    *buf = b;
    p -= s.lr * b;
  } else {
    p -= s.lr * (g / d);
  }
}

// Adam's and NAdam's moments: m = beta1 m + (1 - beta1) g; v = beta2 v + (1 - beta2) g^2, the
// last term as ((1 - beta2) g) g (torch's addcmul order: g^2 alone overflows float32 sooner).
template <class T>
TRAINART_HD void update_moments(T g, T& exp_avg, T& exp_avg_sq, const StepScalars<T>& s) {
  exp_avg = s.beta1 * exp_avg + s.one_minus_beta1 * g;
  exp_avg_sq = s.beta2 * exp_avg_sq + (s.one_minus_beta2 * g) * g;
}

// Adam / AdamW: p *= param_decay; m = beta1 m + (1 - beta1) g; v = beta2 v + (1 - beta2) g^2;
// amsgrad: vmax = max(vmax, v) replaces v below; p -= lr/(1 - beta1^t) m / (sqrt(v)/sqrt(1 - beta2^t) + eps).
template <class T>
TRAINART_HD void adam_step(T& p, T grad, T& exp_avg, T& exp_avg_sq, T* max_exp_avg_sq, const StepScalars<T>& s,
                           bool amsgrad) {
  p *= s.param_decay;
  const T g = load_grad(grad, p, s);
  update_moments(g, exp_avg, exp_avg_sq, s);
  const T m = exp_avg;
  T vd = exp_avg_sq;
  if (amsgrad) {
    vd = max_nan(*max_exp_avg_sq, vd);
    *max_exp_avg_sq = vd;
  }
  const T denom = std::sqrt(vd) / s.bc2_sqrt + s.eps;
  p -= s.step_size * (m / denom);
}

// Adamax: m = beta1 m + (1 - beta1) g; u = max(beta2 u, |g| + eps); p -= lr/(1 - beta1^t) m / u.
template <class T>
TRAINART_HD void adamax_step(T& p, T grad, T& exp_avg, T& exp_inf, const StepScalars<T>& s) {
  const T g = load_grad(grad, p, s);
  const T m = s.beta1 * exp_avg + s.one_minus_beta1 * g;
  const T u = max_nan(s.beta2 * exp_inf, std::fabs(g) + s.eps);
  exp_avg = m;
  exp_inf = u;
  p -= s.step_size * (m / u);
}

// NAdam: p *= param_decay; m, v as Adam; d = sqrt(v / (1 - beta2^t)) + eps;
// p -= nadam_grad g / d, then p -= nadam_avg m / d (torch's two addcdiv steps).
template <class T>
TRAINART_HD void nadam_step(T& p, T grad, T& exp_avg, T& exp_avg_sq, const StepScalars<T>& s) {
  p *= s.param_decay;
  const T g = load_grad(grad, p, s);
  update_moments(g, exp_avg, exp_avg_sq, s);
  const T m = exp_avg;
  const T d = std::sqrt(exp_avg_sq / s.bc2) + s.eps;
  p -= s.nadam_grad * (g / d);
  p -= s.nadam_avg * (m / d);
}

}  // namespace trainart::math
