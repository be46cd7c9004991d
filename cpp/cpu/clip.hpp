// CPU gradient-clipping kernels over a list of tensors: clamp by value, the (global and
// per-tensor) L2 norm with a fixed partition, and in-place scaling.
#pragma once

#include <vector>

#include "trainart/common.hpp"

namespace trainart::cpu {

// A flat, contiguous tensor of n elements.
template <class T>
struct TensorView {
  T* data;
  index_t n;
};

// Elements per partial sum of the norm: fixed, so the sum is bitwise the same at any thread count.
constexpr index_t kNormChunk = 32768;

// Every element clamped to [-clip_value, clip_value] in place; NaN stays NaN.
template <class T>
void clip_by_value(const std::vector<TensorView<T>>& tensors, T clip_value);

// Sum of squares of each tensor, accumulated in double: chunks of kNormChunk summed in order
// inside each tensor. The global norm is sqrt of these added in tensor order.
template <class T>
std::vector<double> sum_squares(const std::vector<TensorView<const T>>& tensors);

// Every element multiplied by scale in place.
template <class T>
void scale_tensors(const std::vector<TensorView<T>>& tensors, T scale);

}  // namespace trainart::cpu
