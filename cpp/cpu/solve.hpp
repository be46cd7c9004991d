// Batched Cholesky factor-and-solve of many small symmetric positive-definite systems.
#pragma once

#include <cstdint>

#include "trainart/common.hpp"

namespace trainart::cpu {

// For each system s of the batch: x[s] = (A[s] + damping I)^-1 b[s], with a (batch, n, n)
// (only the lower triangle is read), b and x (batch, n, k), all row-major. The factorization
// runs in double for both dtypes. status[s] = 0 when solved, else j > 0 when the leading minor
// of order j is not positive definite (LAPACK's info), or -1 when its a or b holds NaN/inf
// (tested while the system is read, so the data is read once); a failed system's x is zeros.
template <class T>
void cholesky_solve(const T* a, const T* b, index_t batch, index_t n, index_t k, double damping,
                    T* x, std::int32_t* status);

}  // namespace trainart::cpu
