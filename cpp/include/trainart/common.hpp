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

namespace trainart {

using index_t = std::int64_t;

// Raised by TRAINART_CHECK; pybind11 translates std::invalid_argument to ValueError.
[[noreturn]] inline void fail(const std::string& msg) { throw std::invalid_argument(msg); }

}  // namespace trainart

#define TRAINART_CHECK(cond, msg)                    \
  do {                                               \
    if (!(cond)) ::trainart::fail(std::string(msg)); \
  } while (0)
