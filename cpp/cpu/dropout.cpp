// Dropout with Philox4x32-10 (math/philox.hpp): words for 64 elements at a time, generated
// across 16 counters at once so the rounds vectorize, then compared and applied in one pass.
#include "cpu/dropout.hpp"

#include "trainart/math/philox.hpp"
#include "trainart/parallel.hpp"

namespace trainart::cpu {

namespace {

// 16 counters (64 elements) per batch: wide enough for AVX-512 lanes, small enough for registers.
constexpr int kBatchBlocks = 16;
constexpr index_t kBatchElems = 4 * kBatchBlocks;
// Batches per thread below which a fork costs more than it saves.
constexpr index_t kGrainBatches = 256;

struct DropoutKey {
  std::uint64_t seed;
  std::uint32_t layer, step, threshold;
};

// ---- kernels: math only ----

// words[4 * i + lane] = Philox output `lane` of block first_block + i, i < kBatchBlocks.
inline void philox_batch(std::uint64_t first_block, const DropoutKey& k, std::uint32_t* words) {
  std::uint32_t c0[kBatchBlocks], c1[kBatchBlocks], c2[kBatchBlocks], c3[kBatchBlocks];
  for (int i = 0; i < kBatchBlocks; ++i) {
    const std::uint64_t block = first_block + std::uint64_t(i);
    c0[i] = std::uint32_t(block);
    c1[i] = std::uint32_t(block >> 32);
    c2[i] = k.layer;
    c3[i] = k.step;
  }
  math::philox4x32_10_lanes<kBatchBlocks>(c0, c1, c2, c3, std::uint32_t(k.seed),
                                          std::uint32_t(k.seed >> 32));
  for (int i = 0; i < kBatchBlocks; ++i) {
    words[4 * i + 0] = c0[i];
    words[4 * i + 1] = c1[i];
    words[4 * i + 2] = c2[i];
    words[4 * i + 3] = c3[i];
  }
}

// Elements of batches [b0, b1) (the last one cut at n): y = keep ? x * scale : 0.
template <class T>
void dropout_kernel(const T* x, T* y, index_t n, index_t b0, index_t b1, const DropoutKey& k,
                    T scale) {
  alignas(64) std::uint32_t words[kBatchElems];
  for (index_t b = b0; b < b1; ++b) {
    philox_batch(std::uint64_t(b) * kBatchBlocks, k, words);
    const index_t e0 = b * kBatchElems;
    const index_t len = n - e0 < kBatchElems ? n - e0 : kBatchElems;
    for (index_t j = 0; j < len; ++j)
      y[e0 + j] = math::dropout_keep(words[j], k.threshold) ? x[e0 + j] * scale : T(0);
  }
}

void dropout_mask_kernel(bool* mask, index_t n, index_t b0, index_t b1, const DropoutKey& k) {
  alignas(64) std::uint32_t words[kBatchElems];
  for (index_t b = b0; b < b1; ++b) {
    philox_batch(std::uint64_t(b) * kBatchBlocks, k, words);
    const index_t e0 = b * kBatchElems;
    const index_t len = n - e0 < kBatchElems ? n - e0 : kBatchElems;
    for (index_t j = 0; j < len; ++j) mask[e0 + j] = math::dropout_keep(words[j], k.threshold);
  }
}

// ---- launcher ----

// Batches are cut at fixed element positions, so every element sees the same counter at any
// thread count.
template <class Fn>
void dropout_launch(index_t n, Fn&& fn) {
  parallel_for((n + kBatchElems - 1) / kBatchElems, kGrainBatches, fn);
}

}  // namespace

// ---- entries ----

template <class T>
void dropout(const T* x, T* y, index_t n, double p, std::uint64_t seed, std::uint32_t layer,
             std::uint32_t step, double scale) {
  const DropoutKey k{seed, layer, step, math::dropout_threshold(p)};
  const T s = T(scale);
  dropout_launch(n, [&](index_t b0, index_t b1) { dropout_kernel(x, y, n, b0, b1, k, s); });
}

void dropout_mask(bool* mask, index_t n, double p, std::uint64_t seed, std::uint32_t layer,
                  std::uint32_t step) {
  const DropoutKey k{seed, layer, step, math::dropout_threshold(p)};
  dropout_launch(n, [&](index_t b0, index_t b1) { dropout_mask_kernel(mask, n, b0, b1, k); });
}

void philox4x32_10(const std::uint32_t* in, std::uint32_t* out, index_t n, std::uint32_t k0,
                   std::uint32_t k1) {
  for (index_t i = 0; i < n; ++i) {
    std::uint32_t ctr[4] = {in[4 * i], in[4 * i + 1], in[4 * i + 2], in[4 * i + 3]};
    math::philox4x32_10(ctr, k0, k1);
    for (int j = 0; j < 4; ++j) out[4 * i + j] = ctr[j];
  }
}

template void dropout<float>(const float*, float*, index_t, double, std::uint64_t, std::uint32_t,
                             std::uint32_t, double);
template void dropout<double>(const double*, double*, index_t, double, std::uint64_t,
                              std::uint32_t, std::uint32_t, double);

}  // namespace trainart::cpu
