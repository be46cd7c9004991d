// Dropout kernels: the Philox keep mask of math/philox.hpp generated and applied in one pass,
// never stored. Backward is the same call on the gradient with the same (seed, layer, step).
#pragma once

#include <cstdint>

#include "trainart/common.hpp"

namespace trainart::cpu {

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
