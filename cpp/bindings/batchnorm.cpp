// Bindings for the batchnorm kernels (cpp/cpu/batchnorm.hpp): checks, then the GIL-free kernel.
#include <cmath>
#include <string>

#include "binders.hpp"
#include "checks.hpp"
#include "cpu/batchnorm.hpp"

namespace trainart::bind {

namespace {

void check_eps(double eps) {
  if (!std::isfinite(eps) || !(eps > 0.0))
    throw py::value_error("eps must be finite and > 0, got " + std::to_string(eps));
}

// x (n, f) of T, non-empty; every named vector (f,) of T. Returns f.
template <class T>
index_t check_rows_and_vectors(const py::array& x, const char* x_name,
                               std::initializer_list<std::pair<const py::array*, const char*>> vecs) {
  check_array<T>(x, x_name);
  check_shape(x, x_name, {-1, -1});
  check_nonempty(x, x_name);
  const py::ssize_t f = x.shape(1);
  for (const auto& [arr, name] : vecs) {
    check_same_dtype(x, x_name, *arr, name);
    check_array<T>(*arr, name);
    check_shape(*arr, name, {f});
  }
  return f;
}

}  // namespace

void bind_batchnorm(py::module_& m) {
  m.def(
      "batchnorm_forward_train",
      [](py::array x, py::array gamma, py::array beta, py::array running_mean,
         py::array running_var, double momentum, double eps) {
        return dispatch_float(x, "x", [&](auto tag) -> py::tuple {
          using T = decltype(tag);
          const index_t f = check_rows_and_vectors<T>(
              x, "x", {{&gamma, "gamma"}, {&beta, "beta"}, {&running_mean, "running_mean"},
                       {&running_var, "running_var"}});
          T* rm = out_ptr<T>(running_mean, "running_mean");
          T* rv = out_ptr<T>(running_var, "running_var");
          const index_t n = x.shape(0);
          if (n < 2)
            throw py::value_error("x must have at least 2 rows in training (the running variance is "
                                  "unbiased, n / (n - 1)), got " + std::to_string(n));
          if (!std::isfinite(momentum) || momentum < 0.0 || momentum > 1.0)
            throw py::value_error("momentum must be in [0, 1], got " + std::to_string(momentum));
          check_eps(eps);
          py::array_t<T> y({n, f}), mean(f), invstd(f);
          // Every pointer taken while the GIL is held: the checks behind in_ptr touch Python objects.
          const T* xp = in_ptr<T>(x, "x");
          const T* gp = in_ptr<T>(gamma, "gamma");
          const T* bp = in_ptr<T>(beta, "beta");
          T* yp = y.mutable_data();
          T* mp = mean.mutable_data();
          T* ip = invstd.mutable_data();
          {
            py::gil_scoped_release release;
            cpu::batchnorm_forward_train<T>(xp, n, f, gp, bp, rm, rv, momentum, eps, yp, mp, ip);
          }
          return py::make_tuple(y, mean, invstd);
        });
      },
      py::arg("x"), py::arg("gamma"), py::arg("beta"), py::arg("running_mean"),
      py::arg("running_var"), py::arg("momentum"), py::arg("eps"),
      "Training batch norm of x (n, f): returns (y, mean, invstd) with batch mean, invstd = "
      "1/sqrt(biased var + eps), y = gamma (x - mean) invstd + beta; updates running_mean and "
      "running_var in place as (1 - momentum) running + momentum stat (unbiased variance).");

  m.def(
      "batchnorm_forward_infer",
      [](py::array x, py::array gamma, py::array beta, py::array running_mean,
         py::array running_var, double eps) {
        return dispatch_float(x, "x", [&](auto tag) -> py::array {
          using T = decltype(tag);
          const index_t f = check_rows_and_vectors<T>(
              x, "x", {{&gamma, "gamma"}, {&beta, "beta"}, {&running_mean, "running_mean"},
                       {&running_var, "running_var"}});
          check_eps(eps);
          const T* rv = in_ptr<T>(running_var, "running_var");
          // A negative variance would give NaN through sqrt: refuse it before any work.
          for (index_t j = 0; j < f; ++j)
            if (!(double(rv[j]) + eps > 0.0))
              throw py::value_error("running_var + eps must be > 0 (running_var[" + std::to_string(j) + "])");
          const index_t n = x.shape(0);
          py::array_t<T> y({n, f});
          const T* xp = in_ptr<T>(x, "x");
          const T* gp = in_ptr<T>(gamma, "gamma");
          const T* bp = in_ptr<T>(beta, "beta");
          const T* rm = in_ptr<T>(running_mean, "running_mean");
          T* yp = y.mutable_data();
          {
            py::gil_scoped_release release;
            cpu::batchnorm_forward_infer<T>(xp, n, f, gp, bp, rm, rv, eps, yp);
          }
          return y;
        });
      },
      py::arg("x"), py::arg("gamma"), py::arg("beta"), py::arg("running_mean"),
      py::arg("running_var"), py::arg("eps"),
      "Inference batch norm of x (n, f): y = gamma (x - running_mean) / sqrt(running_var + eps) + beta.");

  m.def(
      "batchnorm_backward",
      [](py::array dy, py::array x, py::array gamma, py::array mean, py::array invstd) {
        return dispatch_float(x, "x", [&](auto tag) -> py::tuple {
          using T = decltype(tag);
          const index_t f = check_rows_and_vectors<T>(
              x, "x", {{&gamma, "gamma"}, {&mean, "mean"}, {&invstd, "invstd"}});
          check_same_dtype(x, "x", dy, "dy");
          check_array<T>(dy, "dy");
          check_shape(dy, "dy", {x.shape(0), f});
          const index_t n = x.shape(0);
          py::array_t<T> dx({n, f}), dgamma(f), dbeta(f);
          const T* dyp = in_ptr<T>(dy, "dy");
          const T* xp = in_ptr<T>(x, "x");
          const T* gp = in_ptr<T>(gamma, "gamma");
          const T* mp = in_ptr<T>(mean, "mean");
          const T* ip = in_ptr<T>(invstd, "invstd");
          T* dxp = dx.mutable_data();
          T* dgp = dgamma.mutable_data();
          T* dbp = dbeta.mutable_data();
          {
            py::gil_scoped_release release;
            cpu::batchnorm_backward<T>(dyp, xp, n, f, gp, mp, ip, dxp, dgp, dbp);
          }
          return py::make_tuple(dx, dgamma, dbeta);
        });
      },
      py::arg("dy"), py::arg("x"), py::arg("gamma"), py::arg("mean"), py::arg("invstd"),
      "Training batch-norm backward: returns (dx, dgamma, dbeta) with dbeta = sum dy, dgamma = "
      "sum dy xhat, dx = gamma invstd / n (n dy - dbeta - xhat dgamma), xhat = (x - mean) invstd.");
}

}  // namespace trainart::bind
