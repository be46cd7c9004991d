// CPU loss kernels: value and gradient of a loss from logits in one fused pass over the rows,
// by the codes of trainart::math::Loss.
#pragma once

#include "trainart/common.hpp"
#include "trainart/math/loss.hpp"

namespace trainart::cpu {

// Elements per fixed reduction chunk (rounded to whole rows). The partition depends on the
// shape only, never on the thread count, so the value is bitwise reproducible.
constexpr index_t kLossChunkElems = 16384;

// Loss of logits z (n, k) against target t (n, k); g (n, k) receives d value / d z.
// weight (n,) or nullptr multiplies each row's contribution. Returns the mean: over n rows for
// cross_entropy, over n*k elements otherwise. delta is huber's threshold.
template <class T>
double loss_value_and_grad(math::Loss kind, const T* z, const T* t, const T* weight, T* g, index_t n,
                           index_t k, T delta);

// Softmax cross-entropy with integer labels (n,), each in [0, k): the mean over rows.
template <class T>
double cross_entropy_labels(const T* z, const std::int64_t* labels, const T* weight, T* g, index_t n,
                            index_t k);

}  // namespace trainart::cpu
