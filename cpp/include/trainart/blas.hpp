// Typed row-major GEMM over the scipy-openblas32 CBLAS (symbols prefixed scipy_).
#pragma once

#include <cblas.h>

#include <climits>
#include <stdexcept>
#include <string>

#include "trainart/common.hpp"

namespace trainart {

// The largest matrix dimension (and leading dimension) the 32-bit BLAS takes.
constexpr index_t kBlasMaxDim = INT_MAX;

// std::length_error (a ValueError in Python) for a dimension past kBlasMaxDim: cast to the
// BLAS's int it would wrap (2**32 + 1 became 1, a silently wrong product) or turn negative
// (OpenBLAS printed an error and returned, leaving the output unwritten). Before any work:
// the bindings name the argument first; this guards every other path (the engine, hvp).
inline void check_blas_dims(index_t m, index_t n, index_t k, index_t lda, index_t ldb, index_t ldc) {
  for (const index_t d : {m, n, k, lda, ldb, ldc})
    if (d > kBlasMaxDim)
      throw std::length_error("a matrix dimension of " + std::to_string(d) + " exceeds the 32-bit BLAS limit (" +
                              std::to_string(kBlasMaxDim) + "): use fewer rows per batch or narrower layers");
}

// C[m,n] = alpha * op(A)[m,k] @ op(B)[k,n] + beta * C, all row-major.
inline void gemm(bool trans_a, bool trans_b, index_t m, index_t n, index_t k, float alpha,
                 const float* a, index_t lda, const float* b, index_t ldb, float beta, float* c,
                 index_t ldc) {
  check_blas_dims(m, n, k, lda, ldb, ldc);
  scipy_cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
                    trans_b ? CblasTrans : CblasNoTrans, blasint(m), blasint(n), blasint(k), alpha,
                    a, blasint(lda), b, blasint(ldb), beta, c, blasint(ldc));
}

inline void gemm(bool trans_a, bool trans_b, index_t m, index_t n, index_t k, double alpha,
                 const double* a, index_t lda, const double* b, index_t ldb, double beta,
                 double* c, index_t ldc) {
  check_blas_dims(m, n, k, lda, ldb, ldc);
  scipy_cblas_dgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
                    trans_b ? CblasTrans : CblasNoTrans, blasint(m), blasint(n), blasint(k), alpha,
                    a, blasint(lda), b, blasint(ldb), beta, c, blasint(ldc));
}

}  // namespace trainart
