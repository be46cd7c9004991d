// Bindings for the thread pools: ours (OpenMP) and OpenBLAS's, always set together.
#include <pthread.h>

#include <atomic>
#include <stdexcept>
#include <string>

#include "binders.hpp"
#include "cpu/blas_threads.hpp"
#include "checks.hpp"
#include "trainart/blas.hpp"
#include "trainart/parallel.hpp"

namespace trainart::bind {

namespace py = pybind11;

namespace {

// More threads than any machine trainart targets has cores (trainart.MAX_THREADS): libgomp ends
// the process when it cannot make the threads it was asked for.
constexpr int kMaxThreads = 1024;

// In a child made by fork() after this module loaded: GNU OpenMP cannot start a team in a child
// forked from a process whose team had started (the first parallel loop waits forever for
// threads that were not copied), so such a child runs trainart's loops on its calling thread.
// trainart._native also sets OpenMP's and OpenBLAS's own counts to 1 from Python's fork hook.
void after_fork_in_child() {
  forked_child().store(true);
  thread_setting().store(1);
}

}  // namespace

void bind_runtime(py::module_& m) {
  cpu::use_openmp_for_blas();
  static const int registered = pthread_atfork(nullptr, nullptr, &after_fork_in_child);  // once per process
  if (registered != 0) throw std::runtime_error("pthread_atfork failed: " + std::to_string(registered));
  m.def(
      "set_num_threads",
      [](int n) {
        if (n < 1) throw py::value_error("n must be >= 1, got " + std::to_string(n));
        if (n > kMaxThreads)
          throw py::value_error("n must be <= " + std::to_string(kMaxThreads) + ", got " + std::to_string(n));
        if (n > 1 && forked_child().load())
          throw std::runtime_error("this process was forked from one that had loaded trainart, and GNU OpenMP "
                                   "cannot start threads after a fork: it runs trainart on one thread. For "
                                   "parallel children use multiprocessing's 'spawn' or 'forkserver' start method");
        thread_setting() = n;  // for every thread (OpenMP's own setting is the caller's only)
#if defined(_OPENMP)
        omp_set_num_threads(n);
#endif
        scipy_openblas_set_num_threads(n);
      },
      py::arg("n"), "Set the threads of trainart's loops and of its OpenBLAS GEMMs.");
  m.attr("MAX_THREADS") = kMaxThreads;
  m.def(
      "in_forked_child", []() { return forked_child().load(); },
      "Whether this process was forked after the module loaded (it then runs on one thread).");
  m.def(
      "get_num_threads", []() { return max_threads(); },
      "Threads trainart's own loops use.");
  m.def(
      "get_blas_num_threads", []() { return scipy_openblas_get_num_threads(); },
      "Threads OpenBLAS uses for GEMM.");
  m.def(
      "has_openmp",
      []() {
#if defined(_OPENMP)
        return true;
#else
        return false;
#endif
      },
      "Whether the module was built with OpenMP.");
  m.def(
      "gemm",
      [](py::array a, py::array b, py::array out, bool trans_a, bool trans_b) {
        dispatch_float(a, "a", [&](auto tag) {
          using T = decltype(tag);
          check_array<T>(a, "a");
          check_array<T>(b, "b");
          check_array<T>(out, "out", true);
          check_shape(a, "a", {-1, -1});
          check_shape(b, "b", {-1, -1});
          const index_t m = trans_a ? a.shape(1) : a.shape(0), k = trans_a ? a.shape(0) : a.shape(1);
          const index_t n = trans_b ? b.shape(0) : b.shape(1);
          if ((trans_b ? b.shape(1) : b.shape(0)) != k) throw py::value_error("b: inner dimensions of a and b differ");
          check_shape(out, "out", {m, n});
          check_blas_dims(a, "a");
          check_blas_dims(b, "b");
          check_not_overlapping(out, "out", a, "a");
          check_not_overlapping(out, "out", b, "b");
          py::gil_scoped_release release;
          gemm(trans_a, trans_b, m, n, k, T(1), static_cast<const T*>(a.data()), a.shape(1),
               static_cast<const T*>(b.data()), b.shape(1), T(0), static_cast<T*>(out.mutable_data()), n);
        });
      },
      py::arg("a"), py::arg("b"), py::arg("out"), py::arg("trans_a") = false, py::arg("trans_b") = false,
      "out = op(a) @ op(b) with OpenBLAS: the GEMM floor the benchmarks compare against.");
}

}  // namespace trainart::bind
