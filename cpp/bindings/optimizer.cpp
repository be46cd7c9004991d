// Bindings for the optimizer kernels (cpp/cpu/optimizer.hpp): one call per step updates every
// parameter tensor in place; the per-step scalars arrive as one dict (the StepScalars fields).
#include <string>
#include <vector>

#include "binders.hpp"
#include "checks.hpp"
#include "cpu/optimizer.hpp"

namespace trainart::bind {

namespace {

// The dict keys, in StepScalars order; every one is required, no other is accepted.
const char* const kRealKeys[] = {"lr", "grad_scale", "weight_decay", "param_decay", "beta1", "beta2", "alpha",
                                 "eps", "momentum", "dampening", "step_size", "bc2_sqrt", "bc2", "nadam_grad",
                                 "nadam_avg"};
const char* const kFlagKeys[] = {"nesterov", "amsgrad", "centered", "first_step"};

double real_field(const py::dict& d, const char* key) {
  if (!d.contains(key)) throw py::value_error(std::string("scalars is missing the key '") + key + "'");
  py::object v = d[key];
  if (py::isinstance<py::bool_>(v) || !(py::isinstance<py::float_>(v) || py::isinstance<py::int_>(v)))
    throw py::type_error(std::string("scalars['") + key + "'] must be a real number, got " +
                         std::string(py::str(py::type::of(v).attr("__name__"))));
  const double x = v.cast<double>();
  if (!std::isfinite(x)) throw py::value_error(std::string("scalars['") + key + "'] must be finite, got " + std::to_string(x));
  return x;
}

bool flag_field(const py::dict& d, const char* key) {
  if (!d.contains(key)) throw py::value_error(std::string("scalars is missing the key '") + key + "'");
  py::object v = d[key];
  if (!py::isinstance<py::bool_>(v))
    throw py::type_error(std::string("scalars['") + key + "'] must be a bool, got " +
                         std::string(py::str(py::type::of(v).attr("__name__"))));
  return v.cast<bool>();
}

// The dict converted once to the kernel's struct (doubles cast to T here, as the reference does).
template <class T>
math::StepScalars<T> step_scalars(const py::dict& d) {
  for (auto item : d) {
    const std::string key = py::str(item.first);
    bool known = false;
    for (const char* k : kRealKeys) known = known || key == k;
    for (const char* k : kFlagKeys) known = known || key == k;
    if (!known) throw py::value_error("scalars has an unknown key '" + key + "'");
  }
  math::StepScalars<T> s;
  T* fields[] = {&s.lr, &s.grad_scale, &s.weight_decay, &s.param_decay, &s.beta1, &s.beta2, &s.alpha, &s.eps,
                 &s.momentum, &s.dampening, &s.step_size, &s.bc2_sqrt, &s.bc2, &s.nadam_grad, &s.nadam_avg};
  for (size_t i = 0; i < sizeof(kRealKeys) / sizeof(kRealKeys[0]); ++i) *fields[i] = T(real_field(d, kRealKeys[i]));
  s.nesterov = flag_field(d, "nesterov");
  s.amsgrad = flag_field(d, "amsgrad");
  s.centered = flag_field(d, "centered");
  s.first_step = flag_field(d, "first_step");
  return s;
}

// A list (or tuple) argument; an ndarray or anything else is a TypeError (an array is a sequence
// of rows, which is not what a caller means).
std::vector<py::array> tensor_list(const py::object& obj, const char* name) {
  if (!py::isinstance<py::list>(obj) && !py::isinstance<py::tuple>(obj))
    throw py::type_error(std::string(name) + " must be a list of arrays, got " +
                         std::string(py::str(py::type::of(obj).attr("__name__"))));
  return array_list(obj.cast<py::sequence>(), name);
}

std::string item(const char* name, size_t i) { return std::string(name) + "[" + std::to_string(i) + "]"; }

// Checks one slot list against params (count, dtype, shape, writeable) and stores its pointers.
template <class T>
void gather_slot(std::vector<cpu::TensorSlots<T>>& out, const std::vector<py::array>& params, const py::object& obj,
                 const char* name, int slot, std::vector<py::array>& keep) {
  const auto arrays = tensor_list(obj, name);
  keep.insert(keep.end(), arrays.begin(), arrays.end());
  if (arrays.size() != params.size())
    throw py::value_error(std::string(name) + " must hold one array per parameter (" + std::to_string(params.size()) +
                          "), got " + std::to_string(arrays.size()));
  for (size_t i = 0; i < arrays.size(); ++i) {
    const std::string nm = item(name, i);
    py::array a = arrays[i];
    check_array<T>(a, nm.c_str(), true);
    if (shape_of(a) != shape_of(params[i]))
      throw py::value_error(nm + " must have the shape of params[" + std::to_string(i) + "] " + shape_str(params[i]) +
                            ", got " + shape_str(a));
    out[i].slot[slot] = static_cast<T*>(a.mutable_data());
  }
}

// params and grads checked and paired; the slots are filled by gather_slot.
template <class T>
std::vector<cpu::TensorSlots<T>> gather(const std::vector<py::array>& params, const py::object& grads_obj,
                                        std::vector<py::array>& keep) {
  const auto grads = tensor_list(grads_obj, "grads");
  keep.insert(keep.end(), grads.begin(), grads.end());
  if (grads.size() != params.size())
    throw py::value_error("grads must hold one array per parameter (" + std::to_string(params.size()) + "), got " +
                          std::to_string(grads.size()));
  std::vector<cpu::TensorSlots<T>> out(params.size());
  for (size_t i = 0; i < params.size(); ++i) {
    const std::string pn = item("params", i), gn = item("grads", i);
    py::array p = params[i], g = grads[i];
    check_array<T>(p, pn.c_str(), true);
    check_nonempty(p, pn.c_str());
    check_array<T>(g, gn.c_str());
    if (shape_of(g) != shape_of(p))
      throw py::value_error(gn + " must have the shape of " + pn + " " + shape_str(p) + ", got " + shape_str(g));
    out[i] = {static_cast<T*>(p.mutable_data()), static_cast<const T*>(g.data()), {nullptr, nullptr, nullptr},
              static_cast<index_t>(p.size())};
  }
  return out;
}

std::vector<py::array> param_list(const py::object& obj) {
  auto params = tensor_list(obj, "params");
  if (params.empty()) throw py::value_error("params must not be empty");
  return params;
}

// Shared body of every binding: dtype by params[0], checks, then the update without the GIL.
// `keep` holds a reference to every array so that none can be freed while the GIL is released.
template <class Fill, class Run>
void update(const py::object& params_obj, const py::object& grads, const py::dict& scalars, Fill fill, Run run) {
  const auto params = param_list(params_obj);
  dispatch_float(params[0], "params[0]", [&](auto tag) {
    using T = decltype(tag);
    const auto s = step_scalars<T>(scalars);
    std::vector<py::array> keep;
    auto tensors = gather<T>(params, grads, keep);
    fill(tensors, params, s, keep);
    py::gil_scoped_release release;
    run(tensors, s);
  });
}

const char* const kScalarsDoc =
    "`scalars` is a dict with every field of trainart::math::StepScalars (lr, grad_scale, weight_decay, "
    "param_decay, beta1, beta2, alpha, eps, momentum, dampening, step_size, bc2_sqrt, bc2, nadam_grad, "
    "nadam_avg: finite reals; nesterov, amsgrad, centered, first_step: bools), as made by "
    "trainart.reference.optimizer.step_scalars. Lists hold C-contiguous arrays of one float dtype; "
    "params and state are updated in place.";

}  // namespace

void bind_optimizer(py::module_& m) {
  m.def(
      "sgd_update",
      [](py::object params, py::object grads, py::object momentum_buffers, py::dict scalars) {
        update(params, grads, scalars,
               [&](auto& ts, const auto& ps, const auto& s, auto& keep) {
                 if (s.nesterov && (s.momentum <= 0 || s.dampening != 0))
                   throw py::value_error("nesterov needs momentum > 0 and dampening = 0");
                 if (s.momentum != 0) gather_slot(ts, ps, momentum_buffers, "momentum_buffers", 0, keep);
               },
               [](const auto& ts, const auto& s) { cpu::sgd_update(ts, s); });
      },
      py::arg("params"), py::arg("grads"), py::arg("momentum_buffers"), py::arg("scalars"),
      (std::string("SGD step (torch.optim.SGD) over every tensor; momentum_buffers is ignored when "
                   "scalars['momentum'] == 0. ") + kScalarsDoc).c_str());
  m.def(
      "adagrad_update",
      [](py::object params, py::object grads, py::object sums, py::dict scalars) {
        update(params, grads, scalars,
               [&](auto& ts, const auto& ps, const auto&, auto& keep) { gather_slot(ts, ps, sums, "sums", 0, keep); },
               [](const auto& ts, const auto& s) { cpu::adagrad_update(ts, s); });
      },
      py::arg("params"), py::arg("grads"), py::arg("sums"), py::arg("scalars"),
      (std::string("Adagrad step (torch.optim.Adagrad); scalars['lr'] is the decayed lr of this step. ") +
       kScalarsDoc).c_str());
  m.def(
      "rmsprop_update",
      [](py::object params, py::object grads, py::object square_avgs, py::object momentum_buffers,
         py::object grad_avgs, py::dict scalars) {
        update(params, grads, scalars,
               [&](auto& ts, const auto& ps, const auto& s, auto& keep) {
                 gather_slot(ts, ps, square_avgs, "square_avgs", 0, keep);
                 if (s.momentum > 0) gather_slot(ts, ps, momentum_buffers, "momentum_buffers", 1, keep);
                 if (s.centered) gather_slot(ts, ps, grad_avgs, "grad_avgs", 2, keep);
               },
               [](const auto& ts, const auto& s) { cpu::rmsprop_update(ts, s); });
      },
      py::arg("params"), py::arg("grads"), py::arg("square_avgs"), py::arg("momentum_buffers"),
      py::arg("grad_avgs"), py::arg("scalars"),
      (std::string("RMSprop step (torch.optim.RMSprop); momentum_buffers is ignored unless momentum > 0, "
                   "grad_avgs unless centered. ") + kScalarsDoc).c_str());
  m.def(
      "adam_update",
      [](py::object params, py::object grads, py::object exp_avgs, py::object exp_avg_sqs,
         py::object max_exp_avg_sqs, py::dict scalars) {
        update(params, grads, scalars,
               [&](auto& ts, const auto& ps, const auto& s, auto& keep) {
                 gather_slot(ts, ps, exp_avgs, "exp_avgs", 0, keep);
                 gather_slot(ts, ps, exp_avg_sqs, "exp_avg_sqs", 1, keep);
                 if (s.amsgrad) gather_slot(ts, ps, max_exp_avg_sqs, "max_exp_avg_sqs", 2, keep);
               },
               [](const auto& ts, const auto& s) { cpu::adam_update(ts, s); });
      },
      py::arg("params"), py::arg("grads"), py::arg("exp_avgs"), py::arg("exp_avg_sqs"), py::arg("max_exp_avg_sqs"),
      py::arg("scalars"),
      (std::string("Adam / AdamW step (torch.optim.Adam, AdamW: decoupled decay through "
                   "scalars['param_decay']); max_exp_avg_sqs is ignored unless amsgrad. ") + kScalarsDoc).c_str());
  m.def(
      "adamax_update",
      [](py::object params, py::object grads, py::object exp_avgs, py::object exp_infs, py::dict scalars) {
        update(params, grads, scalars,
               [&](auto& ts, const auto& ps, const auto&, auto& keep) {
                 gather_slot(ts, ps, exp_avgs, "exp_avgs", 0, keep);
                 gather_slot(ts, ps, exp_infs, "exp_infs", 1, keep);
               },
               [](const auto& ts, const auto& s) { cpu::adamax_update(ts, s); });
      },
      py::arg("params"), py::arg("grads"), py::arg("exp_avgs"), py::arg("exp_infs"), py::arg("scalars"),
      (std::string("Adamax step (torch.optim.Adamax). ") + kScalarsDoc).c_str());
  m.def(
      "nadam_update",
      [](py::object params, py::object grads, py::object exp_avgs, py::object exp_avg_sqs, py::dict scalars) {
        update(params, grads, scalars,
               [&](auto& ts, const auto& ps, const auto&, auto& keep) {
                 gather_slot(ts, ps, exp_avgs, "exp_avgs", 0, keep);
                 gather_slot(ts, ps, exp_avg_sqs, "exp_avg_sqs", 1, keep);
               },
               [](const auto& ts, const auto& s) { cpu::nadam_update(ts, s); });
      },
      py::arg("params"), py::arg("grads"), py::arg("exp_avgs"), py::arg("exp_avg_sqs"), py::arg("scalars"),
      (std::string("NAdam step (torch.optim.NAdam); the host carries mu_product in "
                   "scalars['nadam_grad'] and scalars['nadam_avg']. ") + kScalarsDoc).c_str());
}

}  // namespace trainart::bind
