// CPU activation kernels: the loop per activation kind (the kind is a template argument so each
// loop body is one formula, free of the switch), threaded with parallel_for. The build's
// -fno-trapping-math lets GCC turn `z > 0 ? z : slope * z` into a blend instead of a branch.

#include "activation.hpp"

#include "trainart/parallel.hpp"

namespace trainart::cpu {

namespace {


template <math::Act K, class T>
TRAINART_FLATTEN TRAINART_SIMD_CLONES void forward_kernel(const T* z, T* a, index_t lo, index_t hi, T param) {
#pragma omp simd
  for (index_t i = lo; i < hi; ++i) a[i] = math::act_forward(K, z[i], param);
}

template <math::Act K, class T>
TRAINART_FLATTEN TRAINART_SIMD_CLONES void backward_kernel(const T* grad_a, const T* z, const T* a, T* grad_z, index_t lo, index_t hi,
                     T param) {
#pragma omp simd
  for (index_t i = lo; i < hi; ++i) grad_z[i] = grad_a[i] * math::act_derivative(K, z[i], a[i], param);
}

template <math::Act K>
struct ActTag {
  static constexpr math::Act value = K;
};

// Calls fn(ActTag<kind>{}): one switch per call, not per element.
template <class Fn>
void with_kind(math::Act kind, Fn&& fn) {
  using A = math::Act;
  switch (kind) {
    case A::identity: return fn(ActTag<A::identity>{});
    case A::sigmoid: return fn(ActTag<A::sigmoid>{});
    case A::tanh: return fn(ActTag<A::tanh>{});
    case A::relu: return fn(ActTag<A::relu>{});
    case A::leaky_relu: return fn(ActTag<A::leaky_relu>{});
    case A::elu: return fn(ActTag<A::elu>{});
    case A::selu: return fn(ActTag<A::selu>{});
    case A::softplus: return fn(ActTag<A::softplus>{});
    case A::silu: return fn(ActTag<A::silu>{});
    case A::gelu: return fn(ActTag<A::gelu>{});
    case A::gelu_tanh: return fn(ActTag<A::gelu_tanh>{});
    case A::mish: return fn(ActTag<A::mish>{});
  }
  fail("activation kind " + std::to_string(static_cast<int>(kind)) + " is unknown");
}

}  // namespace

template <class T>
void activation_forward(math::Act kind, const T* z, T* a, index_t n, T param) {
  with_kind(kind, [&](auto tag) {
    parallel_for(n, kActivationGrain, [&](index_t lo, index_t hi) {
      forward_kernel<decltype(tag)::value>(z, a, lo, hi, param);
    });
  });
}

template <class T>
void activation_backward(math::Act kind, const T* grad_a, const T* z, const T* a, T* grad_z,
                         index_t n, T param) {
  with_kind(kind, [&](auto tag) {
    parallel_for(n, kActivationGrain, [&](index_t lo, index_t hi) {
      backward_kernel<decltype(tag)::value>(grad_a, z, a, grad_z, lo, hi, param);
    });
  });
}

template void activation_forward<float>(math::Act, const float*, float*, index_t, float);
template void activation_forward<double>(math::Act, const double*, double*, index_t, double);
template void activation_backward<float>(math::Act, const float*, const float*, const float*, float*,
                                         index_t, float);
template void activation_backward<double>(math::Act, const double*, const double*, const double*,
                                          double*, index_t, double);

}  // namespace trainart::cpu
