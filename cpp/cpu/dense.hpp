// Dense layer kernels: forward z = x @ w + b, a = f(z) and its backward, each one GEMM call per
// product plus one fused elementwise pass (bias + activation, or activation derivative + db).
#pragma once

#include "trainart/common.hpp"

namespace trainart::cpu {

// Rows per partial column sum of db: fixed, so db is bitwise identical at any thread count.
constexpr index_t kDenseBiasChunkRows = 64;

// z[n, fan_out] = x[n, fan_in] @ w[fan_in, fan_out] + b, a = f(z) for activation code `kind`.
// `a` may alias `z` (identity: nothing is applied beyond the bias). Returns whether every z is
// finite (checked inside the same pass): false means NaN/inf in x, w or b, or an overflow.
template <class T>
bool dense_forward(const T* x, const T* w, const T* b, T* z, T* a, index_t n, index_t fan_in,
                   index_t fan_out, int kind, T param);

// dz = grad_a * f'(z, a); db = column sums of dz (fixed 64-row chunks, added in order, in
// double); dw = x^T @ dz; dx = dz @ w^T unless dx is null. `dz_work` holds n * fan_out values
// (unused for identity, where dz is grad_a; null allocates it here). Returns whether grad_a, z
// and a are all finite (checked inside the dz pass; x and w are not looked at).
template <class T>
bool dense_backward(const T* grad_a, const T* x, const T* w, const T* z, const T* a, T* dx, T* dw,
                    T* db, T* dz_work, index_t n, index_t fan_in, index_t fan_out, int kind,
                    T param);

// Whether p[0..n) holds no NaN or inf: a branch-free scan of the exponent bits that vectorizes
// (about 10x faster than checking each element with std::isfinite). Used by the bindings.
template <class T>
bool all_finite(const T* p, index_t n);

}  // namespace trainart::cpu
