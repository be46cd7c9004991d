// Batch-normalization kernels: per-feature reductions over fixed (row chunk x column block)
// tiles, so sums are bitwise identical at any thread count, then elementwise passes.
#include "cpu/batchnorm.hpp"

#include <algorithm>
#include <vector>

#include "trainart/math/batchnorm.hpp"
#include "trainart/parallel.hpp"

namespace trainart::cpu {

namespace {

// Rows per reduction chunk depend on n only (never on the thread count). At most kMaxChunks
// chunks keeps the partial-sum buffer at kMaxChunks * f doubles for any n.
constexpr index_t kMinChunkRows = 64;
constexpr index_t kMaxChunks = 64;
// A column block's accumulators (kColBlock doubles per sum) stay in L1 while rows stream by.
constexpr index_t kColBlock = 256;
// Elements per task of the elementwise passes: below this a fork costs more than it saves.
constexpr index_t kElemGrain = 16384;

struct Tiling {
  index_t rows, chunks, blocks;
};

Tiling tiling(index_t n, index_t f) {
  const index_t rows = std::max(kMinChunkRows, (n + kMaxChunks - 1) / kMaxChunks);
  return {rows, (n + rows - 1) / rows, (f + kColBlock - 1) / kColBlock};
}

// ---- kernels: one tile of rows [r0, r1) x columns [c0, c1) ------------------------------
// Each sweep over the columns takes 4 rows, adding them to acc[j] one after another: the same
// additions in the same order as one row at a time, but acc[j] is loaded and stored once per 4
// rows instead of every row. acc is the partial-sum buffer, never an input: __restrict spares
// each row a run-time overlap test (needed when T is double) before the vector loop.

// acc[j] += x[i, j] over the tile's rows, in row order.
template <class T>
TRAINART_SIMD_CLONES void sum_tile_kernel(const T* __restrict x, index_t f, index_t r0, index_t r1, index_t c0,
                                          index_t c1, double* __restrict acc) {
  index_t i = r0;
  for (; i + 4 <= r1; i += 4) {
    const T* __restrict x0 = x + i * f;
    const T* __restrict x1 = x0 + f;
    const T* __restrict x2 = x1 + f;
    const T* __restrict x3 = x2 + f;
    for (index_t j = c0; j < c1; ++j) {
      double a = acc[j];
      a += double(x0[j]);
      a += double(x1[j]);
      a += double(x2[j]);
      a += double(x3[j]);
      acc[j] = a;
    }
  }
  for (; i < r1; ++i) {
    const T* __restrict row = x + i * f;
    for (index_t j = c0; j < c1; ++j) acc[j] += double(row[j]);
  }
}

// acc[j] += (x[i, j] - mean[j])^2: the second pass of the two-pass variance.
template <class T>
TRAINART_SIMD_CLONES void sqdev_tile_kernel(const T* __restrict x, index_t f, index_t r0, index_t r1, index_t c0,
                                            index_t c1, const double* __restrict mean, double* __restrict acc) {
  index_t i = r0;
  for (; i + 4 <= r1; i += 4) {
    const T* __restrict x0 = x + i * f;
    const T* __restrict x1 = x0 + f;
    const T* __restrict x2 = x1 + f;
    const T* __restrict x3 = x2 + f;
    for (index_t j = c0; j < c1; ++j) {
      const double m = mean[j];
      const double d0 = double(x0[j]) - m, d1 = double(x1[j]) - m;
      const double d2 = double(x2[j]) - m, d3 = double(x3[j]) - m;
      double a = acc[j];
      a += d0 * d0;
      a += d1 * d1;
      a += d2 * d2;
      a += d3 * d3;
      acc[j] = a;
    }
  }
  for (; i < r1; ++i) {
    const T* __restrict row = x + i * f;
    for (index_t j = c0; j < c1; ++j) {
      const double d = double(row[j]) - mean[j];
      acc[j] += d * d;
    }
  }
}

// dbeta[j] += dy, dgamma[j] += dy * xhat, xhat in T exactly as the forward formed it.
template <class T>
TRAINART_SIMD_CLONES void grad_tile_kernel(const T* __restrict dy, const T* __restrict x, index_t f, index_t r0,
                                           index_t r1, index_t c0, index_t c1, const T* __restrict mean,
                                           const T* __restrict invstd, double* __restrict acc_dbeta,
                                           double* __restrict acc_dgamma) {
  index_t i = r0;
  for (; i + 4 <= r1; i += 4) {
    const T* __restrict x0 = x + i * f;
    const T* __restrict x1 = x0 + f;
    const T* __restrict x2 = x1 + f;
    const T* __restrict x3 = x2 + f;
    const T* __restrict g0 = dy + i * f;
    const T* __restrict g1 = g0 + f;
    const T* __restrict g2 = g1 + f;
    const T* __restrict g3 = g2 + f;
    for (index_t j = c0; j < c1; ++j) {
      const T m = mean[j], s = invstd[j];
      const double e0 = double(g0[j]), e1 = double(g1[j]), e2 = double(g2[j]), e3 = double(g3[j]);
      const double h0 = double(math::bn_xhat(x0[j], m, s)), h1 = double(math::bn_xhat(x1[j], m, s));
      const double h2 = double(math::bn_xhat(x2[j], m, s)), h3 = double(math::bn_xhat(x3[j], m, s));
      double b = acc_dbeta[j], g = acc_dgamma[j];
      b += e0;
      g += e0 * h0;
      b += e1;
      g += e1 * h1;
      b += e2;
      g += e2 * h2;
      b += e3;
      g += e3 * h3;
      acc_dbeta[j] = b;
      acc_dgamma[j] = g;
    }
  }
  for (; i < r1; ++i) {
    const T* __restrict xr = x + i * f;
    const T* __restrict dyr = dy + i * f;
    for (index_t j = c0; j < c1; ++j) {
      const T xhat = math::bn_xhat(xr[j], mean[j], invstd[j]);
      acc_dbeta[j] += double(dyr[j]);
      acc_dgamma[j] += double(dyr[j]) * double(xhat);
    }
  }
}

// y = gamma (x - mean) invstd + beta over rows [r0, r1); the inner loop over features vectorizes.
template <class T>
TRAINART_SIMD_CLONES void affine_rows_kernel(const T* x, index_t f, index_t r0, index_t r1, const T* mean,
                        const T* invstd, const T* gamma, const T* beta, T* y) {
  for (index_t i = r0; i < r1; ++i) {
    const T* xr = x + i * f;
    T* yr = y + i * f;
    for (index_t j = 0; j < f; ++j)
      yr[j] = math::bn_affine(math::bn_xhat(xr[j], mean[j], invstd[j]), gamma[j], beta[j]);
  }
}

template <class T>
TRAINART_SIMD_CLONES void dx_rows_kernel(const T* dy, const T* x, index_t f, index_t r0, index_t r1, const T* mean,
                    const T* invstd, const T* scale, T nt, const T* dbeta, const T* dgamma,
                    T* dx) {
  for (index_t i = r0; i < r1; ++i) {
    const T* xr = x + i * f;
    const T* dyr = dy + i * f;
    T* dxr = dx + i * f;
    for (index_t j = 0; j < f; ++j) {
      const T xhat = math::bn_xhat(xr[j], mean[j], invstd[j]);
      dxr[j] = math::bn_dx(dyr[j], xhat, scale[j], nt, dbeta[j], dgamma[j]);
    }
  }
}

// ---- launchers ------------------------------------------------------------------------------

// Runs tile_fn(r0, r1, c0, c1, chunk) over every tile in parallel; each tile writes only its
// own chunk's row of the partial buffers.
template <class TileFn>
void tiles_launch(index_t n, index_t f, const Tiling& t, TileFn&& tile_fn) {
  const index_t tile_elems = t.rows * std::min(f, kColBlock);
  const index_t grain = std::max<index_t>(1, kElemGrain / std::max<index_t>(tile_elems, 1));
  parallel_for(t.chunks * t.blocks, grain, [&](index_t lo, index_t hi) {
    for (index_t tile = lo; tile < hi; ++tile) {
      const index_t c = tile / t.blocks, b = tile % t.blocks;
      const index_t r0 = c * t.rows, r1 = std::min(n, r0 + t.rows);
      const index_t c0 = b * kColBlock, c1 = std::min(f, c0 + kColBlock);
      tile_fn(r0, r1, c0, c1, c);
    }
  });
}

// out[j] = sum over chunks, in chunk order, of partial[c * f + j].
void combine_chunks(const std::vector<double>& partial, index_t chunks, index_t f, double* out) {
  for (index_t j = 0; j < f; ++j) out[j] = 0.0;
  for (index_t c = 0; c < chunks; ++c) {
    const double* p = partial.data() + c * f;
    for (index_t j = 0; j < f; ++j) out[j] += p[j];
  }
}

template <class Fn>
void rows_launch(index_t n, index_t f, Fn&& fn) {
  parallel_for(n, std::max<index_t>(1, kElemGrain / f), fn);
}

}  // namespace

// ---- entries --------------------------------------------------------------------------------

template <class T>
void batchnorm_forward_train(const T* x, index_t n, index_t f, const T* gamma, const T* beta,
                             T* running_mean, T* running_var, double momentum, double eps, T* y,
                             T* mean, T* invstd) {
  TRAINART_CHECK(n >= 2, "batchnorm training needs at least 2 rows (the unbiased variance divides by n - 1)");
  const Tiling t = tiling(n, f);
  std::vector<double> partial(size_t(t.chunks * f), 0.0);
  std::vector<double> mean_d(static_cast<size_t>(f)), var_d(static_cast<size_t>(f));

  tiles_launch(n, f, t, [&](index_t r0, index_t r1, index_t c0, index_t c1, index_t c) {
    sum_tile_kernel(x, f, r0, r1, c0, c1, partial.data() + c * f);
  });
  combine_chunks(partial, t.chunks, f, mean_d.data());
  for (index_t j = 0; j < f; ++j) mean_d[j] /= double(n);

  std::fill(partial.begin(), partial.end(), 0.0);
  tiles_launch(n, f, t, [&](index_t r0, index_t r1, index_t c0, index_t c1, index_t c) {
    sqdev_tile_kernel(x, f, r0, r1, c0, c1, mean_d.data(), partial.data() + c * f);
  });
  combine_chunks(partial, t.chunks, f, var_d.data());

  const double unbias = double(n) / double(n - 1);
  for (index_t j = 0; j < f; ++j) {
    const double var = var_d[j] / double(n);
    mean[j] = T(mean_d[j]);
    invstd[j] = T(math::bn_invstd(var, eps));
    running_mean[j] = T(math::bn_running(double(running_mean[j]), mean_d[j], momentum));
    running_var[j] = T(math::bn_running(double(running_var[j]), var * unbias, momentum));
  }
  rows_launch(n, f, [&](index_t r0, index_t r1) {
    affine_rows_kernel(x, f, r0, r1, mean, invstd, gamma, beta, y);
  });
}

template <class T>
void batchnorm_forward_infer(const T* x, index_t n, index_t f, const T* gamma, const T* beta,
                             const T* running_mean, const T* running_var, double eps, T* y) {
  std::vector<T> invstd(static_cast<size_t>(f));
  for (index_t j = 0; j < f; ++j) invstd[j] = T(math::bn_invstd(double(running_var[j]), eps));
  rows_launch(n, f, [&](index_t r0, index_t r1) {
    affine_rows_kernel(x, f, r0, r1, running_mean, invstd.data(), gamma, beta, y);
  });
}

template <class T>
void batchnorm_backward(const T* dy, const T* x, index_t n, index_t f, const T* gamma,
                        const T* mean, const T* invstd, T* dx, T* dgamma, T* dbeta) {
  const Tiling t = tiling(n, f);
  std::vector<double> part_b(size_t(t.chunks * f), 0.0), part_g(size_t(t.chunks * f), 0.0);
  std::vector<double> db(static_cast<size_t>(f)), dg(static_cast<size_t>(f));
  tiles_launch(n, f, t, [&](index_t r0, index_t r1, index_t c0, index_t c1, index_t c) {
    grad_tile_kernel(dy, x, f, r0, r1, c0, c1, mean, invstd, part_b.data() + c * f,
                     part_g.data() + c * f);
  });
  combine_chunks(part_b, t.chunks, f, db.data());
  combine_chunks(part_g, t.chunks, f, dg.data());

  std::vector<T> scale(static_cast<size_t>(f));
  for (index_t j = 0; j < f; ++j) {
    dbeta[j] = T(db[j]);
    dgamma[j] = T(dg[j]);
    scale[j] = T(double(gamma[j]) * double(invstd[j]) / double(n));
  }
  if (dx == nullptr) return;
  rows_launch(n, f, [&](index_t r0, index_t r1) {
    dx_rows_kernel(dy, x, f, r0, r1, mean, invstd, scale.data(), T(n), dbeta, dgamma, dx);
  });
}

#define TRAINART_INSTANTIATE(T)                                                               \
  template void batchnorm_forward_train<T>(const T*, index_t, index_t, const T*, const T*,   \
                                           T*, T*, double, double, T*, T*, T*);              \
  template void batchnorm_forward_infer<T>(const T*, index_t, index_t, const T*, const T*,   \
                                           const T*, const T*, double, T*);                  \
  template void batchnorm_backward<T>(const T*, const T*, index_t, index_t, const T*,        \
                                      const T*, const T*, T*, T*, T*);
TRAINART_INSTANTIATE(float)
TRAINART_INSTANTIATE(double)
#undef TRAINART_INSTANTIATE

}  // namespace trainart::cpu
