// CPU optimizer updates: one call updates every parameter tensor of a step in place, over a
// table of chunks that spans all tensors (apex's multi_tensor_apply, on OpenMP threads).
#pragma once

#include <vector>

#include "trainart/common.hpp"
#include "trainart/math/optimizer.hpp"

namespace trainart::cpu {

// One parameter tensor with its gradient and up to three state slots (nullptr where unused),
// all flat, contiguous and `n` elements long.
template <class T>
struct TensorSlots {
  T* param;
  const T* grad;
  T* slot[3];
  index_t n;
};

// Elements per task of the chunk table: 32K floats is 128 KiB per stream, enough to hide a
// fork and small enough to balance 2-16 threads on a 1M-parameter model (8K chunks balanced
// better but made Adam over DESIGN's mnist network ~20 % slower).
constexpr index_t kOptimizerChunk = 32768;

// slot[0] = momentum buffer (used when s.momentum != 0).
template <class T>
void sgd_update(const std::vector<TensorSlots<T>>& tensors, const math::StepScalars<T>& s);

// slot[0] = sum of squares.
template <class T>
void adagrad_update(const std::vector<TensorSlots<T>>& tensors, const math::StepScalars<T>& s);

// slot[0] = square_avg, slot[1] = momentum buffer (momentum > 0), slot[2] = grad_avg (centered).
template <class T>
void rmsprop_update(const std::vector<TensorSlots<T>>& tensors, const math::StepScalars<T>& s);

// Adam and AdamW: slot[0] = exp_avg, slot[1] = exp_avg_sq, slot[2] = max_exp_avg_sq (amsgrad).
template <class T>
void adam_update(const std::vector<TensorSlots<T>>& tensors, const math::StepScalars<T>& s);

// slot[0] = exp_avg, slot[1] = exp_inf.
template <class T>
void adamax_update(const std::vector<TensorSlots<T>>& tensors, const math::StepScalars<T>& s);

// slot[0] = exp_avg, slot[1] = exp_avg_sq.
template <class T>
void nadam_update(const std::vector<TensorSlots<T>>& tensors, const math::StepScalars<T>& s);

}  // namespace trainart::cpu
