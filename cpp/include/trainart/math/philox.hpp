// Philox4x32-10 and the dropout keep test, written once for the CPU and CUDA kernels; the NumPy
// reference (python/trainart/reference/dropout.py) mirrors these lines bit for bit.
//
// Specification of a dropout mask (the same on every backend, thread count and grid size):
//   generator  Philox4x32-10 (Salmon, Moraes, Dror, Shaw, "Parallel random numbers: as easy as
//              1, 2, 3", SC 2011), multipliers M0 = 0xD2511F53, M1 = 0xCD9E8D57, Weyl key
//              increments W0 = 0x9E3779B9, W1 = 0xBB67AE85, ten rounds, the key bumped between
//              rounds (nine bumps), as in Random123's philox4x32_R(10, ...).
//   key        (k0, k1) = (seed & 0xffffffff, seed >> 32), seed in [0, 2^64).
//   element    e = flat row-major index of the element in the (rows, cols) activation.
//   counter    (c0, c1, c2, c3) = (block & 0xffffffff, block >> 32, layer, step) with
//              block = e >> 3: the generator's four 32-bit outputs serve eight elements, each
//              a 16-bit half: u = (out[(e >> 1) & 3] >> (16 * (e & 1))) & 0xffff (low half
//              first). layer and step lie in [0, 2^32).
//   threshold  t = min(floor(p * 2^16), 2^16 - 1), computed from p in double.
//   keep       element e is kept iff u >= t, so P(keep) = 1 - t / 2^16, within 2^-16 of 1 - p
//              (p = 0 gives t = 0: every element kept). Sixteen bits halve the Philox work of
//              32-bit draws; the inverted scale 1 / (1 - p) stays exact.
// Backward regenerates the same mask from the same (seed, layer, step): nothing is stored.
#pragma once

#include <cmath>
#include <cstdint>

#include "trainart/common.hpp"

namespace trainart::math {

constexpr std::uint32_t kPhiloxM0 = 0xD2511F53u;
constexpr std::uint32_t kPhiloxM1 = 0xCD9E8D57u;
constexpr std::uint32_t kPhiloxW0 = 0x9E3779B9u;
constexpr std::uint32_t kPhiloxW1 = 0xBB67AE85u;
constexpr int kPhiloxRounds = 10;

// 32x32 -> 64-bit product of a multiplier and a counter word, split in high and low words.
struct Mulhilo32 {
  TRAINART_HD void operator()(std::uint32_t m, std::uint32_t c, std::uint32_t& hi,
                              std::uint32_t& lo) const {
    const std::uint64_t p = std::uint64_t(m) * c;
    hi = std::uint32_t(p >> 32);
    lo = std::uint32_t(p);
  }
};

// Philox4x32-10 of the counter (c0, c1, c2, c3) under key (k0, k1), in place: the counter
// becomes the four random words. U is std::uint32_t, or a SIMD vector of counters whose
// `mulhilo` computes the same products lane by lane (the CPU dropout kernel), so the rounds and
// the key schedule exist only here.
template <class U, class Mulhilo = Mulhilo32>
TRAINART_HD void philox4x32_10(U& c0, U& c1, U& c2, U& c3, std::uint32_t k0, std::uint32_t k1,
                               Mulhilo mulhilo = Mulhilo()) {
  for (int r = 0; r < kPhiloxRounds; ++r) {
    if (r > 0) {
      k0 += kPhiloxW0;
      k1 += kPhiloxW1;
    }
    U hi0, lo0, hi1, lo1;
    mulhilo(kPhiloxM0, c0, hi0, lo0);
    mulhilo(kPhiloxM1, c2, hi1, lo1);
    c0 = hi1 ^ c1 ^ k0;
    c1 = lo1;
    c2 = hi0 ^ c3 ^ k1;
    c3 = lo0;
  }
}

// The keep threshold of drop probability p in [0, 1) (see the specification above).
TRAINART_HD std::uint32_t dropout_threshold(double p) {
  double t = std::floor(p * 65536.0);
  if (t > 65535.0) t = 65535.0;
  if (t < 0.0) t = 0.0;
  return std::uint32_t(t);
}

// Whether a 16-bit random number u keeps its element: u >= threshold, both below 2^16, so a
// signed 32-bit comparison (the one x86 SIMD has) gives the same order and vectorizes.
TRAINART_HD bool dropout_keep(std::uint32_t u, std::uint32_t threshold) {
  return std::int32_t(u) >= std::int32_t(threshold);
}

// The 16-bit random number of flat element e: half e & 1 of out[(e >> 1) & 3] of Philox at
// counter (e >> 3, layer, step). The mask's definition element by element (for a kernel that
// gives one thread an element); the CPU kernels and the NumPy reference compute the same
// numbers a Philox block (8 elements) at a time.
TRAINART_HD std::uint32_t dropout_half(std::uint64_t seed, std::uint32_t layer, std::uint32_t step,
                                       std::uint64_t e) {
  const std::uint64_t block = e >> 3;
  std::uint32_t c[4] = {std::uint32_t(block), std::uint32_t(block >> 32), layer, step};
  philox4x32_10(c[0], c[1], c[2], c[3], std::uint32_t(seed), std::uint32_t(seed >> 32));
  return (c[(e >> 1) & 3] >> (16 * (e & 1))) & 0xFFFFu;
}

}  // namespace trainart::math
