// Bindings for the loss kernels (cpp/cpu/loss.hpp).
#include "binders.hpp"
#include "checks.hpp"
#include "cpu/loss.hpp"

namespace trainart::bind {

namespace py = pybind11;

namespace {

// (n, k) logits with n, k >= 1; returns nothing, raises naming `logits`.
template <class T>
void check_logits(const py::array& logits) {
  check_array<T>(logits, "logits");
  check_shape(logits, "logits", {-1, -1});
  check_nonempty(logits, "logits");
}

// None or a finite, non-negative (n,) array of logits' dtype; returns its pointer or nullptr.
template <class T>
const T* weight_ptr(const py::object& weight, const py::array& logits) {
  if (weight.is_none()) return nullptr;
  if (!py::isinstance<py::array>(weight)) throw py::type_error("weight must be None or a numpy array");
  py::array w = weight.cast<py::array>();
  check_same_dtype(logits, "logits", w, "weight");
  const T* p = in_ptr<T>(w, "weight");
  check_shape(w, "weight", {logits.shape(0)});
  for (py::ssize_t i = 0; i < w.size(); ++i)
    if (!std::isfinite(p[i]) || p[i] < T(0))
      throw py::value_error("weight must be finite and >= 0, got " + std::to_string(double(p[i])) +
                            " at index " + std::to_string(i));
  return p;
}

}  // namespace

void bind_loss(py::module_& m) {
  m.def(
      "loss_value_and_grad",
      [](py::array logits, py::array target, int kind, double delta, py::object weight) {
        if (kind < 0 || kind >= math::kNumLosses)
          throw py::value_error("kind must be a loss code in [0, " + std::to_string(math::kNumLosses) +
                                "), got " + std::to_string(kind));
        if (!std::isfinite(delta) || !(delta > 0)) throw py::value_error("delta must be finite and > 0, got " + std::to_string(delta));
        return dispatch_float(logits, "logits", [&](auto tag) -> py::tuple {
          using T = decltype(tag);
          check_logits<T>(logits);
          check_same_dtype(logits, "logits", target, "target");
          check_array<T>(target, "target");
          check_shape(target, "target", {logits.shape(0), logits.shape(1)});
          const T* wp = weight_ptr<T>(weight, logits);
          const T* zp = static_cast<const T*>(logits.data());
          const T* tp = static_cast<const T*>(target.data());
          const index_t n = logits.shape(0), k = logits.shape(1);
          py::array_t<T> grad({n, k});
          T* gp = grad.mutable_data();
          double value;
          {
            py::gil_scoped_release release;
            value = cpu::loss_value_and_grad<T>(static_cast<math::Loss>(kind), zp, tp, wp, gp, n, k, T(delta));
          }
          return py::make_tuple(value, grad);
        });
      },
      py::arg("logits"), py::arg("target"), py::arg("kind"), py::arg("delta"), py::arg("weight"),
      "(value, grad) of loss code `kind` (trainart.reference.LOSS_CODES) for logits (n, k) and "
      "a float target of the same shape, in one pass. value is the mean over rows "
      "(cross_entropy) or over all n*k elements (the others), each row's term times weight[i] "
      "when weight (n,) is given; grad = d value / d logits. delta: huber's threshold.");
  m.def(
      "cross_entropy_labels",
      [](py::array logits, py::array labels, py::object weight) {
        return dispatch_float(logits, "logits", [&](auto tag) -> py::tuple {
          using T = decltype(tag);
          check_logits<T>(logits);
          if (!py::isinstance<py::array_t<std::int64_t>>(labels) || labels.dtype().kind() != 'i' ||
              labels.itemsize() != 8)
            throw py::type_error("labels must be an int64 array, got dtype " + std::string(py::str(labels.dtype())));
          if (!(labels.flags() & py::array::c_style)) throw py::value_error("labels must be C-contiguous");
          check_shape(labels, "labels", {logits.shape(0)});
          const index_t n = logits.shape(0), k = logits.shape(1);
          const auto* lp = static_cast<const std::int64_t*>(labels.data());
          for (index_t i = 0; i < n; ++i)
            if (lp[i] < 0 || lp[i] >= k)
              throw py::value_error("labels must lie in [0, " + std::to_string(k) + "), got " +
                                    std::to_string(lp[i]) + " at index " + std::to_string(i));
          const T* wp = weight_ptr<T>(weight, logits);
          const T* zp = static_cast<const T*>(logits.data());
          py::array_t<T> grad({n, k});
          T* gp = grad.mutable_data();
          double value;
          {
            py::gil_scoped_release release;
            value = cpu::cross_entropy_labels<T>(zp, lp, wp, gp, n, k);
          }
          return py::make_tuple(value, grad);
        });
      },
      py::arg("logits"), py::arg("labels"), py::arg("weight"),
      "(value, grad) of softmax cross-entropy for logits (n, k) and int64 labels (n,) in [0, k): "
      "the mean over rows of logsumexp(z_i) - z_i[labels_i], each times weight[i] when given; "
      "grad = d value / d logits.");
}

}  // namespace trainart::bind
