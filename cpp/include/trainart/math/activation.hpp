// Every activation and its derivative, written once for the CPU and CUDA kernels.
// The NumPy reference (python/trainart/reference/activation.py) mirrors these lines.
#pragma once

#include <cmath>

#include "trainart/common.hpp"

namespace trainart::math {

// Numbering shared with Python (trainart.reference.activation.ACTIVATION_CODES).
enum class Act : int {
  identity = 0, sigmoid = 1, tanh = 2, relu = 3, leaky_relu = 4, elu = 5, selu = 6,
  softplus = 7, silu = 8, gelu = 9, gelu_tanh = 10, mish = 11,
};
constexpr int kNumActs = 12;

constexpr double kSeluAlpha = 1.6732632423543772848170429916717;
constexpr double kSeluScale = 1.0507009873554804934193349852946;
constexpr double kInvSqrt2 = 0.70710678118654752440084436210485;
constexpr double kInvSqrt2Pi = 0.39894228040143267793994605993438;
constexpr double kSqrt2OverPi = 0.79788456080286535587989211986876;
constexpr double kGeluTanhCoef = 0.044715;

template <class T>
TRAINART_HD T sigmoid(T z) {
  // e = exp(-|z|) never overflows (logits of +-1e4 give exactly 0 or 1). Both quotients are
  // computed and one selected, so no call or division sits in a branch and loops over it
  // vectorize (GCC will not if-convert a division).
  const T e = std::exp(-std::fabs(z));
  const T d = T(1) + e;
  const T pos = T(1) / d, neg = e / d;
  return z >= T(0) ? pos : neg;
}

template <class T>
TRAINART_HD T softplus(T z) {
  // max(z, 0) + log1p(exp(-|z|)): exact for large |z|, no overflow.
  return (z > T(0) ? z : T(0)) + std::log1p(std::exp(-std::fabs(z)));
}

// u = sqrt(2/pi) (z + 0.044715 z^3), the argument of gelu_tanh's tanh.
template <class T>
TRAINART_HD T gelu_tanh_arg(T z) {
  return T(kSqrt2OverPi) * (z + T(kGeluTanhCoef) * z * z * z);
}

// a = f(z). `param` is leaky_relu's slope or elu's alpha; ignored by the others.
template <class T>
TRAINART_HD T act_forward(Act kind, T z, T param) {
  switch (kind) {
    case Act::identity: return z;
    case Act::sigmoid: return sigmoid(z);
    case Act::tanh: return std::tanh(z);
    case Act::relu: return z < T(0) ? T(0) : z;  // NaN propagates, as torch.relu
    case Act::leaky_relu: return z > T(0) ? z : param * z;
    case Act::elu: return z > T(0) ? z : param * std::expm1(z);
    case Act::selu: return T(kSeluScale) * (z > T(0) ? z : T(kSeluAlpha) * std::expm1(z));
    case Act::softplus: return softplus(z);
    case Act::silu: return z * sigmoid(z);
    // Phi(z) = (1 + erf(z/sqrt2))/2 = erfc(-z/sqrt2)/2: erfc keeps Phi's relative accuracy in
    // the left tail, where 1 + erf cancels (float32 loses every digit by z = -5).
    case Act::gelu: return T(0.5) * z * std::erfc(-z * T(kInvSqrt2));
    // (1 + tanh u)/2 = sigmoid(2u), again without the cancellation for negative z.
    case Act::gelu_tanh: return z * sigmoid(T(2) * gelu_tanh_arg(z));
    case Act::mish: return z * std::tanh(softplus(z));
  }
  return z;
}

// da/dz from the pre-activation z and the output a = f(z); each uses whichever is cheaper.
template <class T>
TRAINART_HD T act_derivative(Act kind, T z, T a, T param) {
  switch (kind) {
    case Act::identity: return T(1);
    case Act::sigmoid: return a * (T(1) - a);
    case Act::tanh: return T(1) - a * a;
    case Act::relu: return z > T(0) ? T(1) : T(0);
    case Act::leaky_relu: return z > T(0) ? T(1) : param;
    case Act::elu: return z > T(0) ? T(1) : param * std::exp(z);
    case Act::selu: return z > T(0) ? T(kSeluScale) : T(kSeluScale * kSeluAlpha) * std::exp(z);
    case Act::softplus: return sigmoid(z);
    case Act::silu: {
      const T s = sigmoid(z);
      return s * (T(1) + z * (T(1) - s));
    }
    case Act::gelu:
      return T(0.5) * std::erfc(-z * T(kInvSqrt2)) + z * T(kInvSqrt2Pi) * std::exp(T(-0.5) * z * z);
    case Act::gelu_tanh: {
      // d/dz z s(2u) = s + z 2 s (1 - s) u', with s = sigmoid(2u) = (1 + tanh u)/2. Where
      // s (1 - s) is 0 (|z| large) the second term is 0: computed, z^2 could overflow to inf
      // and make it 0 * inf = NaN (torch gives that NaN; the limit is 1 or 0).
      const T s = sigmoid(T(2) * gelu_tanh_arg(z));
      const T d = s * (T(1) - s);
      return d == T(0) ? s : s + T(2) * z * d * T(kSqrt2OverPi) * (T(1) + T(3 * kGeluTanhCoef) * z * z);
    }
    case Act::mish: {
      const T t = std::tanh(softplus(z));
      return t + z * sigmoid(z) * (T(1) - t * t);
    }
  }
  return T(1);
}

// d^2a/dz^2 from z and a = f(z), for the exact Hessian (R-operator). relu and leaky_relu's kink
// at 0 is given 0. Mirrors act_second_derivative in python/trainart/second_order/hvp.py.
template <class T>
TRAINART_HD T act_second_derivative(Act kind, T z, T a, T param) {
  switch (kind) {
    case Act::identity:
    case Act::relu:
    case Act::leaky_relu: return T(0);
    case Act::sigmoid: return a * (T(1) - a) * (T(1) - T(2) * a);
    case Act::tanh: return T(-2) * a * (T(1) - a * a);
    case Act::elu: return z > T(0) ? T(0) : param * std::exp(z);
    case Act::selu: return z > T(0) ? T(0) : T(kSeluScale) * T(kSeluAlpha) * std::exp(z);
    case Act::softplus: {
      const T s = sigmoid(z);
      return s * (T(1) - s);
    }
    case Act::silu: {
      const T s = sigmoid(z);
      return s * (T(1) - s) * (T(2) + z * (T(1) - T(2) * s));
    }
    case Act::gelu: return T(kInvSqrt2Pi) * std::exp(T(-0.5) * z * z) * (T(2) - z * z);
    case Act::gelu_tanh: {
      // q = sigmoid(2u); q' = 2 q (1-q) u'; q'' = 2 q' (1-2q) u' + 2 q (1-q) u''; f'' = 2 q' + z q''.
      const T q = sigmoid(T(2) * gelu_tanh_arg(z));
      const T du = T(kSqrt2OverPi) * (T(1) + T(3) * T(kGeluTanhCoef) * z * z);
      const T ddu = T(kSqrt2OverPi) * T(6) * T(kGeluTanhCoef) * z;
      const T dq = T(2) * q * (T(1) - q) * du;
      const T ddq = T(2) * dq * (T(1) - T(2) * q) * du + T(2) * q * (T(1) - q) * ddu;
      return T(2) * dq + z * ddq;
    }
    case Act::mish: {
      // t = tanh(softplus z), t' = (1-t^2) s, t'' = -2 t t' s + (1-t^2) s (1-s): f'' = 2 t' + z t''.
      const T s = sigmoid(z);
      const T t = std::tanh(softplus(z));
      const T dt = (T(1) - t * t) * s;
      const T ddt = T(-2) * t * dt * s + (T(1) - t * t) * s * (T(1) - s);
      return T(2) * dt + z * ddt;
    }
  }
  return T(0);
}

}  // namespace trainart::math
