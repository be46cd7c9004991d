// Dense layer forward/backward: OpenBLAS GEMMs around one fused elementwise pass each, the
// activation chosen once per call (a template argument) so the inner loops stay branch-free. An
// activation that calls libm is applied by the activation kernel, chunk by chunk inside the pass.

#include "cpu/dense.hpp"

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <memory>

#include "cpu/act_dispatch.hpp"
#include "cpu/activation.hpp"
#include "cpu/finite.hpp"
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


// ---- kernels: math only ----

// Rows [r0, r1): z += b, a = f(z). With a == z only the bias is added (identity). Returns the
// or of Finite probes of z. An activation that calls libm is applied after the bias, by the
// activation kernel on the chunk (libm_blocks.hpp says why a plain loop must not call it).
template <Act K, class T>
TRAINART_FLATTEN TRAINART_SIMD_CLONES typename Finite<T>::Bits forward_epilogue_kernel(const T* b, T* z, T* a, index_t r0, index_t r1,
                                                 index_t fan_out, T param) {
  typename Finite<T>::Bits probes = 0;
  for (index_t i = r0; i < r1; ++i) {
    T* zi = z + i * fan_out;
    T* ai = a + i * fan_out;
    for (index_t j = 0; j < fan_out; ++j) {
      const T v = zi[j] + b[j];
      zi[j] = v;
      probes |= Finite<T>::probe(v);
      if constexpr (K != Act::identity && !calls_libm(K)) ai[j] = math::act_forward(K, v, param);
    }
  }
  if constexpr (calls_libm(K))
    activation_forward_serial(K, z + r0 * fan_out, a + r0 * fan_out, (r1 - r0) * fan_out, param);
  return probes;
}

// Rows [r0, r1) (one bias chunk): dz = grad_a * f'(z, a) and part[j] = sum of dz[:, j] in row
// order, in double. For identity dz is grad_a itself and only the sums are taken; an activation
// that calls libm has dz formed first by the activation kernel. Returns the or of Finite probes
// of grad_a, z and a (a only where it is another array than z).
template <Act K, class T>
TRAINART_FLATTEN TRAINART_SIMD_CLONES typename Finite<T>::Bits backward_chunk_kernel(const T* grad_a, const T* z, const T* a, T* dz,
                                               double* part, index_t r0, index_t r1,
                                               index_t fan_out, T param) {
  typename Finite<T>::Bits probes = 0;
  std::fill(part, part + fan_out, 0.0);
  if constexpr (calls_libm(K)) {
    const index_t o = r0 * fan_out;
    activation_backward_serial(K, grad_a + o, z + o, a + o, dz + o, (r1 - r0) * fan_out, param);
  }
  for (index_t i = r0; i < r1; ++i) {
    const index_t o = i * fan_out;
    if constexpr (K == Act::identity) {
      for (index_t j = 0; j < fan_out; ++j) {
        probes |= Finite<T>::probe(grad_a[o + j]) | Finite<T>::probe(z[o + j]);
        part[j] += double(grad_a[o + j]);
      }
      if (a != z)
        for (index_t j = 0; j < fan_out; ++j) probes |= Finite<T>::probe(a[o + j]);
    } else {
      for (index_t j = 0; j < fan_out; ++j) {
        const T g = grad_a[o + j], zz = z[o + j], aa = a[o + j];
        probes |= Finite<T>::probe(g) | Finite<T>::probe(zz) | Finite<T>::probe(aa);
        if constexpr (!calls_libm(K)) dz[o + j] = g * math::act_derivative(K, zz, aa, param);
        part[j] += double(dz[o + j]);
      }
    }
  }
  return probes;
}

// One mask stretch [e0, e0 + len) of y (the GEMM's output, row-major, fan_out wide):
// y = keep ? relu(y + b) * scale : +0. Returns the or of Finite probes of y + b.
template <class T>
TRAINART_FLATTEN TRAINART_SIMD_CLONES typename Finite<T>::Bits relu_dropout_forward_kernel(
    const T* b, T* y, const std::uint16_t* __restrict halves, index_t e0, index_t len, index_t fan_out,
    std::uint32_t threshold, T scale) {
  typename Finite<T>::Bits probes = 0;
  for (index_t e = e0, end = e0 + len; e < end;) {  // row by row: b's index restarts at 0
    const index_t j0 = e % fan_out, count = std::min(fan_out - j0, end - e);
    T* ye = y + e;
    const T* bj = b + j0;
    const std::uint16_t* h = halves + (e - e0);
    for (index_t j = 0; j < count; ++j) {
      const T v = ye[j] + bj[j];
      probes |= Finite<T>::probe(v);
      ye[j] = keep_or_zero(math::act_forward(Act::relu, v, T(0)) * scale, math::dropout_keep(h[j], threshold));
    }
    e += count;
  }
  return probes;
}

