// CPU activation kernels: a = f(z) and grad_z = grad_a * f'(z) over flat arrays, by the codes of
// trainart::math::Act.
#pragma once

#include "trainart/common.hpp"
#include "trainart/math/activation.hpp"

namespace trainart::cpu {

// Elements per thread block: an exp-heavy element costs ~5-20 ns, so 16K of them outweigh a
// fork by two orders of magnitude.
constexpr index_t kActivationGrain = 16384;

// a[i] = f(z[i]) for i < n; param is leaky_relu's slope or elu's alpha.
template <class T>
void activation_forward(math::Act kind, const T* z, T* a, index_t n, T param);

// grad_z[i] = grad_a[i] * f'(z[i]), f' from z and a = f(z).
template <class T>
void activation_backward(math::Act kind, const T* grad_a, const T* z, const T* a, T* grad_z,
                         index_t n, T param);

}  // namespace trainart::cpu
