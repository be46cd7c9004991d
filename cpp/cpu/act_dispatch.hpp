// Runtime activation code -> compile-time constant, for the CPU kernels: one switch per kernel
// call, so each loop body is a single formula the compiler can inline and vectorize.
#pragma once

#include <string>
#include <type_traits>

#include "trainart/common.hpp"
#include "trainart/math/activation.hpp"

namespace trainart::cpu {

// Calls fn(std::integral_constant<math::Act, kind>{}); an unknown code is a ValueError.
template <class Fn>
void with_act(math::Act kind, Fn&& fn) {
  using A = math::Act;
  switch (kind) {
    case A::identity: return fn(std::integral_constant<A, A::identity>{});
    case A::sigmoid: return fn(std::integral_constant<A, A::sigmoid>{});
    case A::tanh: return fn(std::integral_constant<A, A::tanh>{});
    case A::relu: return fn(std::integral_constant<A, A::relu>{});
    case A::leaky_relu: return fn(std::integral_constant<A, A::leaky_relu>{});
    case A::elu: return fn(std::integral_constant<A, A::elu>{});
    case A::selu: return fn(std::integral_constant<A, A::selu>{});
    case A::softplus: return fn(std::integral_constant<A, A::softplus>{});
    case A::silu: return fn(std::integral_constant<A, A::silu>{});
    case A::gelu: return fn(std::integral_constant<A, A::gelu>{});
    case A::gelu_tanh: return fn(std::integral_constant<A, A::gelu_tanh>{});
    case A::mish: return fn(std::integral_constant<A, A::mish>{});
  }
  fail("unknown activation code " + std::to_string(static_cast<int>(kind)));
}

}  // namespace trainart::cpu
