// Dense layer forward/backward: OpenBLAS GEMMs around one fused elementwise pass each, the
// activation chosen once per call (a template argument) so the inner loops stay branch-free.

// GCC with its default -ftrapping-math keeps `grad * (z > 0 ? 1 : 0)` as a branch around a
// multiply (mispredicted on every other element); without it the dz/db loops vectorize. No
// result changes: trapping math only concerns floating-point exception flags, which we ignore.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("no-trapping-math")
#endif
#include "cpu/dense.hpp"

#include <algorithm>
#include <memory>
#include <type_traits>
#include <vector>

#include "trainart/blas.hpp"
#include "trainart/math/activation.hpp"
#include "trainart/parallel.hpp"

namespace trainart::cpu {

namespace {

using math::Act;

// Elements per thread below which a fork costs more than it saves. Cheap activations are bound
// by memory and take ~0.1 ns per element: a fork (and our threads spinning on cores that the
// next GEMM's OpenBLAS threads then need) costs more than the pass itself at MNIST sizes.
// Transcendental ones take 5-20 ns per element and split early.
constexpr bool cheap(Act k) {
  return k == Act::identity || k == Act::relu || k == Act::leaky_relu;
}
template <Act K>
constexpr index_t kGrainElems = cheap(K) ? index_t(1) << 18 : index_t(1) << 14;

// Calls fn(std::integral_constant<Act, K>{}) for the runtime code `kind`.
template <class Fn>
void with_act(int kind, Fn&& fn) {
  switch (static_cast<Act>(kind)) {
    case Act::identity: return fn(std::integral_constant<Act, Act::identity>{});
    case Act::sigmoid: return fn(std::integral_constant<Act, Act::sigmoid>{});
    case Act::tanh: return fn(std::integral_constant<Act, Act::tanh>{});
    case Act::relu: return fn(std::integral_constant<Act, Act::relu>{});
    case Act::leaky_relu: return fn(std::integral_constant<Act, Act::leaky_relu>{});
    case Act::elu: return fn(std::integral_constant<Act, Act::elu>{});
    case Act::selu: return fn(std::integral_constant<Act, Act::selu>{});
    case Act::softplus: return fn(std::integral_constant<Act, Act::softplus>{});
    case Act::silu: return fn(std::integral_constant<Act, Act::silu>{});
    case Act::gelu: return fn(std::integral_constant<Act, Act::gelu>{});
    case Act::gelu_tanh: return fn(std::integral_constant<Act, Act::gelu_tanh>{});
    case Act::mish: return fn(std::integral_constant<Act, Act::mish>{});
  }
  fail("dense: unknown activation code " + std::to_string(kind));
}

// ---- kernels: math only ----

// Rows [r0, r1): z += b, a = f(z). With a == z only the bias is added (identity).
template <Act K, class T>
void forward_epilogue_kernel(const T* b, T* z, T* a, index_t r0, index_t r1, index_t fan_out,
                             T param) {
  for (index_t i = r0; i < r1; ++i) {
    T* zi = z + i * fan_out;
    T* ai = a + i * fan_out;
    if constexpr (K == Act::identity) {
      for (index_t j = 0; j < fan_out; ++j) zi[j] += b[j];
    } else {
      for (index_t j = 0; j < fan_out; ++j) {
        const T v = zi[j] + b[j];
        zi[j] = v;
        ai[j] = math::act_forward(K, v, param);
      }
    }
  }
}

// Rows [r0, r1) (one bias chunk): dz = grad_a * f'(z, a) and part[j] = sum of dz[:, j] in row
// order, in double. For identity dz is grad_a itself and only the sums are taken.
template <Act K, class T>
void backward_chunk_kernel(const T* grad_a, const T* z, const T* a, T* dz, double* part,
                           index_t r0, index_t r1, index_t fan_out, T param) {
  std::fill(part, part + fan_out, 0.0);
  for (index_t i = r0; i < r1; ++i) {
    const index_t o = i * fan_out;
    if constexpr (K == Act::identity) {
      for (index_t j = 0; j < fan_out; ++j) part[j] += double(grad_a[o + j]);
    } else {
      for (index_t j = 0; j < fan_out; ++j) {
        const T d = grad_a[o + j] * math::act_derivative(K, z[o + j], a[o + j], param);
        dz[o + j] = d;
        part[j] += double(d);
      }
    }
  }
}

// ---- launchers: threading ----

template <Act K, class T>
void forward_epilogue_launch(const T* b, T* z, T* a, index_t n, index_t fan_out, T param) {
  const index_t grain = std::max<index_t>(1, kGrainElems<K> / std::max<index_t>(fan_out, 1));
  parallel_for(n, grain, [&](index_t r0, index_t r1) {
    forward_epilogue_kernel<K>(b, z, a, r0, r1, fan_out, param);
  });
}

template <Act K, class T>
void backward_epilogue_launch(const T* grad_a, const T* z, const T* a, T* dz, T* db, index_t n,
                              index_t fan_out, T param) {
  const index_t rows = kDenseBiasChunkRows;
  const index_t chunks = (n + rows - 1) / rows;
  std::unique_ptr<double[]> parts(new double[size_t(chunks * fan_out)]);
  const index_t grain = std::max<index_t>(1, kGrainElems<K> / std::max<index_t>(rows * fan_out, 1));
  parallel_for(chunks, grain, [&](index_t c0, index_t c1) {
    for (index_t c = c0; c < c1; ++c)
      backward_chunk_kernel<K>(grad_a, z, a, dz, parts.get() + c * fan_out, c * rows,
                               std::min(n, (c + 1) * rows), fan_out, param);
  });
  // Chunk sums added in chunk order: the partition, hence the result, ignores the thread count.
  for (index_t j = 0; j < fan_out; ++j) {
    double s = 0.0;
    for (index_t c = 0; c < chunks; ++c) s += parts[c * fan_out + j];
    db[j] = T(s);
  }
}

}  // namespace

// ---- entries ----

template <class T>
void dense_forward(const T* x, const T* w, const T* b, T* z, T* a, index_t n, index_t fan_in,
                   index_t fan_out, int kind, T param) {
  gemm(false, false, n, fan_out, fan_in, T(1), x, fan_in, w, fan_out, T(0), z, fan_out);
  with_act(kind, [&](auto k) {
    constexpr Act K = decltype(k)::value;
    forward_epilogue_launch<K>(b, z, K == Act::identity ? z : a, n, fan_out, param);
  });
}

template <class T>
void dense_backward(const T* grad_a, const T* x, const T* w, const T* z, const T* a, T* dx, T* dw,
                    T* db, T* dz_work, index_t n, index_t fan_in, index_t fan_out, int kind,
                    T param) {
  const bool identity = static_cast<Act>(kind) == Act::identity;
  std::unique_ptr<T[]> owned;
  if (!identity && dz_work == nullptr) {
    owned.reset(new T[size_t(n * fan_out)]);
    dz_work = owned.get();
  }
  with_act(kind, [&](auto k) {
    backward_epilogue_launch<decltype(k)::value>(grad_a, z, a, dz_work, db, n, fan_out, param);
  });
  const T* dz = identity ? grad_a : dz_work;
  gemm(true, false, fan_in, fan_out, n, T(1), x, fan_in, dz, fan_out, T(0), dw, fan_out);
  if (dx != nullptr)
    gemm(false, true, n, fan_in, fan_out, T(1), dz, fan_out, w, fan_out, T(0), dx, fan_in);
}

template void dense_forward<float>(const float*, const float*, const float*, float*, float*,
                                   index_t, index_t, index_t, int, float);
template void dense_forward<double>(const double*, const double*, const double*, double*, double*,
                                    index_t, index_t, index_t, int, double);
template void dense_backward<float>(const float*, const float*, const float*, const float*,
                                    const float*, float*, float*, float*, float*, index_t, index_t,
                                    index_t, int, float);
template void dense_backward<double>(const double*, const double*, const double*, const double*,
                                     const double*, double*, double*, double*, double*, index_t,
                                     index_t, index_t, int, double);

}  // namespace trainart::cpu
