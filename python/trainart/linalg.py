"""Linear algebra kernels: batched Cholesky solves of small SPD systems."""
