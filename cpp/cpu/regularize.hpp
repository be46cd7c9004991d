// Weight penalties (Keras's l1/l2 convention) and the max-norm constraint of the engine's dense
// layers: one pass each, threaded, and bitwise the same at any thread count.
#pragma once

#include "trainart/common.hpp"

namespace trainart::cpu {

// dw += 2 l2 w, then dw += l1 sign(w) (each term only where its factor is nonzero, in that order,
// as the NumPy executor); returns l1 sum|w| + l2 sum w^2 of the same w, summed in double over
// fixed chunks of kNormChunk elements.
template <class T>
double add_penalty(const T* w, T* dw, index_t n, double l1, double l2);

// Each column of w (rows, cols) — a unit's incoming weights — rescaled to L2 norm <= cap; the
// norms are summed in T over the rows in order, as the NumPy executor's column sums.
template <class T>
void apply_max_norm(T* w, index_t rows, index_t cols, T cap);

}  // namespace trainart::cpu