// Rows [r0, r1) (one bias chunk) of a relu layer followed by dropout: dz = y > 0 ? grad_y *
// scale : +0 and part[j] = sum of dz[:, j] in row order, in double. Returns the or of Finite
// probes of grad_y and y.
template <class T>
TRAINART_FLATTEN TRAINART_SIMD_CLONES typename Finite<T>::Bits relu_dropout_backward_chunk(
    const T* grad_y, const T* y, T* dz, double* part, index_t r0, index_t r1, index_t fan_out, T scale) {
  typename Finite<T>::Bits probes = 0;
  std::fill(part, part + fan_out, 0.0);
  for (index_t i = r0; i < r1; ++i) {
    const index_t o = i * fan_out;
    for (index_t j = 0; j < fan_out; ++j) {
      const T g = grad_y[o + j], yy = y[o + j];
      probes |= Finite<T>::probe(g) | Finite<T>::probe(yy);
      const T d = keep_or_zero(g * scale, yy > T(0));
      dz[o + j] = d;
      part[j] += double(d);
    }
  }
  return probes;
}

// Elements per thread of the fused passes below which one thread does it all: they draw
// Philox numbers (~0.3 ns per element) on top of the memory traffic.
constexpr index_t kFusedGrainElems = index_t(1) << 13;

// ---- launchers: threading ----

template <Act K, class T>
bool forward_epilogue_launch(const T* b, T* z, T* a, index_t n, index_t fan_out, T param) {
  const index_t grain = std::max<index_t>(1, kGrainElems<K> / std::max<index_t>(fan_out, 1));
  std::atomic<bool> finite{true};
  parallel_for(n, grain, [&](index_t r0, index_t r1) {
    if (!Finite<T>::ok(forward_epilogue_kernel<K>(b, z, a, r0, r1, fan_out, param)))
      finite.store(false, std::memory_order_relaxed);
  });
  return finite.load();
}

// Runs chunk(part, r0, r1) over 64-row chunks (at least `grain` of them per thread), each
// writing its column sums to part, then adds the chunk sums in chunk order into db: the
// partition, hence the result, ignores the thread count. Returns whether every chunk's Finite
// probes were clean.
template <class T, class Chunk>
bool bias_grad_launch(T* db, index_t n, index_t fan_out, index_t grain, Chunk&& chunk) {
  const index_t rows = kDenseBiasChunkRows;
  const index_t chunks = (n + rows - 1) / rows;
  std::unique_ptr<double[]> parts(new double[size_t(chunks * fan_out)]);
  std::atomic<bool> finite{true};
  parallel_for(chunks, grain, [&](index_t c0, index_t c1) {
    typename Finite<T>::Bits probes = 0;
    for (index_t c = c0; c < c1; ++c)
      probes |= chunk(parts.get() + c * fan_out, c * rows, std::min(n, (c + 1) * rows));
    if (!Finite<T>::ok(probes)) finite.store(false, std::memory_order_relaxed);
  });
  for (index_t j = 0; j < fan_out; ++j) {
    double s = 0.0;
    for (index_t c = 0; c < chunks; ++c) s += parts[c * fan_out + j];
    db[j] = T(s);
  }
  return finite.load();
}

template <Act K, class T>
bool backward_epilogue_launch(const T* grad_a, const T* z, const T* a, T* dz, T* db, index_t n,
                              index_t fan_out, T param) {
  const index_t grain = std::max<index_t>(1, kGrainElems<K> / std::max<index_t>(kDenseBiasChunkRows * fan_out, 1));
  return bias_grad_launch(db, n, fan_out, grain, [&](double* part, index_t r0, index_t r1) {
    return backward_chunk_kernel<K>(grad_a, z, a, dz, part, r0, r1, fan_out, param);
  });
}

// dw = x^T @ dz and, unless dx is null, dx = dz @ w^T.
template <class T>
void weight_and_input_grads(const T* dz, const T* x, const T* w, T* dx, T* dw, index_t n, index_t fan_in,
                            index_t fan_out) {
  gemm(true, false, fan_in, fan_out, n, T(1), x, fan_in, dz, fan_out, T(0), dw, fan_out);
  if (dx != nullptr)
    gemm(false, true, n, fan_in, fan_out, T(1), dz, fan_out, w, fan_out, T(0), dx, fan_in);
}

}  // namespace

