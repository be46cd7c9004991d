// CPU activation kernels: the loop per activation kind (the kind is a template argument so each
// loop body is one formula, free of the switch), threaded with parallel_for. The build's
// -fno-trapping-math lets GCC turn `z > 0 ? z : slope * z` into a blend instead of a branch.

#include "activation.hpp"

#include "act_dispatch.hpp"
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


}  // namespace

template <class T>
void activation_forward(math::Act kind, const T* z, T* a, index_t n, T param) {
  with_act(kind, [&](auto tag) {
    parallel_for(n, kActivationGrain, [&](index_t lo, index_t hi) {
      forward_kernel<decltype(tag)::value>(z, a, lo, hi, param);
    });
  });
}

template <class T>
void activation_backward(math::Act kind, const T* grad_a, const T* z, const T* a, T* grad_z,
                         index_t n, T param) {
  with_act(kind, [&](auto tag) {
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
