// Dropout with Philox4x32-10 (math/philox.hpp): random words for a few thousand elements at a
// time (AVX-512, AVX2 or portable code, chosen at run time), then compared and applied in one pass.
#include "cpu/dropout.hpp"

#include <algorithm>
#include <atomic>
#include <type_traits>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include "trainart/math/philox.hpp"
#include "trainart/parallel.hpp"

namespace trainart::cpu {

namespace {

// 16 counters (128 elements) per batch: one AVX-512 or two AVX2 vectors of each counter word.
constexpr int kBatchBlocks = 16;
constexpr index_t kBatchElems = kDropoutBatchElems;
static_assert(kBatchElems == 8 * kBatchBlocks, "eight 16-bit numbers per Philox block");
// Batches per thread below which a fork costs more than it saves.
constexpr index_t kGrainBatches = 256;

// ---- kernels: math only ----

// Blocks [first, first + count) one at a time: the portable path. halves[8 i + 2 j + h] is half
// h (low first) of output j of block first + i: the 16-bit number of element 8 i + 2 j + h.
void philox_blocks_scalar(std::uint64_t first, index_t count, const DropoutKey& k,
                          std::uint16_t* halves) {
  for (index_t i = 0; i < count; ++i) {
    const std::uint64_t block = first + std::uint64_t(i);
    std::uint32_t c[4] = {std::uint32_t(block), std::uint32_t(block >> 32), k.layer, k.step};
    math::philox4x32_10(c[0], c[1], c[2], c[3], std::uint32_t(k.seed), std::uint32_t(k.seed >> 32));
    for (int j = 0; j < 4; ++j) {
      halves[8 * i + 2 * j] = std::uint16_t(c[j]);
      halves[8 * i + 2 * j + 1] = std::uint16_t(c[j] >> 16);
    }
  }
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define TRAINART_DROPOUT_AVX2 1
#define TRAINART_AVX2 __attribute__((target("avx2")))

// Eight counter words, one per 32-bit lane (a GCC/Clang vector: `^ k0` broadcasts k0).
using u32x8 = std::uint32_t __attribute__((vector_size(32)));

// math::Mulhilo32 on eight lanes: even lanes and (shifted) odd lanes through vpmuludq, the
// halves blended back into lane order.
struct MulhiloAvx2 {
  TRAINART_AVX2 void operator()(std::uint32_t m, const u32x8& c, u32x8& hi, u32x8& lo) const {
    const __m256i mv = _mm256_set1_epi32(int(m));
    const __m256i cv = __m256i(c);
    const __m256i even = _mm256_mul_epu32(cv, mv);
    const __m256i odd = _mm256_mul_epu32(_mm256_srli_epi64(cv, 32), mv);
    hi = u32x8(_mm256_blend_epi32(_mm256_srli_epi64(even, 32), odd, 0xAA));
    lo = u32x8(_mm256_blend_epi32(even, _mm256_slli_epi64(odd, 32), 0xAA));
  }
};

// Blocks [first, first + 8 * groups), eight at a time; the low counter word must not wrap
// inside a group of eight (the caller checks). `flatten` inlines the rounds and the AVX2
// mulhilo here (GCC does not inline a target("avx2") callee into the generic template). The
// 32-bit words are stored in block order; on x86 (little-endian) their 16-bit halves then lie
// in element order, low half first, as philox_blocks_scalar writes them.
TRAINART_AVX2 __attribute__((flatten)) void philox_blocks_avx2(std::uint64_t first, index_t groups, const DropoutKey& k,
                                      std::uint16_t* halves) {
  const u32x8 iota = {0, 1, 2, 3, 4, 5, 6, 7};
  for (index_t g = 0; g < groups; ++g) {
    const std::uint64_t block = first + std::uint64_t(8 * g);
    u32x8 c0 = iota + std::uint32_t(block);
    u32x8 c1 = iota * 0 + std::uint32_t(block >> 32);
    u32x8 c2 = iota * 0 + k.layer;
    u32x8 c3 = iota * 0 + k.step;
    math::philox4x32_10(c0, c1, c2, c3, std::uint32_t(k.seed), std::uint32_t(k.seed >> 32),
                        MulhiloAvx2());
    // 4 x 8 transpose: words of block i land at 4 i .. 4 i + 3.
    const __m256i t0 = _mm256_unpacklo_epi32(__m256i(c0), __m256i(c1));
    const __m256i t1 = _mm256_unpackhi_epi32(__m256i(c0), __m256i(c1));
    const __m256i t2 = _mm256_unpacklo_epi32(__m256i(c2), __m256i(c3));
    const __m256i t3 = _mm256_unpackhi_epi32(__m256i(c2), __m256i(c3));
    const __m256i r0 = _mm256_unpacklo_epi64(t0, t2);  // blocks 0 | 4
    const __m256i r1 = _mm256_unpackhi_epi64(t0, t2);  // blocks 1 | 5
    const __m256i r2 = _mm256_unpacklo_epi64(t1, t3);  // blocks 2 | 6
    const __m256i r3 = _mm256_unpackhi_epi64(t1, t3);  // blocks 3 | 7
    __m256i* out = reinterpret_cast<__m256i*>(halves + 64 * g);
    _mm256_storeu_si256(out + 0, _mm256_permute2x128_si256(r0, r1, 0x20));
    _mm256_storeu_si256(out + 1, _mm256_permute2x128_si256(r2, r3, 0x20));
    _mm256_storeu_si256(out + 2, _mm256_permute2x128_si256(r0, r1, 0x31));
    _mm256_storeu_si256(out + 3, _mm256_permute2x128_si256(r2, r3, 0x31));
  }
}

#define TRAINART_AVX512 __attribute__((target("avx512f")))
// GCC 12's avx512fintrin.h trips -Wuninitialized on its own _mm512_undefined (GCC bug 105593).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"

using u32x16 = std::uint32_t __attribute__((vector_size(64)));

// The same on sixteen lanes with AVX-512: twice the blocks per instruction.
struct MulhiloAvx512 {
  TRAINART_AVX512 void operator()(std::uint32_t m, const u32x16& c, u32x16& hi,
                                  u32x16& lo) const {
    const __m512i mv = _mm512_set1_epi32(int(m));
    const __m512i cv = __m512i(c);
    const __m512i even = _mm512_mul_epu32(cv, mv);
    const __m512i odd = _mm512_mul_epu32(_mm512_srli_epi64(cv, 32), mv);
    hi = u32x16(_mm512_mask_blend_epi32(0xAAAA, _mm512_srli_epi64(even, 32), odd));
    lo = u32x16(_mm512_mask_blend_epi32(0xAAAA, even, _mm512_slli_epi64(odd, 32)));
  }
};

// Blocks [first, first + 16 * groups), sixteen at a time (same contract as the AVX2 path).
TRAINART_AVX512 __attribute__((flatten)) void philox_blocks_avx512(std::uint64_t first,
                                                                   index_t groups,
                                                                   const DropoutKey& k,
                                                                   std::uint16_t* halves) {
  const u32x16 iota = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
  for (index_t g = 0; g < groups; ++g) {
    const std::uint64_t block = first + std::uint64_t(16 * g);
    u32x16 c0 = iota + std::uint32_t(block);
    u32x16 c1 = iota * 0 + std::uint32_t(block >> 32);
    u32x16 c2 = iota * 0 + k.layer;
    u32x16 c3 = iota * 0 + k.step;
    math::philox4x32_10(c0, c1, c2, c3, std::uint32_t(k.seed), std::uint32_t(k.seed >> 32),
                        MulhiloAvx512());
    // 4 x 16 transpose: in-lane unpacks give blocks (i | i+4 | i+8 | i+12) per vector, then
    // two rounds of 128-bit lane shuffles put blocks 0-3, 4-7, 8-11, 12-15 together.
    const __m512i t0 = _mm512_unpacklo_epi32(__m512i(c0), __m512i(c1));
    const __m512i t1 = _mm512_unpackhi_epi32(__m512i(c0), __m512i(c1));
    const __m512i t2 = _mm512_unpacklo_epi32(__m512i(c2), __m512i(c3));
    const __m512i t3 = _mm512_unpackhi_epi32(__m512i(c2), __m512i(c3));
    const __m512i r0 = _mm512_unpacklo_epi64(t0, t2);  // blocks 0 | 4 | 8 | 12
    const __m512i r1 = _mm512_unpackhi_epi64(t0, t2);  // blocks 1 | 5 | 9 | 13
    const __m512i r2 = _mm512_unpacklo_epi64(t1, t3);  // blocks 2 | 6 | 10 | 14
    const __m512i r3 = _mm512_unpackhi_epi64(t1, t3);  // blocks 3 | 7 | 11 | 15
    const __m512i u0 = _mm512_shuffle_i32x4(r0, r1, 0x44);  // 0 4 1 5
    const __m512i u1 = _mm512_shuffle_i32x4(r2, r3, 0x44);  // 2 6 3 7
    const __m512i u2 = _mm512_shuffle_i32x4(r0, r1, 0xEE);  // 8 12 9 13
    const __m512i u3 = _mm512_shuffle_i32x4(r2, r3, 0xEE);  // 10 14 11 15
    std::uint16_t* out = halves + 128 * g;
    _mm512_storeu_si512(out + 0, _mm512_shuffle_i32x4(u0, u1, 0x88));
    _mm512_storeu_si512(out + 32, _mm512_shuffle_i32x4(u0, u1, 0xDD));
    _mm512_storeu_si512(out + 64, _mm512_shuffle_i32x4(u2, u3, 0x88));
    _mm512_storeu_si512(out + 96, _mm512_shuffle_i32x4(u2, u3, 0xDD));
  }
}

#pragma GCC diagnostic pop

int detect_simd_level() {
  if (__builtin_cpu_supports("avx512f")) return 2;
  if (__builtin_cpu_supports("avx2")) return 1;
  return 0;
}
#else
int detect_simd_level() { return 0; }
#endif

const int kDetectedSimdLevel = detect_simd_level();
std::atomic<int> g_simd_level{kDetectedSimdLevel};

}  // namespace

void dropout_halves(index_t b0, index_t nb, const DropoutKey& k, std::uint16_t* halves) {
  const std::uint64_t first = std::uint64_t(b0) * kBatchBlocks;
  const index_t blocks = nb * kBatchBlocks;
#if defined(TRAINART_DROPOUT_AVX2)
  // The vector path adds the lane index to the low counter word only: it must not wrap.
  if ((first & 0xFFFFFFFFu) <= 0xFFFFFFFFu - std::uint64_t(blocks)) {
    const int level = g_simd_level.load(std::memory_order_relaxed);
    if (level >= 2) return philox_blocks_avx512(first, blocks / 16, k, halves);
    if (level >= 1) return philox_blocks_avx2(first, blocks / 8, k, halves);
  }
#endif
  philox_blocks_scalar(first, blocks, k, halves);
}

namespace {

// ys[j] = keep(halves[j]) ? xs[j] * scale : +0 for j < len. Cloned per ISA so the loop runs 16
// lanes wide; the product is one rounding whatever the width. ys may be xs.
template <class T>
TRAINART_SIMD_CLONES void apply_keep(const T* xs, T* ys, const std::uint16_t* __restrict halves, index_t len,
                                     std::uint32_t threshold, T scale) {
  for (index_t j = 0; j < len; ++j) ys[j] = keep_or_zero(xs[j] * scale, math::dropout_keep(halves[j], threshold));
}

// Elements of batches [b0, b1) (the last one cut at n): y = keep ? x * scale : 0.
template <class T>
void dropout_kernel(const T* x, T* y, index_t n, index_t b0, index_t b1, const DropoutKey& k,
                    T scale) {
  for_each_mask_stretch(n, b0, b1, k, [&](index_t e0, index_t len, const std::uint16_t* halves) {
    apply_keep(x + e0, y + e0, halves, len, k.threshold, scale);
  });
}

void dropout_mask_kernel(bool* mask, index_t n, index_t b0, index_t b1, const DropoutKey& k) {
  for_each_mask_stretch(n, b0, b1, k, [&](index_t e0, index_t len, const std::uint16_t* halves) {
    for (index_t j = 0; j < len; ++j) mask[e0 + j] = math::dropout_keep(halves[j], k.threshold);
  });
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
  const DropoutKey k = dropout_key(p, seed, layer, step);
  const T s = T(scale);
  dropout_launch(n, [&](index_t b0, index_t b1) { dropout_kernel(x, y, n, b0, b1, k, s); });
}

void dropout_mask(bool* mask, index_t n, double p, std::uint64_t seed, std::uint32_t layer,
                  std::uint32_t step) {
  const DropoutKey k = dropout_key(p, seed, layer, step);
  dropout_launch(n, [&](index_t b0, index_t b1) { dropout_mask_kernel(mask, n, b0, b1, k); });
}

int dropout_simd_level(int cap) {
  if (cap >= 0) g_simd_level.store(std::min(cap, kDetectedSimdLevel));
  return g_simd_level.load();
}

void philox4x32_10(const std::uint32_t* in, std::uint32_t* out, index_t n, std::uint32_t k0,
                   std::uint32_t k1) {
  for (index_t i = 0; i < n; ++i) {
    std::uint32_t c[4] = {in[4 * i], in[4 * i + 1], in[4 * i + 2], in[4 * i + 3]};
    math::philox4x32_10(c[0], c[1], c[2], c[3], k0, k1);
    for (int j = 0; j < 4; ++j) out[4 * i + j] = c[j];
  }
}

template void dropout<float>(const float*, float*, index_t, double, std::uint64_t, std::uint32_t,
                             std::uint32_t, double);
template void dropout<double>(const double*, double*, index_t, double, std::uint64_t,
                              std::uint32_t, std::uint32_t, double);

}  // namespace trainart::cpu
