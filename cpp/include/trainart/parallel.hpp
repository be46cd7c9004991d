// The CPU engine's one thread pool (OpenMP when built with it) and the fixed-partition helpers
// that keep every reduction bitwise identical at any thread count.
#pragma once

#include <algorithm>
#include <vector>

#include "trainart/common.hpp"

#if defined(_OPENMP)
#include <omp.h>
#endif

namespace trainart {

// Threads our own loops use; BLAS threads are set alongside in set_num_threads (runtime.cpp).
inline int max_threads() {
#if defined(_OPENMP)
  return omp_get_max_threads();
#else
  return 1;
#endif
}

// Runs fn(begin, end) over [0, n) split into contiguous blocks of at least `grain` items.
// Work below one grain stays on the calling thread: a fork costs a few microseconds.
template <class Fn>
void parallel_for(index_t n, index_t grain, Fn&& fn) {
  if (n <= 0) return;
  const index_t blocks = std::min<index_t>(max_threads(), (n + grain - 1) / std::max<index_t>(grain, 1));
  if (blocks <= 1) {
    fn(index_t(0), n);
    return;
  }
#if defined(_OPENMP)
#pragma omp parallel for schedule(static) num_threads(static_cast<int>(blocks))
  for (index_t t = 0; t < blocks; ++t) {
    const index_t lo = n * t / blocks, hi = n * (t + 1) / blocks;
    fn(lo, hi);
  }
#else
  fn(index_t(0), n);
#endif
}

// Deterministic sum over [0, n): fixed chunks of `chunk` items whatever the thread count,
// each summed in order by partial(lo, hi), then the chunk sums added in order.
template <class Partial>
double fixed_chunk_sum(index_t n, index_t chunk, Partial&& partial) {
  if (n <= 0) return 0.0;
  const index_t chunks = (n + chunk - 1) / chunk;
  std::vector<double> sums(static_cast<size_t>(chunks));
  parallel_for(chunks, 1, [&](index_t lo, index_t hi) {
    for (index_t c = lo; c < hi; ++c) sums[c] = partial(c * chunk, std::min(n, (c + 1) * chunk));
  });
  double total = 0.0;
  for (double s : sums) total += s;
  return total;
}

}  // namespace trainart
