// OpenBLAS's parallel GEMM jobs run on trainart's OpenMP team instead of OpenBLAS's own threads.
#pragma once

namespace trainart::cpu {

// Registers the OpenMP job runner with OpenBLAS (once, before its first parallel call). Without
// it OpenBLAS keeps its own worker threads, which spin for ~0.1 s after every GEMM and take a
// core from the elementwise loops between GEMMs. A no-op without OpenMP.
void use_openmp_for_blas();

}  // namespace trainart::cpu
