// OpenBLAS (0.3.27+) hands its parallel jobs to a caller-provided runner when one is set: the
// jobs of one GEMM synchronize with each other, so the runner must run all of them at once, one
// per thread, with thread numbers 0 .. numjobs - 1.
#include "cpu/blas_threads.hpp"

#include <cblas.h>

#include <cstddef>
#include <thread>
#include <vector>

#include "trainart/parallel.hpp"

namespace trainart::cpu {

#if defined(_OPENMP)
namespace {

// Job 0 on the calling thread, the others on plain threads at once: for when OpenMP cannot
// give a team of numjobs (running the jobs one after another would deadlock on their
// synchronization).
void run_on_plain_threads(openblas_dojob_callback dojob, int numjobs, std::size_t elsize, char* jobs,
                          int dojob_data) {
  std::vector<std::thread> others;
  for (int t = 1; t < numjobs; ++t) others.emplace_back([=] { dojob(t, jobs + std::size_t(t) * elsize, dojob_data); });
  dojob(0, jobs, dojob_data);
  for (auto& th : others) th.join();
}

void run_jobs(int /*sync: always wait*/, openblas_dojob_callback dojob, int numjobs, std::size_t elsize,
              void* jobdata, int dojob_data) {
  char* jobs = static_cast<char*>(jobdata);
  if (numjobs <= 1) {
    if (numjobs == 1) dojob(0, jobs, dojob_data);
    return;
  }
  // No nested team; and none in a forked child, where GNU OpenMP would wait for threads that
  // were not copied.
  if (omp_in_parallel() || forked_child().load())
    return run_on_plain_threads(dojob, numjobs, elsize, jobs, dojob_data);
#if defined(TRAINART_HAS_MXCSR)
  const unsigned csr = _mm_getcsr();  // the caller's FP mode (DenormalsAreZero), as parallel_for
#endif
#pragma omp parallel num_threads(numjobs)
  {
#if defined(TRAINART_HAS_MXCSR)
    const unsigned saved = _mm_getcsr();
    _mm_setcsr(csr);
#endif
    const int t = omp_get_thread_num();
    if (omp_get_num_threads() == numjobs) {
      dojob(t, jobs + std::size_t(t) * elsize, dojob_data);
    } else if (t == 0) {  // a smaller team than asked for (a thread limit)
      run_on_plain_threads(dojob, numjobs, elsize, jobs, dojob_data);
    }
#if defined(TRAINART_HAS_MXCSR)
    _mm_setcsr(saved);
#endif
  }
}

}  // namespace

void use_openmp_for_blas() {
  omp_set_dynamic(0);  // a team of exactly the jobs' size
  scipy_openblas_set_threads_callback_function(run_jobs);
}
#else
void use_openmp_for_blas() {}
#endif

}  // namespace trainart::cpu
