// The CPU engine's one thread pool (OpenMP when built with it) and the fixed-partition helpers
// that keep every reduction bitwise identical at any thread count.
#pragma once

#include <algorithm>
#include <atomic>
#include <vector>

#include "trainart/common.hpp"

#if defined(_OPENMP)
#include <omp.h>
#endif
#if defined(__SSE__) || defined(__x86_64__)
#include <xmmintrin.h>
#define TRAINART_HAS_MXCSR 1
#endif

namespace trainart {

// Flush-to-zero and denormals-are-zero for the lifetime of the guard, on this thread. A
// denormal operand costs a ~100-cycle microcode assist; Adam's moments of dead units decay
// into that range and made the update 5x slower. Values below 1.2e-38 (float32) or 2.2e-308
// (float64) become 0, far below every tolerance. parallel_for hands the mode to its workers.
class DenormalsAreZero {
 public:
  DenormalsAreZero() {
#if defined(TRAINART_HAS_MXCSR)
    saved_ = _mm_getcsr();
    _mm_setcsr(saved_ | 0x8040u);  // FTZ (bit 15) | DAZ (bit 6)
#endif
  }
  ~DenormalsAreZero() {
#if defined(TRAINART_HAS_MXCSR)
    _mm_setcsr(saved_);
#endif
  }
  DenormalsAreZero(const DenormalsAreZero&) = delete;
  DenormalsAreZero& operator=(const DenormalsAreZero&) = delete;

 private:
  unsigned saved_ = 0;
};

// The thread count set_num_threads chose (0: not chosen). OpenMP keeps its own setting per
// thread, so a Python thread other than the one that called set_num_threads would still use
// every core: our loops read this one instead, whichever thread runs them.
inline std::atomic<int>& thread_setting() {
  static std::atomic<int> n{0};
  return n;
}

// Set in a child made by fork() after the module loaded (the handler is registered in
// runtime.cpp): GNU OpenMP cannot start a team there, so our loops run on the calling thread
// and OpenBLAS's jobs on plain threads (blas_threads.cpp).
inline std::atomic<bool>& forked_child() {
  static std::atomic<bool> forked{false};
  return forked;
}

// Threads our own loops use; BLAS threads are set alongside in set_num_threads (runtime.cpp).
inline int max_threads() {
#if defined(_OPENMP)
  const int n = thread_setting().load(std::memory_order_relaxed);
  return n > 0 ? n : omp_get_max_threads();
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
#if defined(TRAINART_HAS_MXCSR)
  const unsigned csr = _mm_getcsr();  // workers run in the caller's FP mode (DenormalsAreZero)
#endif
#pragma omp parallel for schedule(static) num_threads(static_cast<int>(blocks))
  for (index_t t = 0; t < blocks; ++t) {
#if defined(TRAINART_HAS_MXCSR)
    const unsigned saved = _mm_getcsr();
    _mm_setcsr(csr);
#endif
    const index_t lo = n * t / blocks, hi = n * (t + 1) / blocks;
    fn(lo, hi);
#if defined(TRAINART_HAS_MXCSR)
    _mm_setcsr(saved);
#endif
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