// ---- entries ----

template <class T>
bool dense_forward(const T* x, const T* w, const T* b, T* z, T* a, index_t n, index_t fan_in,
                   index_t fan_out, int kind, T param) {
  gemm(false, false, n, fan_out, fan_in, T(1), x, fan_in, w, fan_out, T(0), z, fan_out);
  bool finite = true;
  with_act(static_cast<Act>(kind), [&](auto k) {
    constexpr Act K = decltype(k)::value;
    finite = forward_epilogue_launch<K>(b, z, K == Act::identity ? z : a, n, fan_out, param);
  });
  return finite;
}

template <class T>
bool dense_backward(const T* grad_a, const T* x, const T* w, const T* z, const T* a, T* dx, T* dw,
                    T* db, T* dz_work, index_t n, index_t fan_in, index_t fan_out, int kind,
                    T param) {
  const bool identity = static_cast<Act>(kind) == Act::identity;
  std::unique_ptr<T[]> owned;
  if (!identity && dz_work == nullptr) {
    owned.reset(new T[size_t(n * fan_out)]);
    dz_work = owned.get();
  }
  bool finite = true;
  with_act(static_cast<Act>(kind), [&](auto k) {
    finite = backward_epilogue_launch<decltype(k)::value>(grad_a, z, a, dz_work, db, n, fan_out,
                                                          param);
  });
  weight_and_input_grads(identity ? grad_a : dz_work, x, w, dx, dw, n, fan_in, fan_out);
  return finite;
}

template <class T>
bool dense_relu_dropout_forward(const T* x, const T* w, const T* b, T* y, index_t n, index_t fan_in,
                                index_t fan_out, const DropoutKey& key, T scale) {
  gemm(false, false, n, fan_out, fan_in, T(1), x, fan_in, w, fan_out, T(0), y, fan_out);
  const index_t count = n * fan_out;
  const index_t batches = (count + kDropoutBatchElems - 1) / kDropoutBatchElems;
  std::atomic<bool> finite{true};
  parallel_for(batches, kFusedGrainElems / kDropoutBatchElems, [&](index_t b0, index_t b1) {
    typename Finite<T>::Bits probes = 0;
    for_each_mask_stretch(count, b0, b1, key, [&](index_t e0, index_t len, const std::uint16_t* halves) {
      probes |= relu_dropout_forward_kernel(b, y, halves, e0, len, fan_out, key.threshold, scale);
    });
    if (!Finite<T>::ok(probes)) finite.store(false, std::memory_order_relaxed);
  });
  return finite.load();
}

template <class T>
bool dense_relu_dropout_backward(const T* grad_y, const T* x, const T* w, const T* y, T* dx, T* dw,
                                 T* db, T* dz_work, index_t n, index_t fan_in, index_t fan_out, T scale) {
  const index_t grain = std::max<index_t>(1, kFusedGrainElems / (kDenseBiasChunkRows * fan_out));
  const bool finite = bias_grad_launch(db, n, fan_out, grain, [&](double* part, index_t r0, index_t r1) {
    return relu_dropout_backward_chunk(grad_y, y, dz_work, part, r0, r1, fan_out, scale);
  });
  weight_and_input_grads(dz_work, x, w, dx, dw, n, fan_in, fan_out);
  return finite;
}

template bool dense_forward<float>(const float*, const float*, const float*, float*, float*,
                                   index_t, index_t, index_t, int, float);
template bool dense_forward<double>(const double*, const double*, const double*, double*, double*,
                                    index_t, index_t, index_t, int, double);
template bool dense_relu_dropout_forward<float>(const float*, const float*, const float*, float*, index_t,
                                                index_t, index_t, const DropoutKey&, float);
template bool dense_relu_dropout_forward<double>(const double*, const double*, const double*, double*, index_t,
                                                 index_t, index_t, const DropoutKey&, double);
template bool dense_relu_dropout_backward<float>(const float*, const float*, const float*, const float*, float*,
                                                 float*, float*, float*, index_t, index_t, index_t, float);
template bool dense_relu_dropout_backward<double>(const double*, const double*, const double*, const double*,
                                                  double*, double*, double*, double*, index_t, index_t, index_t,
                                                  double);
template bool dense_backward<float>(const float*, const float*, const float*, const float*,
                                    const float*, float*, float*, float*, float*, index_t, index_t,
                                    index_t, int, float);
template bool dense_backward<double>(const double*, const double*, const double*, const double*,
                                     const double*, double*, double*, double*, double*, index_t,
                                     index_t, index_t, int, double);

}  // namespace trainart::cpu
