// Dropout kernels: the Philox keep mask of math/philox.hpp generated and applied in one pass,
// never stored. Backward is the same call on the gradient with the same (seed, layer, step).
#pragma once

#include <cstdint>
#include <cstring>
#include <type_traits>

#include "trainart/common.hpp"
#include "trainart/math/philox.hpp"

namespace trainart::cpu {

// What a mask is keyed by: the seed, the (layer, step) counter words and the keep threshold.
struct DropoutKey {
  std::uint64_t seed;
  std::uint32_t layer, step, threshold;
};

inline DropoutKey dropout_key(double p, std::uint64_t seed, std::uint32_t layer, std::uint32_t step) {
  return {seed, layer, step, math::dropout_threshold(p)};
}

// Masks are generated a batch of elements at a time; a batch starts at a multiple of this flat
// index, so any split of an array into whole batches sees the same numbers.
constexpr index_t kDropoutBatchElems = 128;

// halves[e] = the 16-bit number of element kDropoutBatchElems * b0 + e, for e < that times nb
// (the fastest Philox path the CPU has: AVX-512, AVX2 or portable).
void dropout_halves(index_t b0, index_t nb, const DropoutKey& key, std::uint16_t* halves);

// Batches whose numbers are generated before they are used (16 KiB on the stack).
constexpr index_t kDropoutStretchBatches = 64;

// Calls fn(e0, len, halves) over the elements of batches [b0, b1) of an n-element array, one
// stretch of up to kDropoutStretchBatches batches at a time: elements [e0, e0 + len), their
// 16-bit numbers in halves[0, len).
template <class Fn>
void for_each_mask_stretch(index_t n, index_t b0, index_t b1, const DropoutKey& key, Fn&& fn) {
  alignas(64) std::uint16_t halves[kDropoutStretchBatches * kDropoutBatchElems];
  for (index_t c = b0; c < b1; c += kDropoutStretchBatches) {
    const index_t nb = b1 - c < kDropoutStretchBatches ? b1 - c : kDropoutStretchBatches;
    dropout_halves(c, nb, key, halves);
    const index_t e0 = c * kDropoutBatchElems;
    fn(e0, n - e0 < nb * kDropoutBatchElems ? n - e0 : nb * kDropoutBatchElems, halves);
  }
}

// keep ? v : +0, as a bit mask on v: GCC (with its default trapping math) leaves a floating-point
// select as a branch, which mispredicts on every other element. A dropped NaN or inf becomes +0.
template <class T>
inline T keep_or_zero(T v, bool keep) {
  using Bits = std::conditional_t<sizeof(T) == 4, std::uint32_t, std::uint64_t>;
  Bits bits;
  std::memcpy(&bits, &v, sizeof(T));
  bits &= Bits(0) - Bits(keep);
  std::memcpy(&v, &bits, sizeof(T));
  return v;
}

// y[e] = keep(e) ? x[e] * scale : 0 over the n elements of a row-major array (e = flat index).
// y may alias x (in place).
template <class T>
void dropout(const T* x, T* y, index_t n, double p, std::uint64_t seed, std::uint32_t layer,
             std::uint32_t step, double scale);

// mask[e] = keep(e) for e in [0, n): the mask dropout applies, for tests and statistics.
void dropout_mask(bool* mask, index_t n, double p, std::uint64_t seed, std::uint32_t layer,
                  std::uint32_t step);

// The Philox code path masks are generated with: 2 AVX-512, 1 AVX2, 0 portable (detected at
// load time). cap >= 0 lowers it to min(cap, detected) so tests can check every path agrees;
// returns the level in use.
int dropout_simd_level(int cap);

// out[i][0..3] = Philox4x32-10 of counter in[i][0..3] under key (k0, k1), i < n: the bare
// generator, for known-answer tests.
void philox4x32_10(const std::uint32_t* in, std::uint32_t* out, index_t n, std::uint32_t k0,
                   std::uint32_t k1);

}  // namespace trainart::cpu
