// Dense layer kernels: forward z = x @ w + b, a = f(z) and its backward, each one GEMM call per
// product plus one fused elementwise pass (bias + activation, or activation derivative + db).
#pragma once

#include "cpu/dropout.hpp"
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

// A relu layer whose output goes through dropout, as training runs the pair: one pass over the
// GEMM's output each way instead of two, and no mask regenerated for backward.
// Forward: y = keep ? relu(x @ w + b) * scale : +0, the mask of `key` over y's flat elements
// (the numbers dense_forward then dropout give). Returns whether every x @ w + b is finite.
template <class T>
bool dense_relu_dropout_forward(const T* x, const T* w, const T* b, T* y, index_t n, index_t fan_in,
                                index_t fan_out, const DropoutKey& key, T scale);

// Backward from grad_y and the forward's y: dz = y > 0 ? grad_y * scale : +0 (y > 0 exactly
// where the element was kept and relu's input was positive; scale > 0) into dz_work (n * fan_out
// values, not null), then db, dw, dx as dense_backward. Returns whether grad_y and y are finite.
template <class T>
bool dense_relu_dropout_backward(const T* grad_y, const T* x, const T* w, const T* y, T* dx, T* dw,
                                 T* db, T* dz_work, index_t n, index_t fan_in, index_t fan_out, T scale);

}  // namespace trainart::cpu
