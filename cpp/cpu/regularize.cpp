// Penalty and max-norm loops. The penalty's sums and gradient terms share one read of w; its
// partial sums use clip's fixed chunks, so the logged loss does not depend on the thread count.
#include "cpu/regularize.hpp"

#include <algorithm>
#include <cmath>
#include <vector>

#include "cpu/clip.hpp"
#include "trainart/parallel.hpp"

namespace trainart::cpu {

namespace {

// Interleaved double accumulators per sum, combined in a fixed tree (see clip.cpp): the
// loop vectorizes without reassociation and every chunk rounds the same way on any machine.
constexpr int kLanes = 16;

struct Sums {
  double abs = 0.0, sq = 0.0;
};

template <class T>
TRAINART_SIMD_CLONES Sums penalty_chunk(const T* __restrict w, T* __restrict dw, index_t lo, index_t hi,
                                        T two_l2, T l1) {
  double abs_acc[kLanes] = {}, sq_acc[kLanes] = {};
  const bool with_l2 = two_l2 != T(0), with_l1 = l1 != T(0);
  const auto element = [&](index_t i, int lane) {
    const T v = w[i];
    const double x = static_cast<double>(v);
    abs_acc[lane] += std::fabs(x);
    sq_acc[lane] += x * x;
    T d = dw[i];
    if (with_l2) d += two_l2 * v;
    if (with_l1) d += l1 * T((v > T(0)) - (v < T(0)));
    dw[i] = d;
  };
  index_t i = lo;
  for (; i + kLanes <= hi; i += kLanes)
    for (int j = 0; j < kLanes; ++j) element(i + j, j);
  for (int j = 0; i < hi; ++i, ++j) element(i, j);
  for (int width = kLanes / 2; width >= 1; width /= 2)
    for (int j = 0; j < width; ++j) {
      abs_acc[j] += abs_acc[j + width];
      sq_acc[j] += sq_acc[j + width];
    }
  return {abs_acc[0], sq_acc[0]};
}

}  // namespace

template <class T>
double add_penalty(const T* w, T* dw, index_t n, double l1, double l2) {
  const index_t chunks = (n + kNormChunk - 1) / kNormChunk;
  std::vector<Sums> partial(static_cast<size_t>(chunks));
  const T two_l2 = T(2.0 * l2), l1_t = T(l1);
  parallel_for(chunks, 1, [&](index_t a, index_t b) {
    for (index_t c = a; c < b; ++c)
      partial[c] = penalty_chunk(w, dw, c * kNormChunk, std::min(n, (c + 1) * kNormChunk), two_l2, l1_t);
  });
  Sums total;
  for (const Sums& s : partial) {
    total.abs += s.abs;
    total.sq += s.sq;
  }
  return l1 * total.abs + l2 * total.sq;
}

template <class T>
void apply_max_norm(T* w, index_t rows, index_t cols, T cap) {
  // Column blocks of about kNormChunk elements a thread; a small layer stays on one thread.
  const index_t grain = std::max<index_t>(1, kNormChunk / std::max<index_t>(rows, 1));
  parallel_for(cols, grain, [&](index_t c0, index_t c1) {
    std::vector<T> factor(static_cast<size_t>(c1 - c0), T(0));
    for (index_t r = 0; r < rows; ++r) {
      const T* row = w + r * cols;
      for (index_t c = c0; c < c1; ++c) factor[c - c0] += row[c] * row[c];
    }
    for (T& f : factor) {
      const T nrm = std::sqrt(f);
      f = nrm > cap ? cap / nrm : T(1);
    }
    for (index_t r = 0; r < rows; ++r) {
      T* row = w + r * cols;
      for (index_t c = c0; c < c1; ++c) row[c] *= factor[c - c0];
    }
  });
}

#define TRAINART_INSTANTIATE(T)                                               \
  template double add_penalty<T>(const T*, T*, index_t, double, double); \
  template void apply_max_norm<T>(T*, index_t, index_t, T);
TRAINART_INSTANTIATE(float)
TRAINART_INSTANTIATE(double)
#undef TRAINART_INSTANTIATE

}  // namespace trainart::cpu
