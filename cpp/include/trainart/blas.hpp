// Typed row-major GEMM over the scipy-openblas32 CBLAS (symbols prefixed scipy_).
#pragma once

#include <cblas.h>

#include "trainart/common.hpp"

namespace trainart {

// C[m,n] = alpha * op(A)[m,k] @ op(B)[k,n] + beta * C, all row-major.
inline void gemm(bool trans_a, bool trans_b, index_t m, index_t n, index_t k, float alpha,
                 const float* a, index_t lda, const float* b, index_t ldb, float beta, float* c,
                 index_t ldc) {
  scipy_cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
                    trans_b ? CblasTrans : CblasNoTrans, blasint(m), blasint(n), blasint(k), alpha,
                    a, blasint(lda), b, blasint(ldb), beta, c, blasint(ldc));
}

inline void gemm(bool trans_a, bool trans_b, index_t m, index_t n, index_t k, double alpha,
                 const double* a, index_t lda, const double* b, index_t ldb, double beta,
                 double* c, index_t ldc) {
  scipy_cblas_dgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
                    trans_b ? CblasTrans : CblasNoTrans, blasint(m), blasint(n), blasint(k), alpha,
                    a, blasint(lda), b, blasint(ldb), beta, c, blasint(ldc));
}

}  // namespace trainart
