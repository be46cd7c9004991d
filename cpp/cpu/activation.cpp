// CPU activation kernels: the loop per activation kind (the kind is a template argument so each
// loop body is one formula, free of the switch), threaded with parallel_for. The build's
// -fno-trapping-math lets GCC turn `z > 0 ? z : slope * z` into a blend instead of a branch.

#include "trainart/math/vector_libm.hpp"  // before the activation math: vector tanh, exp, ...

#include "activation.hpp"


#include "act_dispatch.hpp"
#include "libm_blocks.hpp"
#include "trainart/parallel.hpp"

namespace trainart::cpu {

namespace {

// The activations that call libm run through libm_blocked (libm_blocks.hpp), so every element
// takes libmvec's vector code whatever its address or the chunk a thread got: a run depends
// neither on where buffers lie nor on the thread count. (No `#pragma omp simd` on a plain loop
// instead: over a libm call without a vector variant it calls the scalar function lane by lane,
// 20 ns per element for tanh.) The others are plain loops.

template <math::Act K, class T>
TRAINART_FLATTEN TRAINART_SIMD_CLONES __attribute__((noinline)) void forward_block(const T* __restrict z, T* __restrict a,
                                                                                  T param) {
  for (index_t j = 0; j < kLibmBlock; ++j) a[j] = math::act_forward(K, z[j], param);
}

template <math::Act K, class T>
TRAINART_FLATTEN TRAINART_SIMD_CLONES __attribute__((noinline)) void backward_block(const T* __restrict grad_a,
                                                                                   const T* __restrict z,
                                                                                   const T* __restrict a,
                                                                                   T* __restrict grad_z, T param) {
  for (index_t j = 0; j < kLibmBlock; ++j) grad_z[j] = grad_a[j] * math::act_derivative(K, z[j], a[j], param);
}

template <math::Act K, class T>
TRAINART_FLATTEN TRAINART_SIMD_CLONES void forward_plain(const T* z, T* a, index_t lo, index_t hi, T param) {
  for (index_t i = lo; i < hi; ++i) a[i] = math::act_forward(K, z[i], param);
}

template <math::Act K, class T>
TRAINART_FLATTEN TRAINART_SIMD_CLONES void backward_plain(const T* grad_a, const T* z, const T* a, T* grad_z, index_t lo,
                                                         index_t hi, T param) {
  for (index_t i = lo; i < hi; ++i) grad_z[i] = grad_a[i] * math::act_derivative(K, z[i], a[i], param);
}

template <math::Act K, class T>
void forward_kernel(const T* z, T* a, index_t lo, index_t hi, T param) {
  if constexpr (calls_libm(K)) {
    const T* in[1] = {z};
    libm_blocked<1>(in, a, lo, hi, [&](const auto& x, T* y) { forward_block<K>(x[0], y, param); });
  } else {
    forward_plain<K>(z, a, lo, hi, param);
  }
}

template <math::Act K, class T>
void backward_kernel(const T* grad_a, const T* z, const T* a, T* grad_z, index_t lo, index_t hi, T param) {
  if constexpr (calls_libm(K)) {
    const T* in[3] = {grad_a, z, a};
    libm_blocked<3>(in, grad_z, lo, hi, [&](const auto& x, T* y) { backward_block<K>(x[0], x[1], x[2], y, param); });
  } else {
    backward_plain<K>(grad_a, z, a, grad_z, lo, hi, param);
  }
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

template <class T>
void activation_forward_serial(math::Act kind, const T* z, T* a, index_t n, T param) {
  with_act(kind, [&](auto tag) { forward_kernel<decltype(tag)::value>(z, a, 0, n, param); });
}

template <class T>
void activation_backward_serial(math::Act kind, const T* grad_a, const T* z, const T* a, T* grad_z,
                                index_t n, T param) {
  with_act(kind, [&](auto tag) { backward_kernel<decltype(tag)::value>(grad_a, z, a, grad_z, 0, n, param); });
}

template void activation_forward<float>(math::Act, const float*, float*, index_t, float);
template void activation_forward<double>(math::Act, const double*, double*, index_t, double);
template void activation_backward<float>(math::Act, const float*, const float*, const float*, float*,
                                         index_t, float);
template void activation_backward<double>(math::Act, const double*, const double*, const double*,
                                          double*, index_t, double);

template void activation_forward_serial<float>(math::Act, const float*, float*, index_t, float);
template void activation_forward_serial<double>(math::Act, const double*, double*, index_t, double);
template void activation_backward_serial<float>(math::Act, const float*, const float*, const float*, float*,
                                                index_t, float);
template void activation_backward_serial<double>(math::Act, const double*, const double*, const double*,
                                                 double*, index_t, double);

}  // namespace trainart::cpu
