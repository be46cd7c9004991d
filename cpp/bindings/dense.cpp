// Bindings for the dense kernels (cpp/cpu/dense.hpp). NaN/inf in the inputs are rejected here
// (trainart.ops leaves that to the native backends): the kernels report non-finite values they
// read anyway in their fused pass, and only then are the inputs scanned to name the culprit, so
// a valid call pays for one scan of x and w in backward and nothing in forward.
#include <cmath>

#include "binders.hpp"
#include "checks.hpp"
#include "cpu/dense.hpp"
#include "trainart/math/activation.hpp"

namespace trainart::bind {

namespace py = pybind11;

namespace {

void check_kind_param(int kind, double param) {
  if (kind < 0 || kind >= math::kNumActs)
    throw py::value_error("kind must be an activation code in [0, " +
                          std::to_string(math::kNumActs) + "), got " + std::to_string(kind));
  if (!std::isfinite(param)) throw py::value_error("param must be finite, got " + std::to_string(param));
}

py::tuple dense_forward(py::array x, py::array w, py::array b, int kind, double param) {
  return dispatch_float(x, "x", [&](auto tag) -> py::tuple {
    using T = decltype(tag);
    check_array<T>(x, "x");
    check_array<T>(w, "w");
    check_array<T>(b, "b");
    check_shape(x, "x", {-1, -1});
    check_nonempty(x, "x");
    check_shape(w, "w", {x.shape(1), -1});
    check_nonempty(w, "w");
    check_shape(b, "b", {w.shape(1)});
    check_blas_dims(x, "x");
    check_blas_dims(w, "w");
    check_kind_param(kind, param);
    const index_t n = x.shape(0), fan_in = x.shape(1), fan_out = w.shape(1);
    py::array_t<T> z({n, fan_out});
    const bool identity = static_cast<math::Act>(kind) == math::Act::identity;
    py::array_t<T> a = identity ? z : py::array_t<T>({n, fan_out});
    const T* xp = static_cast<const T*>(x.data());
    const T* wp = static_cast<const T*>(w.data());
    const T* bp = static_cast<const T*>(b.data());
    T* zp = z.mutable_data();
    T* ap = a.mutable_data();
    bool finite;
    {
      py::gil_scoped_release release;
      finite = cpu::dense_forward<T>(xp, wp, bp, zp, ap, n, fan_in, fan_out, kind, T(param));
    }
    // Any NaN/inf in x, w or b reaches z through the GEMM (OpenBLAS skips no product, and
    // inf * 0 is NaN); a non-finite z from finite inputs is an overflow and is returned as is.
    if (!finite) {
      check_finite<T>(x, "x");
      check_finite<T>(w, "w");
      check_finite<T>(b, "b");
    }
    return py::make_tuple(a, z);
  });
}

py::tuple dense_backward(py::array grad_a, py::array x, py::array w, py::array z, py::array a,
                         int kind, double param, bool need_dx) {
  return dispatch_float(grad_a, "grad_a", [&](auto tag) -> py::tuple {
    using T = decltype(tag);
    check_array<T>(grad_a, "grad_a");
    check_array<T>(x, "x");
    check_array<T>(w, "w");
    check_array<T>(z, "z");
    check_array<T>(a, "a");
    check_shape(grad_a, "grad_a", {-1, -1});
    check_nonempty(grad_a, "grad_a");
    const index_t n = grad_a.shape(0), fan_out = grad_a.shape(1);
    check_shape(x, "x", {n, -1});
    check_nonempty(x, "x");
    const index_t fan_in = x.shape(1);
    check_shape(w, "w", {fan_in, fan_out});
    check_shape(z, "z", {n, fan_out});
    check_shape(a, "a", {n, fan_out});
    check_blas_dims(x, "x");
    check_blas_dims(w, "w");
    check_kind_param(kind, param);
    check_finite<T>(x, "x");
    check_finite<T>(w, "w");
    py::object dx = py::none();
    T* dxp = nullptr;
    if (need_dx) {
      py::array_t<T> arr({n, fan_in});
      dxp = arr.mutable_data();
      dx = arr;
    }
    py::array_t<T> dw({fan_in, fan_out});
    py::array_t<T> db(fan_out);
    const T* gp = static_cast<const T*>(grad_a.data());
    const T* xp = static_cast<const T*>(x.data());
    const T* wp = static_cast<const T*>(w.data());
    const T* zp = static_cast<const T*>(z.data());
    const T* ap = static_cast<const T*>(a.data());
    T* dwp = dw.mutable_data();
    T* dbp = db.mutable_data();
    bool finite;
    {
      py::gil_scoped_release release;
      finite = cpu::dense_backward<T>(gp, xp, wp, zp, ap, dxp, dwp, dbp, nullptr, n, fan_in,
                                      fan_out, kind, T(param));
    }
    if (!finite) {  // the dz pass read grad_a, z and a: say which one
      check_finite<T>(grad_a, "grad_a");
      check_finite<T>(z, "z");
      check_finite<T>(a, "a");
    }
    return py::make_tuple(dx, dw, db);
  });
}

}  // namespace

void bind_dense(py::module_& m) {
  m.def("dense_forward", &dense_forward, py::arg("x"), py::arg("w"), py::arg("b"), py::arg("kind"),
        py::arg("param"),
        "Dense layer forward: z = x @ w + b, a = f(z) for activation code `kind` (param: "
        "leaky_relu slope or elu alpha). x (n, fan_in), w (fan_in, fan_out), b (fan_out,), one "
        "float dtype, C-contiguous. Returns (a, z); for identity a is z (the same array).");
  m.def("dense_backward", &dense_backward, py::arg("grad_a"), py::arg("x"), py::arg("w"),
        py::arg("z"), py::arg("a"), py::arg("kind"), py::arg("param"), py::arg("need_dx"),
        "Dense layer backward: dz = grad_a * f'(z, a), db = sum_rows dz (fixed 64-row chunks, "
        "bitwise identical at any thread count), dw = x^T @ dz, dx = dz @ w^T. Returns "
        "(dx or None when need_dx is False, dw, db).");
}

}  // namespace trainart::bind
