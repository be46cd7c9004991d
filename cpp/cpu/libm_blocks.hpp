// Loops over libm functions (tanh, exp, expm1, log1p, erfc) that give the same bits for an
// element wherever it lies. libmvec's vector functions (trainart/math/vector_libm.hpp) and
// libm's scalar ones differ in the last bits, and in a plain loop GCC falls back to the scalar
// ones for the elements it peels for alignment, for a loop's tail, and for the whole loop when a
// runtime test finds its arrays closer together than a vector: the result would depend on where
// buffers happen to lie, so a training could differ from its own repeat. Here the elements go
// in blocks of kLibmBlock to aligned local arrays, one call per block into a function whose
// fixed-length loop over them vectorizes, so every element takes the vector code.
#pragma once

#include <algorithm>

#include "trainart/common.hpp"

namespace trainart::cpu {

constexpr index_t kLibmBlock = 256;

// block(x, y) over the blocks of [lo, hi): x[k] an aligned copy of input k's block (zero-padded
// past hi), y an aligned block copied out to `out`. `out` may be one of the inputs (each block
// is read in before it is written back). The block function must be a TRAINART_SIMD_CLONES
// function of its own, marked noinline: inlined into the copy loop, GCC unrolls it early and
// then cannot vectorize the calls.
template <int kIn, class T, class Block>
void libm_blocked(const T* const (&in)[kIn], T* out, index_t lo, index_t hi, Block block) {
  alignas(64) T x[kIn][kLibmBlock];
  alignas(64) T y[kLibmBlock];
  for (index_t i = lo; i < hi; i += kLibmBlock) {
    const index_t len = std::min(kLibmBlock, hi - i);
    for (int k = 0; k < kIn; ++k) {
      std::copy(in[k] + i, in[k] + i + len, x[k]);
      std::fill(x[k] + len, x[k] + kLibmBlock, T(0));
    }
    block(x, y);
    std::copy(y, y + len, out + i);
  }
}

}  // namespace trainart::cpu
