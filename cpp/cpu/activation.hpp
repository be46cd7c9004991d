// CPU activation kernels: a = f(z) and grad_z = grad_a * f'(z) over flat arrays, by the codes of
// trainart::math::Act.
#pragma once

#include "trainart/common.hpp"
#include "trainart/math/activation.hpp"

namespace trainart::cpu {

// Elements per thread block: an exp-heavy element costs ~5-20 ns, so 16K of them outweigh a
// fork by two orders of magnitude.
constexpr index_t kActivationGrain = 16384;

// Whether activation `kind` calls libm (tanh, exp, expm1, log1p, erfc). Those run in blocks
// through libmvec's vector functions (libm_blocks.hpp); a fused pass that applies one calls the
// *_serial entries below, so that it gives activation_forward's numbers bit for bit.
constexpr bool calls_libm(math::Act kind) {
  return kind != math::Act::identity && kind != math::Act::relu && kind != math::Act::leaky_relu;
}

// a[i] = f(z[i]) for i < n; param is leaky_relu's slope or elu's alpha.
template <class T>
void activation_forward(math::Act kind, const T* z, T* a, index_t n, T param);

// grad_z[i] = grad_a[i] * f'(z[i]), f' from z and a = f(z).
template <class T>
void activation_backward(math::Act kind, const T* grad_a, const T* z, const T* a, T* grad_z,
                         index_t n, T param);

// The same two on the calling thread, for a caller that already split the work: the numbers
// of the threaded entries, element for element.
template <class T>
void activation_forward_serial(math::Act kind, const T* z, T* a, index_t n, T param);
template <class T>
void activation_backward_serial(math::Act kind, const T* grad_a, const T* z, const T* a, T* grad_z,
                                index_t n, T param);

}  // namespace trainart::cpu
