// Batched Cholesky solve in double scratch: small n batch-interleaved (kLanes systems per
// vector op), larger n one system per iteration with a row-major right-looking Cholesky.
#include "cpu/solve.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "cpu/finite.hpp"
#include "trainart/parallel.hpp"

namespace trainart::cpu {

namespace {

// Flops per parallel task: below this the fork costs more than the work it spreads.
constexpr double kTaskFlops = 2.0e5;
// status of a system whose a or b holds NaN/inf (its x is zero; the binding raises on it).
constexpr std::int32_t kNonFinite = -1;
// Largest n solved batch-interleaved (see solve_lanes_kernel); above it one system at a time.
// Measured (1 thread, AVX-512 clone): n = 64 runs at 5.0 GFLOP/s interleaved vs 3.8 one by
// one; at n = 256 the interleaved scratch (4 MiB) leaves L2.
constexpr index_t kLanesMaxN = 64;

// ---- kernels ----------------------------------------------------------------------------

// u (n, n) row-major holds A's upper triangle on entry and U on exit. Returns 0, or j + 1
// when the j-th pivot is not a finite positive number (then u is partly overwritten).
TRAINART_SIMD_CLONES
int cholesky_upper_kernel(double* u, index_t n) {
  for (index_t j = 0; j < n; ++j) {
    double* rj = u + j * n;
    const double pivot = rj[j];
    // `!(pivot > 0)` also catches NaN; inf cannot be a pivot of a finite factor.
    if (!(pivot > 0.0) || !std::isfinite(pivot)) return int(j + 1);
    const double d = std::sqrt(pivot);
    const double inv = 1.0 / d;
    rj[j] = d;
    for (index_t c = j + 1; c < n; ++c) rj[c] *= inv;
    // Trailing update U[i, i:] -= U[j, i] U[j, i:]: an axpy over a contiguous row.
    for (index_t i = j + 1; i < n; ++i) {
      double* ri = u + i * n;
      const double s = rj[i];
      for (index_t c = i; c < n; ++c) ri[c] -= s * rj[c];
    }
  }
  return 0;
}

// Solves U^T U X = B in place (xs holds B on entry, X on exit), (n, k) row-major.
TRAINART_SIMD_CLONES
void cholesky_substitute_kernel(const double* u, index_t n, index_t k, double* xs) {
  if (k == 1) {
    // One right-hand side: the forward sweep is an axpy along row j of U, the backward one
    // a dot product along it.
    for (index_t j = 0; j < n; ++j) {
      const double* rj = u + j * n;
      const double v = xs[j] / rj[j];
      xs[j] = v;
      for (index_t i = j + 1; i < n; ++i) xs[i] -= rj[i] * v;
    }
    for (index_t j = n - 1; j >= 0; --j) {
      const double* rj = u + j * n;
      double s = 0.0;
#pragma omp simd reduction(+ : s)
      for (index_t i = j + 1; i < n; ++i) s += rj[i] * xs[i];
      xs[j] = (xs[j] - s) / rj[j];
    }
    return;
  }
  for (index_t j = 0; j < n; ++j) {
    const double* rj = u + j * n;
    double* xj = xs + j * k;
    const double inv = 1.0 / rj[j];
    for (index_t c = 0; c < k; ++c) xj[c] *= inv;
    for (index_t i = j + 1; i < n; ++i) {
      double* xi = xs + i * k;
      const double s = rj[i];
      for (index_t c = 0; c < k; ++c) xi[c] -= s * xj[c];
    }
  }
  for (index_t j = n - 1; j >= 0; --j) {
    const double* rj = u + j * n;
    double* xj = xs + j * k;
    for (index_t i = j + 1; i < n; ++i) {
      const double* xi = xs + i * k;
      const double s = rj[i];
      for (index_t c = 0; c < k; ++c) xj[c] -= s * xi[c];
    }
    const double inv = 1.0 / rj[j];
    for (index_t c = 0; c < k; ++c) xj[c] *= inv;
  }
}

// One system: transpose A's lower triangle into U's upper one, add damping, factor, solve.
template <class T>
std::int32_t solve_one_kernel(const T* a, const T* b, index_t n, index_t k, double damping,
                              double* u, double* xs, T* x) {
  if (!lower_triangle_finite(a, n) || !all_finite_serial(b, n * k)) {
    std::fill(x, x + n * k, T(0));
    return kNonFinite;
  }
  for (index_t i = 0; i < n; ++i)
    for (index_t j = 0; j <= i; ++j) u[j * n + i] = double(a[i * n + j]);
  for (index_t j = 0; j < n; ++j) u[j * n + j] += damping;
  const int info = cholesky_upper_kernel(u, n);
  if (info != 0) {
    std::fill(x, x + n * k, T(0));
    return info;
  }
  for (index_t i = 0; i < n * k; ++i) xs[i] = double(b[i]);
  cholesky_substitute_kernel(u, n, k, xs);
  for (index_t i = 0; i < n * k; ++i) x[i] = T(xs[i]);
  return 0;
}

// ---- batch-interleaved kernels (small n) ----------------------------------------------------
// For small n the loops above are too short to vectorize. Instead kLanes systems are stored
// interleaved, element (i, j) of lane l at [(i * n + j) * kLanes + l], and every scalar step
// of the algorithm runs on all lanes at once: each inner loop is one fixed-width vector op.

constexpr index_t kLanes = 8;


// Left-looking (Cholesky-Banachiewicz) factor L L^T of the lower triangle of u, then the two
// triangular sweeps on xs (n, k), all lane-wise. The dot products accumulate in a register
// block, so each multiply-add costs two loads and no store. invd (n lanes) holds 1 / L[i][i].
// A lane whose pivot fails records i + 1 in status and carries on with pivot 1 (its values
// are discarded by the caller), so the lanes stay in step.
TRAINART_SIMD_CLONES
void factor_solve_lanes_kernel(double* u, double* invd, double* xs, index_t n, index_t k,
                               std::int32_t* status) {
  for (index_t i = 0; i < n; ++i) {
    double* ri = u + i * n * kLanes;
    for (index_t j = 0; j <= i; ++j) {
      const double* rj = u + j * n * kLanes;
      double acc[kLanes];
#pragma omp simd
      for (index_t l = 0; l < kLanes; ++l) acc[l] = ri[j * kLanes + l];
      for (index_t q = 0; q < j; ++q) {
#pragma omp simd
        for (index_t l = 0; l < kLanes; ++l) acc[l] -= ri[q * kLanes + l] * rj[q * kLanes + l];
      }
      if (j < i) {
#pragma omp simd
        for (index_t l = 0; l < kLanes; ++l) ri[j * kLanes + l] = acc[l] * invd[j * kLanes + l];
        continue;
      }
      // Branch-free so the square roots and divisions of all lanes vectorize.
#pragma omp simd
      for (index_t l = 0; l < kLanes; ++l) {
        const double pivot = acc[l];
        const bool ok = pivot > 0.0 && pivot <= std::numeric_limits<double>::max();
        status[l] = (status[l] == 0 && !ok) ? std::int32_t(i + 1) : status[l];
        const double d = std::sqrt(status[l] == 0 ? pivot : 1.0);
        ri[i * kLanes + l] = d;
        invd[i * kLanes + l] = 1.0 / d;
      }
    }
  }
  for (index_t c = 0; c < k; ++c) {
    // L y = b: y[i] = (b[i] - sum_{q<i} L[i][q] y[q]) / L[i][i].
    for (index_t i = 0; i < n; ++i) {
      const double* ri = u + i * n * kLanes;
      double* yi = xs + (i * k + c) * kLanes;
      double acc[kLanes];
#pragma omp simd
      for (index_t l = 0; l < kLanes; ++l) acc[l] = yi[l];
      for (index_t q = 0; q < i; ++q) {
        const double* yq = xs + (q * k + c) * kLanes;
#pragma omp simd
        for (index_t l = 0; l < kLanes; ++l) acc[l] -= ri[q * kLanes + l] * yq[l];
      }
#pragma omp simd
      for (index_t l = 0; l < kLanes; ++l) yi[l] = acc[l] * invd[i * kLanes + l];
    }
    // L^T x = y: x[i] = (y[i] - sum_{q>i} L[q][i] x[q]) / L[i][i].
    for (index_t i = n - 1; i >= 0; --i) {
      double* xi = xs + (i * k + c) * kLanes;
      double acc[kLanes];
#pragma omp simd
      for (index_t l = 0; l < kLanes; ++l) acc[l] = xi[l];
      for (index_t q = i + 1; q < n; ++q) {
        const double* lqi = u + (q * n + i) * kLanes;
        const double* xq = xs + (q * k + c) * kLanes;
#pragma omp simd
        for (index_t l = 0; l < kLanes; ++l) acc[l] -= lqi[l] * xq[l];
      }
#pragma omp simd
      for (index_t l = 0; l < kLanes; ++l) xi[l] = acc[l] * invd[i * kLanes + l];
    }
  }
}

// Systems [s0, s0 + lanes) (lanes <= kLanes): interleave, factor, solve, scatter back. Unused
// lanes hold the identity with b = 0, and every lane does the same arithmetic in any group,
// so a system's result does not depend on its neighbours (or on the thread count).
template <class T>
void solve_lanes_kernel(const T* a, const T* b, index_t lanes, index_t n, index_t k,
                        double damping, double* u, double* invd, double* xs, T* x,
                        std::int32_t* status) {
  std::int32_t st[kLanes] = {};
  for (index_t l = 0; l < kLanes; ++l) {
    if (l >= lanes) {
      for (index_t i = 0; i < n * n; ++i) u[i * kLanes + l] = 0.0;
      for (index_t j = 0; j < n; ++j) u[(j * n + j) * kLanes + l] = 1.0;
      for (index_t i = 0; i < n * k; ++i) xs[i * kLanes + l] = 0.0;
      continue;
    }
    // The whole matrix is copied (contiguous reads); the factorization reads only j <= i.
    // Testing a system just before copying it leaves it in L1 for the copy: A is read from
    // memory once. (A probe summed inside the strided copy would be one serial add chain.)
    const T* al = a + l * n * n;
    const T* bl = b + l * n * k;
    if (!lower_triangle_finite(al, n) || !all_finite_serial(bl, n * k)) st[l] = kNonFinite;
    for (index_t i = 0; i < n * n; ++i) u[i * kLanes + l] = double(al[i]);
    for (index_t j = 0; j < n; ++j) u[(j * n + j) * kLanes + l] += damping;
    for (index_t i = 0; i < n * k; ++i) xs[i * kLanes + l] = double(bl[i]);
  }
  factor_solve_lanes_kernel(u, invd, xs, n, k, st);
  for (index_t l = 0; l < lanes; ++l) {
    T* xl = x + l * n * k;
    status[l] = st[l];
    for (index_t i = 0; i < n * k; ++i) xl[i] = st[l] == 0 ? T(xs[i * kLanes + l]) : T(0);
  }
}

}  // namespace

// ---- launcher + entry -------------------------------------------------------------------------

template <class T>
void cholesky_solve(const T* a, const T* b, index_t batch, index_t n, index_t k, double damping,
                    T* x, std::int32_t* status) {
  const double flops = double(n) * n * n / 3.0 + 2.0 * n * n * k;
  if (n <= kLanesMaxN) {
    // One task = kLanes systems; groups are fixed by the batch index, not by the threads.
    const index_t groups = (batch + kLanes - 1) / kLanes;
    const index_t grain = std::max<index_t>(1, index_t(kTaskFlops / (flops * kLanes)));
    parallel_for(groups, grain, [&](index_t lo, index_t hi) {
      std::vector<double> scratch(static_cast<size_t>((n * n + n + n * k) * kLanes));
      double* u = scratch.data();
      double* invd = u + n * n * kLanes;
      double* xs = invd + n * kLanes;
      for (index_t g = lo; g < hi; ++g) {
        const index_t s = g * kLanes;
        solve_lanes_kernel(a + s * n * n, b + s * n * k, std::min(kLanes, batch - s), n, k,
                           damping, u, invd, xs, x + s * n * k, status + s);
      }
    });
    return;
  }
  const index_t grain = std::max<index_t>(1, index_t(kTaskFlops / flops));
  parallel_for(batch, grain, [&](index_t lo, index_t hi) {
    std::vector<double> scratch(static_cast<size_t>(n * n + n * k));
    double* u = scratch.data();
    double* xs = u + n * n;
    for (index_t s = lo; s < hi; ++s)
      status[s] = solve_one_kernel(a + s * n * n, b + s * n * k, n, k, damping, u, xs, x + s * n * k);
  });
}

template void cholesky_solve<float>(const float*, const float*, index_t, index_t, index_t, double,
                                    float*, std::int32_t*);
template void cholesky_solve<double>(const double*, const double*, index_t, index_t, index_t,
                                     double, double*, std::int32_t*);

}  // namespace trainart::cpu
