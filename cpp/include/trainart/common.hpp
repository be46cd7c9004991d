// Shared macros of every trainart kernel: host/device inlining and argument checks that
// become Python exceptions (std::invalid_argument -> ValueError) at the binding layer.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>

#if defined(__CUDACC__)
#define TRAINART_HD __host__ __device__ __forceinline__
#else
#define TRAINART_HD inline
#endif

// On a kernel loop: inline every call inside it. The math/ functions are one switch over every
// kind, which GCC judges too big to inline; an out-of-line call per element costs 5-10x a relu,
// while inlined with the kind a template constant the switch folds away and the loop vectorizes.
#if defined(__GNUC__)
#define TRAINART_FLATTEN __attribute__((flatten))
#else
#define TRAINART_FLATTEN
#endif

// On a hot CPU kernel: AVX2 and AVX-512 clones besides the portable one, chosen when the module
// loads (x86-64 Linux, GCC); elsewhere the one portable build. The wheel stays portable. The
// build forbids FMA contraction (-ffp-contract=off), so every clone, and a loop's vector and
// scalar versions, round each product alike: results do not depend on the ISA, the thread
// count or where buffers land.
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__) && !defined(__CUDACC__)
#define TRAINART_SIMD_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define TRAINART_SIMD_CLONES
#endif

namespace trainart {

using index_t = std::int64_t;

// Raised by TRAINART_CHECK; pybind11 translates std::invalid_argument to ValueError.
[[noreturn]] inline void fail(const std::string& msg) { throw std::invalid_argument(msg); }

}  // namespace trainart

#define TRAINART_CHECK(cond, msg)                    \
  do {                                               \
    if (!(cond)) ::trainart::fail(std::string(msg)); \
  } while (0)
