// The CPU engine's one thread pool (OpenMP when built with it) and the fixed-partition helpers
// that keep every reduction bitwise identical at any thread count.
#pragma once

#include <algorithm>
#include <atomic>
#include <utility>
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

// Runs fn(begin(t), begin(t + 1)) for t in [0, blocks) on `blocks` threads, each worker in the
// caller's floating-point mode (DenormalsAreZero). begin(0) = 0 and begin(blocks) = the end.
template <class Begin, class Fn>
void parallel_blocks(index_t blocks, Begin&& begin, Fn&& fn) {
  if (blocks <= 1) {
    fn(begin(index_t(0)), begin(index_t(1)));
    return;
  }
#if defined(_OPENMP)
#if defined(TRAINART_HAS_MXCSR)
  const unsigned csr = _mm_getcsr();
#endif
#pragma omp parallel for schedule(static) num_threads(static_cast<int>(blocks))
  for (index_t t = 0; t < blocks; ++t) {
#if defined(TRAINART_HAS_MXCSR)
    const unsigned saved = _mm_getcsr();
    _mm_setcsr(csr);
#endif
    fn(begin(t), begin(t + 1));
#if defined(TRAINART_HAS_MXCSR)
    _mm_setcsr(saved);
#endif
  }
#else
  for (index_t t = 0; t < blocks; ++t) fn(begin(t), begin(t + 1));
#endif
}

// Runs fn(begin, end) over [0, n) split into contiguous blocks of at least `grain` items.
// Work below one grain stays on the calling thread: a fork costs a few microseconds.
template <class Fn>
void parallel_for(index_t n, index_t grain, Fn&& fn) {
  if (n <= 0) return;
  const index_t blocks = std::min<index_t>(max_threads(), (n + grain - 1) / std::max<index_t>(grain, 1));
  parallel_blocks(blocks, [&](index_t t) { return n * t / blocks; }, std::forward<Fn>(fn));
}

// Runs fn(begin, end) over [0, n) items of unequal sizes, one contiguous run of items a thread,
// the runs cut at the item edges nearest equal shares of the total size. offsets has n + 1
// entries: offsets[i] is the size of the items before item i. Below `serial_below` in total the
// call stays on this thread. (Cutting by item count instead gave one thread 393K of Adam's
// elements and the other 276K on DESIGN's mnist network, whose first weight fills most chunks.)
template <class Fn>
void parallel_for_sized(const std::vector<index_t>& offsets, index_t serial_below, Fn&& fn) {
  const index_t n = static_cast<index_t>(offsets.size()) - 1;
  if (n <= 0) return;
  const index_t total = offsets.back();
  const index_t blocks = total < serial_below ? 1 : std::min<index_t>(max_threads(), n);
  std::vector<index_t> cut(static_cast<size_t>(blocks) + 1, n);
  cut[0] = 0;
  for (index_t t = 1; t < blocks; ++t) {
    const index_t share = total * t / blocks;
    index_t k = std::lower_bound(offsets.begin(), offsets.end(), share) - offsets.begin();
    if (k > 0 && share - offsets[k - 1] < offsets[k] - share) --k;  // the nearer edge
    cut[t] = std::max(cut[t - 1], k);
  }
  parallel_blocks(blocks, [&](index_t t) { return cut[t]; }, std::forward<Fn>(fn));
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
