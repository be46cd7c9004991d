// Bindings for the optimizer kernels (cpp/cpu/optimizer.hpp): one call per step updates every
// parameter tensor in place; the per-step scalars arrive as one dict (the StepScalars fields).
#include <algorithm>
#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "binders.hpp"
#include "checks.hpp"
#include "cpu/optimizer.hpp"

namespace trainart::bind {

namespace {

// The dict keys, in StepScalars order; every one is required, no other is accepted.
const char* const kRealKeys[] = {"lr", "grad_scale", "weight_decay", "param_decay", "beta1", "beta2",
                                 "one_minus_beta1", "one_minus_beta2", "alpha", "one_minus_alpha", "eps",
                                 "momentum", "dampening", "one_minus_dampening", "step_size", "bc2_sqrt", "bc2",
                                 "nadam_grad", "nadam_avg"};
const char* const kFlagKeys[] = {"nesterov", "amsgrad", "centered", "first_step"};

[[noreturn]] void missing_key(const char* key) {
  throw py::value_error(std::string("scalars is missing the key '") + key + "'");
}

std::string type_name(PyObject* v) { return py::str(py::type::of(py::handle(v)).attr("__name__")); }

// The value of `key` in d (borrowed), looked up by an interned key object: no allocation, the
// key's hash cached. Null when absent.
PyObject* lookup(const py::dict& d, const py::str& key) {
  PyObject* v = PyDict_GetItemWithError(d.ptr(), key.ptr());
  if (v == nullptr && PyErr_Occurred()) throw py::error_already_set();
  return v;
}

double real_field(const py::dict& d, const char* key, const py::str& key_obj) {
  PyObject* v = lookup(d, key_obj);
  if (v == nullptr) missing_key(key);
  if (PyBool_Check(v) || !(PyFloat_Check(v) || PyLong_Check(v)))
    throw py::type_error(std::string("scalars['") + key + "'] must be a real number, got " + type_name(v));
  const double x = PyFloat_AsDouble(v);  // an int too large for a double raises OverflowError
  if (x == -1.0 && PyErr_Occurred()) {
    PyErr_Clear();
    throw py::value_error(std::string("scalars['") + key + "'] is too large");
  }
  if (!std::isfinite(x)) throw py::value_error(std::string("scalars['") + key + "'] must be finite, got " + std::to_string(x));
  return x;
}

bool flag_field(const py::dict& d, const char* key, const py::str& key_obj) {
  PyObject* v = lookup(d, key_obj);
  if (v == nullptr) missing_key(key);
  if (!PyBool_Check(v)) throw py::type_error(std::string("scalars['") + key + "'] must be a bool, got " + type_name(v));
  return v == Py_True;
}

constexpr size_t kReals = sizeof(kRealKeys) / sizeof(kRealKeys[0]);
constexpr size_t kFlags = sizeof(kFlagKeys) / sizeof(kFlagKeys[0]);

// The keys as interned Python strings, made once and never freed (a static py::object would be
// destroyed after the interpreter).
const std::vector<py::str>& key_objects() {
  static const auto* keys = [] {
    auto* k = new std::vector<py::str>();
    for (const char* key : kRealKeys) k->push_back(py::reinterpret_steal<py::str>(PyUnicode_InternFromString(key)));
    for (const char* key : kFlagKeys) k->push_back(py::reinterpret_steal<py::str>(PyUnicode_InternFromString(key)));
    return k;
  }();
  return *keys;
}

// The dict converted once to the kernel's struct (doubles cast to T here, as the reference does).
// Every key is required; a dict with more entries than keys names its first unknown one.
template <class T>
math::StepScalars<T> step_scalars(const py::dict& d) {
  if (static_cast<size_t>(PyDict_Size(d.ptr())) > kReals + kFlags) {
    for (auto item : d) {
      const std::string key = py::str(item.first);
      bool known = false;
      for (const char* k : kRealKeys) known = known || key == k;
      for (const char* k : kFlagKeys) known = known || key == k;
      if (!known) throw py::value_error("scalars has an unknown key '" + key + "'");
    }
  }
  const auto& keys = key_objects();
  math::StepScalars<T> s;
  T* fields[] = {&s.lr, &s.grad_scale, &s.weight_decay, &s.param_decay, &s.beta1, &s.beta2, &s.one_minus_beta1,
                 &s.one_minus_beta2, &s.alpha, &s.one_minus_alpha, &s.eps, &s.momentum, &s.dampening,
                 &s.one_minus_dampening, &s.step_size, &s.bc2_sqrt, &s.bc2, &s.nadam_grad, &s.nadam_avg};
  static_assert(sizeof(fields) / sizeof(fields[0]) == kReals, "one field per key");
  for (size_t i = 0; i < kReals; ++i) *fields[i] = T(real_field(d, kRealKeys[i], keys[i]));
  bool* flags[] = {&s.nesterov, &s.amsgrad, &s.centered, &s.first_step};
  for (size_t i = 0; i < kFlags; ++i) *flags[i] = flag_field(d, kFlagKeys[i], keys[kReals + i]);
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

// What an update holds while the GIL is released: a reference to every array (none can be
// freed meanwhile), and the argument name of each state slot (for the messages).
struct Kept {
  std::vector<py::array> arrays;
  std::array<const char*, 3> slot_names{};
};

// Checks one slot list against params (count, dtype, shape, writeable) and stores its pointers.
template <class T>
void gather_slot(std::vector<cpu::TensorSlots<T>>& out, const std::vector<py::array>& params, const py::object& obj,
                 const char* name, int slot, Kept& keep) {
  const auto arrays = tensor_list(obj, name);
  keep.arrays.insert(keep.arrays.end(), arrays.begin(), arrays.end());
  keep.slot_names[slot] = name;
  if (arrays.size() != params.size())
    throw py::value_error(std::string(name) + " must hold one array per parameter (" + std::to_string(params.size()) +
                          "), got " + std::to_string(arrays.size()));
  for (size_t i = 0; i < arrays.size(); ++i) {
    const ArgName nm(name, i);
    py::array a = arrays[i];
    check_array<T>(a, nm, true);
    if (!same_shape(a, params[i]))
      throw py::value_error(nm.str() + " must have the shape of params[" + std::to_string(i) + "] " +
                            shape_str(params[i]) + ", got " + shape_str(a));
    out[i].slot[slot] = static_cast<T*>(a.mutable_data());
  }
}

// params and grads checked and paired; the slots are filled by gather_slot.
template <class T>
std::vector<cpu::TensorSlots<T>> gather(const std::vector<py::array>& params, const py::object& grads_obj,
                                        Kept& keep) {
  const auto grads = tensor_list(grads_obj, "grads");
  keep.arrays.insert(keep.arrays.end(), grads.begin(), grads.end());
  if (grads.size() != params.size())
    throw py::value_error("grads must hold one array per parameter (" + std::to_string(params.size()) + "), got " +
                          std::to_string(grads.size()));
  std::vector<cpu::TensorSlots<T>> out(params.size());
  for (size_t i = 0; i < params.size(); ++i) {
    const ArgName pn("params", i), gn("grads", i);
    py::array p = params[i], g = grads[i];
    check_array<T>(p, pn, true);
    check_nonempty(p, pn);
    check_array<T>(g, gn);
    if (!same_shape(g, p))
      throw py::value_error(gn.str() + " must have the shape of " + pn.str() + " " + shape_str(p) + ", got " +
                            shape_str(g));
    out[i] = {static_cast<T*>(p.mutable_data()), static_cast<const T*>(g.data()), {nullptr, nullptr, nullptr},
              static_cast<index_t>(p.size())};
  }
  return out;
}

// No array an update writes (a parameter, a state slot) may share memory with another array of
// it: the kernels read each element's gradient and state and write its parameter and state
// once, through restrict pointers, so a gradient that is a view into a parameter, a slot that
// is another argument or a parameter listed twice would give results that depend on the order
// of the writes (and differ from the NumPy reference). Gradients, only read, may share memory
// with each other (one gradient for two parameters). The arrays are C-contiguous here: each is
// the byte range [data, data + size).
template <class T>
void check_disjoint(const std::vector<cpu::TensorSlots<T>>& tensors, const Kept& keep) {
  struct Span {
    std::uintptr_t lo, hi;
    int list;  // 0 params, 1 grads, 2 + q slot q
    size_t index;
  };
  std::vector<Span> spans;
  for (size_t i = 0; i < tensors.size(); ++i) {
    const std::uintptr_t bytes = sizeof(T) * static_cast<std::uintptr_t>(tensors[i].n);
    const auto add = [&](const void* p, int list) {
      const auto lo = reinterpret_cast<std::uintptr_t>(p);
      spans.push_back({lo, lo + bytes, list, i});
    };
    add(tensors[i].param, 0);
    add(tensors[i].grad, 1);
    for (int q = 0; q < 3; ++q)
      if (tensors[i].slot[q] != nullptr) add(tensors[i].slot[q], 2 + q);
  }
  std::sort(spans.begin(), spans.end(), [](const Span& a, const Span& b) { return a.lo < b.lo; });
  const auto name = [&](const Span& sp) {
    const char* list = sp.list == 0 ? "params" : sp.list == 1 ? "grads" : keep.slot_names[sp.list - 2];
    return ArgName(list, sp.index).str();
  };
  // Sweep in address order keeping the span that reaches furthest, of all and of the written
  // ones: a written span may touch no earlier span, a gradient no earlier written one.
  const Span* reach_any = nullptr;
  const Span* reach_written = nullptr;
  for (const Span& sp : spans) {
    const bool written = sp.list != 1;
    const Span* other = written ? reach_any : reach_written;
    if (other != nullptr && sp.lo < other->hi)
      throw py::value_error(name(*other) + " and " + name(sp) + " share memory: an array an update writes must "
                            "be its own (pass a copy)");
    if (reach_any == nullptr || sp.hi > reach_any->hi) reach_any = &sp;
    if (written && (reach_written == nullptr || sp.hi > reach_written->hi)) reach_written = &sp;
  }
}

std::vector<py::array> param_list(const py::object& obj) {
  auto params = tensor_list(obj, "params");
  if (params.empty()) throw py::value_error("params must not be empty");
  return params;
}

// Shared body of every binding: dtype by params[0], checks, then the update without the GIL.
template <class Fill, class Run>
void update(const py::object& params_obj, const py::object& grads, const py::dict& scalars, Fill fill, Run run) {
  const auto params = param_list(params_obj);
  dispatch_float(params[0], "params[0]", [&](auto tag) {
    using T = decltype(tag);
    const auto s = step_scalars<T>(scalars);
    Kept keep;
    auto tensors = gather<T>(params, grads, keep);
    fill(tensors, params, s, keep);
    check_disjoint(tensors, keep);
    py::gil_scoped_release release;
    run(tensors, s);
  });
}

const char* const kScalarsDoc =
    "`scalars` is a dict with every field of trainart::math::StepScalars (lr, grad_scale, weight_decay, "
    "param_decay, beta1, beta2, one_minus_beta1, one_minus_beta2, alpha, one_minus_alpha, eps, momentum, "
    "dampening, one_minus_dampening, step_size, bc2_sqrt, bc2, nadam_grad, nadam_avg: finite reals; "
    "nesterov, amsgrad, centered, first_step: bools), as made by "
    "trainart.reference.optimizer.step_scalars. Lists hold C-contiguous arrays of one float dtype; "
    "params and state are updated in place.";

}  // namespace

void bind_optimizer(py::module_& m) {
  m.def(
      "sgd_update",
      [](py::object params, py::object grads, py::object momentum_buffers, py::dict scalars) {
        update(params, grads, scalars,
               [&](auto& ts, const auto& ps, const auto& s, auto& keep) {
                 // momentum 0 at a step (a 1cycle at base_momentum=0) is a plain step, as torch's
                 if (s.nesterov && s.dampening != 0) throw py::value_error("nesterov needs dampening = 0");
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
