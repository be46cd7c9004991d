// CPU clipping kernels: the chunk table over all tensors, the per-chunk loops, and the entries
// instantiated for float and double.
#include "cpu/clip.hpp"

#include <algorithm>

#include "cpu/chunk_table.hpp"

namespace trainart::cpu {

namespace {

// 32 interleaved double accumulators (four AVX-512 or eight AVX2 vectors, so as many
// multiply-add chains run at once), combined in a fixed tree: vectorizable without -ffast-math
// and still one fixed rounding sequence for a given chunk.
constexpr int kLanes = 32;

template <class T>
TRAINART_SIMD_CLONES double sum_squares_kernel(const T* x, index_t lo, index_t hi) {
  double acc[kLanes] = {};
  index_t i = lo;
  for (; i + kLanes <= hi; i += kLanes)
    for (int j = 0; j < kLanes; ++j) {
      const double v = static_cast<double>(x[i + j]);
      acc[j] += v * v;
    }
  for (int j = 0; i < hi; ++i, ++j) {
    const double v = static_cast<double>(x[i]);
    acc[j] += v * v;
  }
  for (int width = kLanes / 2; width >= 1; width /= 2)
    for (int j = 0; j < width; ++j) acc[j] += acc[j + width];
  return acc[0];
}

template <class T>
TRAINART_SIMD_CLONES void clip_kernel(T* __restrict x, index_t lo, index_t hi, T c) {
  // Comparisons are false for NaN, so NaN passes through unchanged.
  for (index_t i = lo; i < hi; ++i) {
    const T v = x[i];
    x[i] = v > c ? c : (v < -c ? -c : v);
  }
}

template <class T>
TRAINART_SIMD_CLONES void scale_kernel(T* __restrict x, index_t lo, index_t hi, T s) {
  for (index_t i = lo; i < hi; ++i) x[i] *= s;
}

}  // namespace

template <class T>
void clip_by_value(const std::vector<TensorView<T>>& tensors, T clip_value) {
  ChunkTable(tensors, kNormChunk).run([&](index_t, const TensorChunk& c) {
    clip_kernel(tensors[c.tensor].data, c.lo, c.hi, clip_value);
  });
}

template <class T>
std::vector<double> sum_squares(const std::vector<TensorView<const T>>& tensors) {
  const ChunkTable chunks(tensors, kNormChunk);  // the fixed partition of the sums
  std::vector<double> partial(chunks.size());
  chunks.run([&](index_t k, const TensorChunk& c) {
    partial[k] = sum_squares_kernel(tensors[c.tensor].data, c.lo, c.hi);
  });
  std::vector<double> sums(tensors.size(), 0.0);
  for (size_t k = 0; k < chunks.size(); ++k) sums[chunks[k].tensor] += partial[k];
  return sums;
}

template <class T>
void scale_tensors(const std::vector<TensorView<T>>& tensors, T scale) {
  ChunkTable(tensors, kNormChunk).run([&](index_t, const TensorChunk& c) {
    scale_kernel(tensors[c.tensor].data, c.lo, c.hi, scale);
  });
}

#define TRAINART_INSTANTIATE(T)                                                            \
  template void clip_by_value<T>(const std::vector<TensorView<T>>&, T);                    \
  template std::vector<double> sum_squares<T>(const std::vector<TensorView<const T>>&);    \
  template void scale_tensors<T>(const std::vector<TensorView<T>>&, T);
TRAINART_INSTANTIATE(float)
TRAINART_INSTANTIATE(double)
#undef TRAINART_INSTANTIATE

}  // namespace trainart::cpu
