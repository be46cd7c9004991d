// CPU loss kernels: each row's loss and gradient come from math/loss.hpp calls (the row stays
// in cache between its passes); rows are split into fixed chunks summed in double. Softmax's
// exponentials are formed for a whole chunk through libm_blocks.hpp, so every one takes
// libmvec's vector code wherever the row lies. The build's -fno-trapping-math makes the huber,
// mae and bce selects branch-free.

#include "trainart/math/vector_libm.hpp"  // before the loss math: vector exp

#include "loss.hpp"

#include <algorithm>

#include "libm_blocks.hpp"
#include "trainart/parallel.hpp"

namespace trainart::cpu {

namespace {

index_t chunk_rows(index_t k) { return std::max<index_t>(1, kLossChunkElems / k); }

// The gradient's factor for row i: weight[i] / normalizer, rounded once to T.
template <class T>
T row_scale(const T* weight, index_t i, double norm) {
  return T((weight ? double(weight[i]) : 1.0) / norm);
}

template <class T>
TRAINART_FLATTEN TRAINART_SIMD_CLONES __attribute__((noinline)) void exp_block(const T* __restrict x, T* __restrict y) {
  for (index_t j = 0; j < kLibmBlock; ++j) y[j] = std::exp(x[j]);
}

// Softmax rows are taken in groups of about this many elements: a group's logits and
// exponentials stay in L1 between the passes over it.
constexpr index_t kSoftmaxGroupElems = 2048;

// Sum over rows [lo, hi) of row(i, m), m the row's max, called once g holds exp(z - m) for the
// row: per group of rows the shift, then the exponentials in blocks (in place), then the rows.
template <class T, class Row>
double softmax_rows(const T* z, T* g, index_t lo, index_t hi, index_t k, Row&& row) {
  const index_t group = std::max<index_t>(1, kSoftmaxGroupElems / k);
  T maxes[kSoftmaxGroupElems];
  double sum = 0.0;
  for (index_t g0 = lo; g0 < hi; g0 += group) {
    const index_t g1 = std::min(hi, g0 + group);
    for (index_t i = g0; i < g1; ++i) {
      const T m = maxes[i - g0] = math::row_max(z + i * k, k);
      for (index_t j = i * k; j < (i + 1) * k; ++j) g[j] = z[j] - m;
    }
    const T* in[1] = {g};
    libm_blocked<1>(in, g, g0 * k, g1 * k, [](const auto& x, T* y) { exp_block(x[0], y); });
    for (index_t i = g0; i < g1; ++i) sum += row(i, maxes[i - g0]);
  }
  return sum;
}

template <math::Loss K, class T>
TRAINART_FLATTEN TRAINART_SIMD_CLONES double loss_rows_kernel(const T* z, const T* t, const T* weight, T* g, index_t lo,
                                         index_t hi, index_t k, T delta, double norm) {
  const auto weighted = [&](index_t i, double row) { return weight ? double(weight[i]) * row : row; };
  if constexpr (K == math::Loss::cross_entropy) {
    return softmax_rows(z, g, lo, hi, k, [&](index_t i, T m) {
      const index_t off = i * k;
      return weighted(i, math::softmax_xent_row_from_exp(z + off, t + off, g + off, k, m, row_scale(weight, i, norm)));
    });
  } else {
    double sum = 0.0;
    for (index_t i = lo; i < hi; ++i) {
      const index_t off = i * k;
      sum += weighted(i, math::pointwise_row(K, z + off, t + off, g + off, k, row_scale(weight, i, norm), delta));
    }
    return sum;
  }
}

template <math::Loss K, class T>
double loss_launch(const T* z, const T* t, const T* weight, T* g, index_t n, index_t k, T delta,
                   double norm) {
  return fixed_chunk_sum(n, chunk_rows(k), [&](index_t lo, index_t hi) {
    return loss_rows_kernel<K>(z, t, weight, g, lo, hi, k, delta, norm);
  });
}

template <class T>
TRAINART_FLATTEN TRAINART_SIMD_CLONES double label_rows_kernel(const T* z, const std::int64_t* labels, const T* weight, T* g,
                                          index_t lo, index_t hi, index_t k, double norm) {
  return softmax_rows(z, g, lo, hi, k, [&](index_t i, T m) {
    const index_t off = i * k;
    const double row = math::softmax_xent_label_row_from_exp(z + off, labels[i], g + off, k, m, row_scale(weight, i, norm));
    return weight ? double(weight[i]) * row : row;
  });
}

}  // namespace

template <class T>
double loss_value_and_grad(math::Loss kind, const T* z, const T* t, const T* weight, T* g, index_t n,
                           index_t k, T delta) {
  TRAINART_CHECK(static_cast<int>(kind) >= 0 && static_cast<int>(kind) < math::kNumLosses,
                 "loss kind " + std::to_string(static_cast<int>(kind)) + " is unknown");
  using L = math::Loss;
  const double norm = kind == L::cross_entropy ? double(n) : double(n) * double(k);
  double total = 0.0;
  switch (kind) {
    case L::cross_entropy: total = loss_launch<L::cross_entropy>(z, t, weight, g, n, k, delta, norm); break;
    case L::binary_cross_entropy:
      total = loss_launch<L::binary_cross_entropy>(z, t, weight, g, n, k, delta, norm);
      break;
    case L::mse: total = loss_launch<L::mse>(z, t, weight, g, n, k, delta, norm); break;
    case L::mae: total = loss_launch<L::mae>(z, t, weight, g, n, k, delta, norm); break;
    case L::huber: total = loss_launch<L::huber>(z, t, weight, g, n, k, delta, norm); break;
  }
  return total / norm;
}

template <class T>
double cross_entropy_labels(const T* z, const std::int64_t* labels, const T* weight, T* g, index_t n,
                            index_t k) {
  const double norm = double(n);
  const double total = fixed_chunk_sum(n, chunk_rows(k), [&](index_t lo, index_t hi) {
    return label_rows_kernel(z, labels, weight, g, lo, hi, k, norm);
  });
  return total / norm;
}

template double loss_value_and_grad<float>(math::Loss, const float*, const float*, const float*, float*,
                                           index_t, index_t, float);
template double loss_value_and_grad<double>(math::Loss, const double*, const double*, const double*,
                                            double*, index_t, index_t, double);
template double cross_entropy_labels<float>(const float*, const std::int64_t*, const float*, float*,
                                            index_t, index_t);
template double cross_entropy_labels<double>(const double*, const std::int64_t*, const double*, double*,
                                             index_t, index_t);

}  // namespace trainart::cpu
