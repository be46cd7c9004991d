// CPU optimizer updates: kernels (a loop over one chunk calling the math/optimizer.hpp step),
// the multi-tensor launcher, and the entries instantiated for float and double.
#include "cpu/optimizer.hpp"

#include <algorithm>

#include "cpu/chunk_table.hpp"

namespace trainart::cpu {

namespace {

using math::StepScalars;

// ---- kernels: one chunk [lo, hi) of one tensor. Flags are template parameters so each
// combination compiles to its own branch-free loop; the scalars are copied to a local so the
// compiler knows stores through the tensors cannot change them.

template <class T, bool Momentum, bool Nesterov, bool First>
TRAINART_FLATTEN TRAINART_SIMD_CLONES void sgd_kernel(const TensorSlots<T>& t, index_t lo, index_t hi, const StepScalars<T>& scalars) {
  const StepScalars<T> s = scalars;
  T* __restrict p = t.param;
  const T* __restrict g = t.grad;
  T* __restrict buf = t.slot[0];
  for (index_t i = lo; i < hi; ++i) math::sgd_step(p[i], g[i], Momentum ? buf + i : nullptr, s, Momentum, Nesterov, First);
}

template <class T>
TRAINART_FLATTEN TRAINART_SIMD_CLONES void adagrad_kernel(const TensorSlots<T>& t, index_t lo, index_t hi, const StepScalars<T>& scalars) {
  const StepScalars<T> s = scalars;
  T* __restrict p = t.param;
  const T* __restrict g = t.grad;
  T* __restrict sum = t.slot[0];
  for (index_t i = lo; i < hi; ++i) math::adagrad_step(p[i], g[i], sum[i], s);
}

template <class T, bool Momentum, bool Centered>
TRAINART_FLATTEN TRAINART_SIMD_CLONES void rmsprop_kernel(const TensorSlots<T>& t, index_t lo, index_t hi, const StepScalars<T>& scalars) {
  const StepScalars<T> s = scalars;
  T* __restrict p = t.param;
  const T* __restrict g = t.grad;
  T* __restrict sq = t.slot[0];
  T* __restrict buf = t.slot[1];
  T* __restrict ga = t.slot[2];
  for (index_t i = lo; i < hi; ++i)
    math::rmsprop_step(p[i], g[i], sq[i], Momentum ? buf + i : nullptr, Centered ? ga + i : nullptr, s, Momentum,
                       Centered);
}

template <class T, bool Amsgrad>
TRAINART_FLATTEN TRAINART_SIMD_CLONES void adam_kernel(const TensorSlots<T>& t, index_t lo, index_t hi, const StepScalars<T>& scalars) {
  const StepScalars<T> s = scalars;
  T* __restrict p = t.param;
  const T* __restrict g = t.grad;
  T* __restrict m = t.slot[0];
  T* __restrict v = t.slot[1];
  T* __restrict vmax = t.slot[2];
  for (index_t i = lo; i < hi; ++i) math::adam_step(p[i], g[i], m[i], v[i], Amsgrad ? vmax + i : nullptr, s, Amsgrad);
}

template <class T>
TRAINART_FLATTEN TRAINART_SIMD_CLONES void adamax_kernel(const TensorSlots<T>& t, index_t lo, index_t hi, const StepScalars<T>& scalars) {
  const StepScalars<T> s = scalars;
  T* __restrict p = t.param;
  const T* __restrict g = t.grad;
  T* __restrict m = t.slot[0];
  T* __restrict u = t.slot[1];
  for (index_t i = lo; i < hi; ++i) math::adamax_step(p[i], g[i], m[i], u[i], s);
}

template <class T>
TRAINART_FLATTEN TRAINART_SIMD_CLONES void nadam_kernel(const TensorSlots<T>& t, index_t lo, index_t hi, const StepScalars<T>& scalars) {
  const StepScalars<T> s = scalars;
  T* __restrict p = t.param;
  const T* __restrict g = t.grad;
  T* __restrict m = t.slot[0];
  T* __restrict v = t.slot[1];
  for (index_t i = lo; i < hi; ++i) math::nadam_step(p[i], g[i], m[i], v[i], s);
}

// ---- launcher: cut every tensor into chunks of kOptimizerChunk, then run the table.

template <class T, class Kernel>
void multi_tensor_launch(const std::vector<TensorSlots<T>>& tensors, const StepScalars<T>& s, Kernel kernel) {
  const ChunkTable chunks(tensors, kOptimizerChunk);
  chunks.run([&](index_t, const TensorChunk& c) { kernel(tensors[c.tensor], c.lo, c.hi, s); });
}

}  // namespace

// ---- entries: turn the runtime flags into the kernel instantiation.

template <class T>
void sgd_update(const std::vector<TensorSlots<T>>& tensors, const StepScalars<T>& s) {
  if (s.momentum == T(0)) return multi_tensor_launch(tensors, s, sgd_kernel<T, false, false, false>);
  if (s.first_step)
    return s.nesterov ? multi_tensor_launch(tensors, s, sgd_kernel<T, true, true, true>)
                      : multi_tensor_launch(tensors, s, sgd_kernel<T, true, false, true>);
  return s.nesterov ? multi_tensor_launch(tensors, s, sgd_kernel<T, true, true, false>)
                    : multi_tensor_launch(tensors, s, sgd_kernel<T, true, false, false>);
}

template <class T>
void adagrad_update(const std::vector<TensorSlots<T>>& tensors, const StepScalars<T>& s) {
  multi_tensor_launch(tensors, s, adagrad_kernel<T>);
}

template <class T>
void rmsprop_update(const std::vector<TensorSlots<T>>& tensors, const StepScalars<T>& s) {
  const bool momentum = s.momentum > T(0);
  if (momentum)
    return s.centered ? multi_tensor_launch(tensors, s, rmsprop_kernel<T, true, true>)
                      : multi_tensor_launch(tensors, s, rmsprop_kernel<T, true, false>);
  return s.centered ? multi_tensor_launch(tensors, s, rmsprop_kernel<T, false, true>)
                    : multi_tensor_launch(tensors, s, rmsprop_kernel<T, false, false>);
}

template <class T>
void adam_update(const std::vector<TensorSlots<T>>& tensors, const StepScalars<T>& s) {
  s.amsgrad ? multi_tensor_launch(tensors, s, adam_kernel<T, true>) : multi_tensor_launch(tensors, s, adam_kernel<T, false>);
}

template <class T>
void adamax_update(const std::vector<TensorSlots<T>>& tensors, const StepScalars<T>& s) {
  multi_tensor_launch(tensors, s, adamax_kernel<T>);
}

template <class T>
void nadam_update(const std::vector<TensorSlots<T>>& tensors, const StepScalars<T>& s) {
  multi_tensor_launch(tensors, s, nadam_kernel<T>);
}

#define TRAINART_INSTANTIATE(T)                                                        \
  template void sgd_update<T>(const std::vector<TensorSlots<T>>&, const StepScalars<T>&);     \
  template void adagrad_update<T>(const std::vector<TensorSlots<T>>&, const StepScalars<T>&); \
  template void rmsprop_update<T>(const std::vector<TensorSlots<T>>&, const StepScalars<T>&); \
  template void adam_update<T>(const std::vector<TensorSlots<T>>&, const StepScalars<T>&);    \
  template void adamax_update<T>(const std::vector<TensorSlots<T>>&, const StepScalars<T>&);  \
  template void nadam_update<T>(const std::vector<TensorSlots<T>>&, const StepScalars<T>&);
TRAINART_INSTANTIATE(float)
TRAINART_INSTANTIATE(double)
#undef TRAINART_INSTANTIATE

}  // namespace trainart::cpu
