// Whole-array NaN/inf scans (cpu/finite.hpp).
#include "cpu/finite.hpp"

#include <algorithm>
#include <atomic>

#include "trainart/parallel.hpp"

namespace trainart::cpu {

namespace {

// The or of the Finite probes of p[0..n): one branch-free pass, compiled per ISA.
template <class T>
TRAINART_FLATTEN TRAINART_SIMD_CLONES typename Finite<T>::Bits finite_probes(const T* __restrict p, index_t n) {
  typename Finite<T>::Bits probes = 0;
  for (index_t i = 0; i < n; ++i) probes |= Finite<T>::probe(p[i]);
  return probes;
}

}  // namespace

template <class T>
bool all_finite(const T* p, index_t n) {
  constexpr index_t kBlock = 16384;     // an early exit per block keeps the scan branch-free
  constexpr index_t kGrain = 1 << 18;   // elements per thread before a fork pays for itself
  std::atomic<bool> finite{true};
  parallel_for(n, kGrain, [&](index_t lo, index_t hi) {
    for (index_t i0 = lo; i0 < hi && finite.load(std::memory_order_relaxed); i0 += kBlock)
      if (!Finite<T>::ok(finite_probes(p + i0, std::min(hi, i0 + kBlock) - i0)))
        finite.store(false, std::memory_order_relaxed);
  });
  return finite.load();
}

template <class T>
bool all_finite_serial(const T* p, index_t n) {
  return Finite<T>::ok(finite_probes(p, n));
}

template bool all_finite<float>(const float*, index_t);
template bool all_finite<double>(const double*, index_t);
template bool all_finite_serial<float>(const float*, index_t);
template bool all_finite_serial<double>(const double*, index_t);

}  // namespace trainart::cpu
