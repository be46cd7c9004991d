// CPU activation kernels: the loop per activation kind (the kind is a template argument so each
// loop body is one formula, free of the switch), threaded with parallel_for. The build's
// -fno-trapping-math lets GCC turn `z > 0 ? z : slope * z` into a blend instead of a branch.

#include "trainart/math/vector_libm.hpp"  // before the activation math: vector tanh, exp, ...

#include "activation.hpp"

#include <algorithm>

#include "act_dispatch.hpp"
#include "trainart/parallel.hpp"

namespace trainart::cpu {

namespace {

// The activations that call libm (tanh, exp, expm1, log1p, erfc) run in blocks of kBlock
// elements copied to aligned local arrays, one call per block into an ISA clone whose loop
// vectorizes with libmvec's vector functions (trainart/math/vector_libm.hpp). The vector and
// scalar libm functions differ in the last bits, and GCC falls back to the scalar ones for
// elements it peels for alignment or leaves in a loop's tail; through the blocks every element
// takes the vector code, whatever its address or the chunk a thread got, so a run does not
// depend on the thread count. The block loop is a function of its own because inside the copy
// loop GCC unrolls it early and then cannot vectorize the calls. (No `#pragma omp simd` on a
// plain loop instead: over a libm call without a vector variant it calls the scalar function
// lane by lane, 20 ns per element for tanh.) The others are plain loops.
constexpr index_t kBlock = 256;

constexpr bool calls_libm(math::Act k) {
  return k != math::Act::identity && k != math::Act::relu && k != math::Act::leaky_relu;
}

template <math::Act K, class T>
TRAINART_FLATTEN TRAINART_SIMD_CLONES __attribute__((noinline)) void forward_block(const T* __restrict z, T* __restrict a,
                                                                                  T param) {
  for (index_t j = 0; j < kBlock; ++j) a[j] = math::act_forward(K, z[j], param);
}

template <math::Act K, class T>
TRAINART_FLATTEN TRAINART_SIMD_CLONES __attribute__((noinline)) void backward_block(const T* __restrict grad_a,
                                                                                   const T* __restrict z,
                                                                                   const T* __restrict a,
                                                                                   T* __restrict grad_z, T param) {
  for (index_t j = 0; j < kBlock; ++j) grad_z[j] = grad_a[j] * math::act_derivative(K, z[j], a[j], param);
}

// The blocks of [lo, hi): block(x, y) on aligned copies x[k] of input k's block (zero-padded
// past hi) into an aligned y, copied out.
template <int kIn, class T, class Block>
void blocked(const T* const (&in)[kIn], T* out, index_t lo, index_t hi, Block block) {
  alignas(64) T x[kIn][kBlock];
  alignas(64) T y[kBlock];
  for (index_t i = lo; i < hi; i += kBlock) {
    const index_t len = std::min(kBlock, hi - i);
    for (int k = 0; k < kIn; ++k) {
      std::copy(in[k] + i, in[k] + i + len, x[k]);
      std::fill(x[k] + len, x[k] + kBlock, T(0));
    }
    block(x, y);
    std::copy(y, y + len, out + i);
  }
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
    blocked<1>(in, a, lo, hi, [&](const auto& x, T* y) { forward_block<K>(x[0], y, param); });
  } else {
    forward_plain<K>(z, a, lo, hi, param);
  }
}

template <math::Act K, class T>
void backward_kernel(const T* grad_a, const T* z, const T* a, T* grad_z, index_t lo, index_t hi, T param) {
  if constexpr (calls_libm(K)) {
    const T* in[3] = {grad_a, z, a};
    blocked<3>(in, grad_z, lo, hi, [&](const auto& x, T* y) { backward_block<K>(x[0], x[1], x[2], y, param); });
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

template void activation_forward<float>(math::Act, const float*, float*, index_t, float);
template void activation_forward<double>(math::Act, const double*, double*, index_t, double);
template void activation_backward<float>(math::Act, const float*, const float*, const float*, float*,
                                         index_t, float);
template void activation_backward<double>(math::Act, const double*, const double*, const double*,
                                          double*, index_t, double);

}  // namespace trainart::cpu
