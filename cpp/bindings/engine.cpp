// Bindings for the CPU engine (cpp/cpu/engine.hpp): EngineF32 / EngineF64 classes that the CPU
// executor builds once per Trainer and calls once per epoch with the GIL released.
#include <array>
#include <atomic>
#include <chrono>
#include <functional>
#include <limits>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <type_traits>

#include "binders.hpp"
#include "checks.hpp"
#include "cpu/engine.hpp"
#include "cpu/hvp.hpp"
#include "trainart/math/activation.hpp"
#include "trainart/parallel.hpp"

namespace trainart::bind {

namespace py = pybind11;
using cpu::Batchable;
using cpu::Engine;
using cpu::EngineArrays;
using cpu::EngineSpec;
using cpu::OpKind;
using cpu::OpSpec;

namespace {

template <class V>
constexpr const char* kind_name() {
  if constexpr (std::is_same_v<V, bool>) return "a bool";
  else if constexpr (std::is_integral_v<V>) return "an int";
  else return "a number";
}

[[noreturn]] void wrong_type(py::handle h, const std::string& name, const char* want) {
  throw py::type_error(name + " must be " + want + ", got " + Py_TYPE(h.ptr())->tp_name);
}

// h as a V, an error naming `name` otherwise: pybind11's own errors name neither the argument
// nor the list item. An integer that V cannot hold is a ValueError, as an index out of range
// is; any other wrong type a TypeError. A list may come as a tuple; pybind11 would also turn
// any iterable into a list (a string into its characters) and call dict() on anything.
template <class V>
V cast_arg(py::handle h, const std::string& name) {
  if constexpr (std::is_same_v<V, py::list>) {
    if (!py::isinstance<py::list>(h) && !py::isinstance<py::tuple>(h)) wrong_type(h, name, "a list");
    return h.cast<py::list>();
  } else if constexpr (std::is_same_v<V, py::dict>) {
    if (!py::isinstance<py::dict>(h)) wrong_type(h, name, "a dict");
    return h.cast<py::dict>();
  } else {
    try {
      return h.cast<V>();
    } catch (const py::cast_error&) {
      if constexpr (std::is_integral_v<V> && !std::is_same_v<V, bool>) {
        if (PyIndex_Check(h.ptr()))
          throw py::value_error(name + " must be in [" + std::to_string(std::numeric_limits<V>::min()) + ", " +
                                std::to_string(std::numeric_limits<V>::max()) + "]");
      }
      wrong_type(h, name, kind_name<V>());
    }
  }
}

template <class V>
V get(const py::dict& d, const char* key, const char* where) {
  if (!d.contains(key)) throw py::value_error(std::string(where) + " is missing key '" + key + "'");
  return cast_arg<V>(d[key], std::string(where) + "['" + key + "']");
}

EngineSpec parse_spec(const py::dict& spec) {
  EngineSpec s;
  const auto ops = get<py::list>(spec, "ops", "spec");
  for (size_t i = 0; i < ops.size(); ++i) {
    const std::string where = "spec['ops'][" + std::to_string(i) + "]";
    const auto d = cast_arg<py::dict>(ops[i], where);
    OpSpec op;
    const int kind = get<int>(d, "kind", where.c_str());
    if (kind < 0 || kind > 3) throw py::value_error(where + "['kind'] must be 0..3, got " + std::to_string(kind));
    op.kind = static_cast<OpKind>(kind);
    op.width_in = get<index_t>(d, "width_in", where.c_str());
    op.width_out = get<index_t>(d, "width_out", where.c_str());
    op.act = get<int>(d, "act", where.c_str());
    if (op.act < 0 || op.act >= math::kNumActs) throw py::value_error(where + "['act'] is not an activation code");
    op.act_param = get<double>(d, "act_param", where.c_str());
    op.fused_dropout = get<bool>(d, "fused_dropout", where.c_str());
    op.w = get<index_t>(d, "w", where.c_str());
    op.b = get<index_t>(d, "b", where.c_str());
    op.l1 = get<double>(d, "l1", where.c_str());
    op.l2 = get<double>(d, "l2", where.c_str());
    op.max_norm = get<double>(d, "max_norm", where.c_str());
    op.trainable = get<bool>(d, "trainable", where.c_str());
    op.rate = get<double>(d, "rate", where.c_str());
    if (!(op.rate >= 0.0 && op.rate < 1.0)) throw py::value_error(where + "['rate'] must be in [0, 1)");
    op.layer = get<std::uint32_t>(d, "layer", where.c_str());
    op.buffer = get<index_t>(d, "buffer", where.c_str());
    op.momentum = get<double>(d, "momentum", where.c_str());
    op.eps = get<double>(d, "eps", where.c_str());
    if (op.width_in < 1 || op.width_out < 1) throw py::value_error(where + ": widths must be >= 1");
    if (!s.ops.empty() && s.ops.back().width_out != op.width_in)
      throw py::value_error(where + "['width_in'] does not match the previous op's width_out");
    if (op.kind != OpKind::dense && op.width_in != op.width_out)
      throw py::value_error(where + ": only dense ops change the width");
    s.ops.push_back(op);
  }
  if (s.ops.empty()) throw py::value_error("spec['ops'] must not be empty");
  for (size_t i = 0; i < s.ops.size(); ++i) {
    const OpSpec& op = s.ops[i];
    if (op.fused_dropout && !(op.kind == OpKind::dense && op.act == int(math::Act::relu) &&
                              i + 1 < s.ops.size() && s.ops[i + 1].kind == OpKind::dropout))
      throw py::value_error("spec['ops'][" + std::to_string(i) +
                            "]['fused_dropout'] needs a relu dense op followed by a dropout op");
  }
  s.loss = get<int>(spec, "loss", "spec");
  if (s.loss < 0 || s.loss > 4) throw py::value_error("spec['loss'] must be a loss code 0..4");
  s.loss_param = get<double>(spec, "loss_param", "spec");
  const auto o = get<py::dict>(spec, "opt", "spec");
  const int kind = get<int>(o, "kind", "spec['opt']");
  if (kind < 0 || kind > 5) throw py::value_error("spec['opt']['kind'] must be 0..5, got " + std::to_string(kind));
  s.opt.kind = static_cast<cpu::OptKind>(kind);
  s.opt.weight_decay = get<double>(o, "weight_decay", "spec['opt']");
  s.opt.beta1 = get<double>(o, "beta1", "spec['opt']");
  s.opt.beta2 = get<double>(o, "beta2", "spec['opt']");
  s.opt.alpha = get<double>(o, "alpha", "spec['opt']");
  s.opt.eps = get<double>(o, "eps", "spec['opt']");
  s.opt.momentum = get<double>(o, "momentum", "spec['opt']");
  s.opt.dampening = get<double>(o, "dampening", "spec['opt']");
  s.opt.lr_decay = get<double>(o, "lr_decay", "spec['opt']");
  s.opt.momentum_decay = get<double>(o, "momentum_decay", "spec['opt']");
  s.opt.nesterov = get<bool>(o, "nesterov", "spec['opt']");
  s.opt.amsgrad = get<bool>(o, "amsgrad", "spec['opt']");
  s.opt.centered = get<bool>(o, "centered", "spec['opt']");
  s.opt.decoupled = get<bool>(o, "decoupled", "spec['opt']");
  s.opt.maximize = get<bool>(o, "maximize", "spec['opt']");
  s.opt.cycled = get<int>(o, "cycled", "spec['opt']");
  const int clip = get<int>(spec, "clip", "spec");
  if (clip < 0 || clip > 3) throw py::value_error("spec['clip'] must be 0..3, got " + std::to_string(clip));
  s.clip = static_cast<cpu::ClipKind>(clip);
  s.clip_value = get<double>(spec, "clip_value", "spec");
  s.seed = get<std::uint64_t>(spec, "seed", "spec");
  s.inverted_dropout = get<bool>(spec, "inverted", "spec");
  s.raise_nonfinite = get<bool>(spec, "raise_nonfinite", "spec");
  return s;
}

// Which of a parameter's three state slots the optimizer's kernel reads at a step, given
// whether that step's momentum is nonzero (SGD and RMSprop read their momentum buffer only then).
std::array<bool, 3> used_slots(const cpu::OptSpec& o, bool momentum) {
  switch (o.kind) {
    case cpu::OptKind::sgd: return {momentum, false, false};
    case cpu::OptKind::adagrad: return {true, false, false};
    case cpu::OptKind::rmsprop: return {true, momentum, o.centered};
    case cpu::OptKind::adam: return {true, true, o.amsgrad};
    default: return {true, true, false};  // adamax, nadam
  }
}

// Raises unless every trainable parameter has each slot in `need` (the kernels dereference them).
void check_slots(const std::array<bool, 3>& need, const std::array<bool, 3>& present, const char* what) {
  for (int q = 0; q < 3; ++q)
    if (need[q] && !present[q])
      throw py::value_error(std::string(what) + ": the optimizer reads state slot " + std::to_string(q) +
                            " of every trainable parameter, and some have none");
}

// A stop test for Engine::train_epoch that lets Python's signal handlers run (Ctrl-C) while an
// epoch holds no GIL: at most every kSignalPoll it takes the GIL and runs them; when one raises,
// its exception goes to `raised` and the epoch stops before its next step. Called on the
// thread that released the GIL; from other threads Python runs no handlers and nothing stops.
constexpr auto kSignalPoll = std::chrono::milliseconds(50);

// The floating-point mode (MXCSR) of the thread at construction, put back for a scope and the
// mode found on entry restored at its end. The epoch runs with flush-to-zero and
// denormals-are-zero (DenormalsAreZero); a Python signal handler run from inside it must compute
// as everywhere else in Python, subnormals kept.
class CallerFpMode {
 public:
#if defined(TRAINART_HAS_MXCSR)
  CallerFpMode() : caller_(_mm_getcsr()) {}
#endif
  // Runs fn in the caller's mode, then puts back the mode it was called in.
  template <class Fn>
  auto run(Fn&& fn) const {
#if defined(TRAINART_HAS_MXCSR)
    struct Restore {
      unsigned mode;
      ~Restore() { _mm_setcsr(mode); }
    } restore{_mm_getcsr()};
    _mm_setcsr(caller_);
#endif
    return fn();
  }

 private:
#if defined(TRAINART_HAS_MXCSR)
  unsigned caller_ = 0;
#endif
};

// Runs the Python signal handlers due (the GIL held); true with what one raised in `raised`.
bool run_signal_handlers(py::object& raised, const CallerFpMode& fp) {
  if (fp.run([] { return PyErr_CheckSignals(); }) == 0) return false;
  PyObject *type, *value, *trace;
  PyErr_Fetch(&type, &value, &trace);
  PyErr_NormalizeException(&type, &value, &trace);
  if (trace != nullptr) PyException_SetTraceback(value, trace);
  raised = py::reinterpret_steal<py::object>(value);
  Py_XDECREF(type);
  Py_XDECREF(trace);
  return true;
}

// Made before the epoch sets its floating-point mode: handlers run in the caller's.
std::function<bool()> signal_poll(py::object& raised) {
  return [&raised, last = std::chrono::steady_clock::now(), fp = CallerFpMode()]() mutable {
    const auto now = std::chrono::steady_clock::now();
    if (now - last < kSignalPoll) return false;
    last = now;
    py::gil_scoped_acquire gil;
    return run_signal_handlers(raised, fp);
  };
}

// Holds the engine and references to every array whose memory it updates in place.
template <class T>
struct PyEngine {
  std::unique_ptr<Engine<T>> engine;
  std::mutex busy;  // one call at a time: every entry shares the engine's scratch (see Exclusive)
  std::atomic<std::thread::id> owner{};  // the thread running a call, if any
  std::vector<py::array> keep;
  std::vector<index_t> param_sizes;
  index_t in_width = 0, out_width = 0;
  int loss = 0;
  EngineSpec spec;         // a copy for hvp, which runs outside the engine
  std::vector<T*> params;  // the engine's parameter arrays (kept alive by `keep`)
  std::array<bool, 3> slots_present{true, true, true};  // slot q given for every trainable parameter
  cpu::HvpWork hvp_work;
};

// Runs a call with the GIL released and the engine to itself. Python threads may use one
// Trainer at once (a model served from a threaded server, fit beside predict), and every entry
// resizes and writes the same scratch buffers: the calls take turns. The GIL goes first, so a
// call waiting here holds nothing the running one needs (an epoch takes the GIL to poll for
// signals). A call from the thread that is running one (a signal handler that uses the
// Trainer mid-epoch) would wait for itself: it raises instead.
class Exclusive {
 public:
  Exclusive(std::mutex& busy, std::atomic<std::thread::id>& owner)
      : owner_((refuse_reentry(owner), owner)), lock_(busy) {
    owner_ = std::this_thread::get_id();
  }
  ~Exclusive() { owner_ = std::thread::id(); }
  Exclusive(const Exclusive&) = delete;
  Exclusive& operator=(const Exclusive&) = delete;

 private:
  static void refuse_reentry(const std::atomic<std::thread::id>& owner) {
    if (owner.load() == std::this_thread::get_id())
      throw std::runtime_error("this Trainer's engine is busy in this thread (a call from a signal handler "
                               "during one of its epochs?): call it after the epoch");
  }
  std::atomic<std::thread::id>& owner_;
  py::gil_scoped_release release_;
  std::lock_guard<std::mutex> lock_;
};

template <class T>
constexpr const char* engine_name() {
  return sizeof(T) == 4 ? "EngineF32" : "EngineF64";
}

// The engine behind a method's self. Every method takes self as a handle and calls this first:
// an instance made by __new__ alone has storage that no constructor ran on, and a method that
// took a PyEngine<T>& would read it (garbage widths, a crash).
template <class T>
PyEngine<T>& engine_of(py::handle self) {
  if (!py::isinstance<PyEngine<T>>(self))
    throw py::type_error(std::string("self must be an ") + engine_name<T>() + ", got " + Py_TYPE(self.ptr())->tp_name);
  auto* inst = reinterpret_cast<py::detail::instance*>(self.ptr());
  if (!inst->get_value_and_holder().holder_constructed())
    throw py::type_error(std::string("this ") + engine_name<T>() + " was not initialized: construct it with " +
                         engine_name<T>() + "(...)");
  return self.cast<PyEngine<T>&>();
}

template <class T>
T* owned(PyEngine<T>& e, py::handle h, const std::string& name) {
  if (!py::isinstance<py::array>(h)) throw py::type_error(name + " must be a numpy array");
  py::array a = py::reinterpret_borrow<py::array>(h);
  T* p = out_ptr<T>(a, name.c_str());
  e.keep.push_back(a);
  return p;
}

template <class T>
PyEngine<T>* make_engine(const py::dict& spec_dict, const py::list& params, const py::list& buffers,
                         const py::list& trainable, const py::list& slots) {
  auto e = std::make_unique<PyEngine<T>>();
  EngineSpec spec = parse_spec(spec_dict);
  EngineArrays<T> arr;
  for (size_t i = 0; i < params.size(); ++i) {
    const std::string name = "params[" + std::to_string(i) + "]";
    arr.params.push_back(owned(*e, params[i], name));
    arr.sizes.push_back(static_cast<index_t>(params[i].cast<py::array>().size()));
  }
  for (size_t i = 0; i < buffers.size(); ++i) arr.buffers.push_back(owned(*e, buffers[i], "buffers[" + std::to_string(i) + "]"));
  const auto np = static_cast<index_t>(arr.params.size());
  for (size_t i = 0; i < spec.ops.size(); ++i) {
    const OpSpec& op = spec.ops[i];
    if (op.kind == OpKind::dense || op.kind == OpKind::batchnorm) {
      if (op.w < 0 || op.w >= np || op.b < 0 || op.b >= np) throw py::value_error("spec: parameter index out of range");
      const index_t want_w = op.kind == OpKind::dense ? op.width_in * op.width_out : op.width_out;
      if (arr.sizes[op.w] != want_w || arr.sizes[op.b] != op.width_out)
        throw py::value_error("params: sizes do not match the ops' widths");
    }
    if (op.kind == OpKind::batchnorm) {
      // Buffers 2 * buffer and 2 * buffer + 1, compared by halves: 2 * buffer overflows from 2^62.
      const auto pairs = static_cast<index_t>(arr.buffers.size()) / 2;
      if (op.buffer < 0 || op.buffer >= pairs)
        throw py::value_error("spec['ops'][" + std::to_string(i) + "]['buffer']: batchnorm buffer index out of range [0, " +
                              std::to_string(pairs) + "), got " + std::to_string(op.buffer));
      for (int j = 0; j < 2; ++j)
        if (buffers[2 * op.buffer + j].cast<py::array>().size() != op.width_out)
          throw py::value_error("buffers: sizes do not match the batchnorm widths");
    }
  }
  if (trainable.size() != slots.size()) throw py::value_error("slots must hold one entry per trainable parameter");
  for (size_t j = 0; j < trainable.size(); ++j) {
    const std::string item = "[" + std::to_string(j) + "]";
    const auto p = cast_arg<index_t>(trainable[j], "trainable" + item);
    if (p < 0 || p >= np) throw py::value_error("trainable" + item + ": parameter index out of range");
    arr.trainable.push_back(p);
    std::vector<T*> row;
    const auto list = cast_arg<py::list>(slots[j], "slots" + item);
    if (list.size() > 3) throw py::value_error("slots: at most 3 state tensors per parameter");
    for (size_t q = 0; q < list.size(); ++q) {
      if (list[q].is_none()) {
        row.push_back(nullptr);
        continue;
      }
      const std::string name = "slots" + item + "[" + std::to_string(q) + "]";
      row.push_back(owned(*e, list[q], name));
      if (e->keep.back().size() != arr.sizes[p]) throw py::value_error(name + " must have its parameter's size");
    }
    for (int q = 0; q < 3; ++q)
      e->slots_present[q] = e->slots_present[q] && q < static_cast<int>(row.size()) && row[q] != nullptr;
    arr.slots.push_back(row);
  }
  check_slots(used_slots(spec.opt, spec.opt.momentum != 0), e->slots_present, "slots");
  e->param_sizes = arr.sizes;
  e->in_width = spec.ops.front().width_in;
  e->out_width = spec.ops.back().width_out;
  e->loss = spec.loss;
  e->spec = spec;
  e->params = arr.params;
  e->engine = std::make_unique<Engine<T>>(std::move(spec), std::move(arr));
  return e.release();
}

// X, targets and weights of one call, checked against the engine's widths.
template <class T>
Batchable<T> batch_arrays(const PyEngine<T>& e, const py::array& x, const py::object& labels,
                          const py::object& targets, const py::object& weight) {
  Batchable<T> b;
  check_shape(x, "X", {-1, e.in_width});
  b.x = in_ptr<T>(x, "X");
  b.n = x.shape(0);
  b.d = e.in_width;
  b.k = e.out_width;
  if (b.n < 1) throw py::value_error("X must not be empty");
  if (labels.is_none() == targets.is_none()) throw py::value_error("give exactly one of labels and targets");
  if (!labels.is_none()) {
    auto l = labels.cast<py::array>();
    if (!py::isinstance<py::array_t<std::int64_t>>(l) || l.dtype().kind() != 'i' || l.itemsize() != 8)
      throw py::type_error("labels must be an int64 array");
    if (!(l.flags() & py::array::c_style)) throw py::value_error("labels must be C-contiguous");
    check_shape(l, "labels", {b.n});
    if (e.loss != 0) throw py::value_error("labels are only for cross_entropy");
    b.labels = static_cast<const std::int64_t*>(l.data());
    for (index_t i = 0; i < b.n; ++i)
      if (b.labels[i] < 0 || b.labels[i] >= b.k)
        throw py::value_error("labels must be in [0, " + std::to_string(b.k) + "), got " +
                              std::to_string(b.labels[i]) + " at index " + std::to_string(i));
  } else {
    auto t = targets.cast<py::array>();
    check_shape(t, "targets", {b.n, b.k});
    b.targets = in_ptr<T>(t, "targets");
  }
  if (!weight.is_none()) {
    auto w = weight.cast<py::array>();
    check_shape(w, "weight", {b.n});
    b.weight = in_ptr<T>(w, "weight");
  }
  return b;
}

template <class T>
void bind_engine_class(py::module_& m, const char* name) {
  py::class_<PyEngine<T>>(m, name, "Runs whole training epochs in C++ on arrays owned by Python.")
      .def(py::init(&make_engine<T>), py::arg("spec"), py::arg("params"), py::arg("buffers"),
           py::arg("trainable"), py::arg("slots"),
           "Build from the spec dict (ops, loss, opt, clip, seed, ...) and the arrays it updates in place.")
      .def(
          "train_epoch",
          [](py::handle self, py::array x, py::object labels, py::object targets, py::object weight,
             py::array perm, py::array lrs, py::object momentums, std::int64_t step0, index_t batch_size,
             std::int64_t opt_step, double mu_product) {
            PyEngine<T>& e = engine_of<T>(self);
            Batchable<T> b = batch_arrays<T>(e, x, labels, targets, weight);
            if (batch_size < 1) throw py::value_error("batch_size must be >= 1, got " + std::to_string(batch_size));
            if (!py::isinstance<py::array_t<std::int64_t>>(perm) || perm.dtype().kind() != 'i' || perm.itemsize() != 8)
              throw py::type_error("perm must be an int64 array");
            if (!(perm.flags() & py::array::c_style)) throw py::value_error("perm must be C-contiguous");
            check_shape(perm, "perm", {b.n});
            const auto* pp = static_cast<const std::int64_t*>(perm.data());
            for (index_t i = 0; i < b.n; ++i)
              if (pp[i] < 0 || pp[i] >= b.n) throw py::value_error("perm entries must be in [0, rows)");
            const index_t steps = b.n / batch_size + (b.n % batch_size != 0);  // b.n + batch_size may overflow
            check_shape(lrs, "lrs", {steps});
            const double* lp = in_ptr<double>(lrs, "lrs");
            const double* mp = nullptr;
            if (!momentums.is_none()) {
              auto ma = momentums.cast<py::array>();
              check_shape(ma, "momentums", {steps});
              mp = in_ptr<double>(ma, "momentums");
              // A cycled momentum makes SGD and RMSprop read a momentum buffer even when built
              // with momentum 0 (the Trainer allocates one for such a schedule).
              if (e.spec.opt.cycled == 1) check_slots(used_slots(e.spec.opt, true), e.slots_present, "momentums");
            }
            // The step counter is int64; the dropout masks read its low 32 bits (they repeat
            // every 2^32 steps, as the NumPy executor's do).
            if (step0 < 0 || step0 > std::numeric_limits<std::int64_t>::max() - steps)
              throw py::value_error("step0 must keep the step counter in [0, 2^63)");
            cpu::EpochOut out;
            py::object raised = py::none();  // what a signal handler raised (Ctrl-C: KeyboardInterrupt)
            {
              Exclusive exclusive(e.busy, e.owner);
              out = e.engine->train_epoch(b, pp, lp, mp, steps, step0, batch_size, opt_step, mu_product,
                                          signal_poll(raised));
            }
            // A signal that came after the last poll (an epoch shorter than kSignalPoll polls
            // never) is handled here too, reported with every step counted: left pending, its
            // handler would raise as this call returns, before the caller counts the epoch's
            // steps, and the weights would hold steps that no counter has.
            if (raised.is_none()) run_signal_handlers(raised, CallerFpMode());
            py::dict d;
            d["loss_sum"] = out.loss_sum;
            d["rows"] = out.rows;
            d["correct"] = out.correct;
            d["skipped"] = out.skipped;
            d["diverged_step"] = out.diverged_step < 0 ? py::object(py::none()) : py::object(py::int_(out.diverged_step));
            d["step_losses"] = py::array_t<double>(static_cast<py::ssize_t>(out.step_losses.size()), out.step_losses.data());
            d["grad_norms"] = py::array_t<double>(static_cast<py::ssize_t>(out.grad_norms.size()), out.grad_norms.data());
            d["opt_step"] = out.opt_step;
            d["mu_product"] = out.mu_product;
            d["interrupt"] = raised;
            return d;
          },
          py::arg("X"), py::arg("labels"), py::arg("targets"), py::arg("weight"), py::arg("perm"), py::arg("lrs"),
          py::arg("momentums"), py::arg("step0"), py::arg("batch_size"), py::arg("opt_step"), py::arg("mu_product"),
          "One epoch over perm in minibatches; returns the epoch's statistics as a dict.")
      .def(
          "forward",
          [](py::handle self, py::array x, int mode, std::uint32_t step) {
            PyEngine<T>& e = engine_of<T>(self);
            check_shape(x, "X", {-1, e.in_width});
            const T* xp = in_ptr<T>(x, "X");
            const index_t n = x.shape(0);
            if (n < 1) throw py::value_error("X must not be empty");
            if (mode != 0 && mode != 1) throw py::value_error("mode must be 0 (eval) or 1 (MC dropout)");
            py::array_t<T> out({static_cast<py::ssize_t>(n), static_cast<py::ssize_t>(e.out_width)});
            T* op = out.mutable_data();
            Exclusive exclusive(e.busy, e.owner);
            e.engine->forward(xp, n, mode, step, op);
            return out;
          },
          py::arg("X"), py::arg("mode"), py::arg("step"), "Network outputs before the link (mode 1: MC dropout).")
      .def(
          "evaluate",
          [](py::handle self, py::array x, py::object labels, py::object targets, py::object weight) {
            PyEngine<T>& e = engine_of<T>(self);
            Batchable<T> b = batch_arrays<T>(e, x, labels, targets, weight);
            double loss_sum = 0.0;
            index_t correct = 0;
            {
              Exclusive exclusive(e.busy, e.owner);
              e.engine->evaluate(b, &loss_sum, &correct);
            }
            return py::make_tuple(loss_sum, correct);
          },
          py::arg("X"), py::arg("labels"), py::arg("targets"), py::arg("weight"),
          "(sum over rows of the loss, correctly classified rows) in inference mode.")
      .def(
          "loss_and_grad",
          [](py::handle self, py::array x, py::object labels, py::object targets, py::object weight, py::list grads) {
            PyEngine<T>& e = engine_of<T>(self);
            Batchable<T> b = batch_arrays<T>(e, x, labels, targets, weight);
            if (grads.size() != e.param_sizes.size())
              throw py::value_error("grads must hold one array per parameter");
            std::vector<T*> gp;
            for (size_t i = 0; i < grads.size(); ++i) {
              const std::string name = "grads[" + std::to_string(i) + "]";
              if (!py::isinstance<py::array>(grads[i])) throw py::type_error(name + " must be a numpy array");
              py::array g = grads[i].cast<py::array>();
              gp.push_back(out_ptr<T>(g, name.c_str()));
              if (g.size() != e.param_sizes[i]) throw py::value_error(name + " must have its parameter's size");
            }
            Exclusive exclusive(e.busy, e.owner);
            return e.engine->loss_and_grad(b, gp);
          },
          py::arg("X"), py::arg("labels"), py::arg("targets"), py::arg("weight"), py::arg("grads"),
          "Loss (regularization included) on one batch; gradients written into grads, params unchanged.")
      .def(
          "release_workspace",
          [](py::handle self, index_t keep_rows) {
            PyEngine<T>& e = engine_of<T>(self);
            if (keep_rows < 0) throw py::value_error("keep_rows must be >= 0, got " + std::to_string(keep_rows));
            Exclusive exclusive(e.busy, e.owner);
            e.engine->release(keep_rows);
            e.hvp_work.release();
          },
          py::arg("keep_rows"),
          "Free the row-sized scratch that holds more than keep_rows rows, and all of hvp's; later "
          "calls grow it again. Calls only grow it (a loop of full-batch calls allocates once).")
      .def(
          "workspace",
          [](py::handle self) {
            PyEngine<T>& e = engine_of<T>(self);
            index_t rows = 0, gather_rows = 0;
            std::size_t bytes = 0;
            {
              Exclusive exclusive(e.busy, e.owner);
              rows = e.engine->workspace_rows();
              gather_rows = e.engine->gather_rows();
              bytes = e.engine->workspace_bytes() + e.hvp_work.bytes();
            }
            py::dict d;
            d["rows"] = rows;
            d["gather_rows"] = gather_rows;
            d["bytes"] = bytes;
            return d;
          },
          "The scratch held between calls: {'rows': rows of the activation scratch, 'gather_rows': "
          "rows of the minibatch gather buffers, 'bytes': bytes of both and of hvp's}.");
}

}  // namespace

// A list of one float64 array per parameter, each with its parameter's size.
static std::vector<py::array> per_param(const PyEngine<double>& e, const py::object& obj, const char* name, bool writeable) {
  if (!py::isinstance<py::list>(obj) && !py::isinstance<py::tuple>(obj))
    throw py::type_error(std::string(name) + " must be a list of numpy arrays");
  const auto arrays = array_list(obj.cast<py::sequence>(), name);
  if (arrays.size() != e.param_sizes.size())
    throw py::value_error(std::string(name) + " must hold one array per parameter (" +
                          std::to_string(e.param_sizes.size()) + "), got " + std::to_string(arrays.size()));
  for (size_t i = 0; i < arrays.size(); ++i) {
    const std::string item = std::string(name) + "[" + std::to_string(i) + "]";
    check_array<double>(arrays[i], item.c_str(), writeable);
    if (arrays[i].size() != e.param_sizes[i])
      throw py::value_error(item + " must have its parameter's size " + std::to_string(e.param_sizes[i]) +
                            ", got " + std::to_string(arrays[i].size()));
  }
  return arrays;
}

static bool overlaps(const py::array& a, const void* p, py::ssize_t bytes) {
  const auto* lo = static_cast<const char*>(a.data());
  const auto* q = static_cast<const char*>(p);
  return a.nbytes() > 0 && bytes > 0 && lo < q + bytes && q < lo + a.nbytes();
}

static void bind_engine_hvp(py::module_& m) {
  auto cls = py::reinterpret_borrow<py::class_<PyEngine<double>>>(m.attr("EngineF64"));
  cls.def(
      "hvp",
      [](py::handle self, py::array x, py::object labels, py::object targets, py::object weight, py::object V,
         py::object out) {
        PyEngine<double>& e = engine_of<double>(self);
        for (const auto& op : e.spec.ops)
          if (op.kind == OpKind::batchnorm)
            throw py::value_error("hvp does not support BatchNorm layers: their batch statistics couple the rows");
        Batchable<double> b = batch_arrays<double>(e, x, labels, targets, weight);
        const auto va = per_param(e, V, "V", false);
        auto oa = per_param(e, out, "out", true);
        std::vector<const double*> vp, pp;
        std::vector<double*> op;
        for (size_t i = 0; i < va.size(); ++i) {
          vp.push_back(static_cast<const double*>(va[i].data()));
          pp.push_back(e.params[i]);
          op.push_back(static_cast<double*>(oa[i].mutable_data()));
        }
        // out is written while everything else is still read: no overlap with any input or another out.
        for (size_t i = 0; i < oa.size(); ++i) {
          const std::string item = "out[" + std::to_string(i) + "]";
          bool bad = overlaps(oa[i], x.data(), x.nbytes());
          for (size_t j = 0; j < va.size() && !bad; ++j)
            bad = overlaps(oa[i], va[j].data(), va[j].nbytes()) ||
                  overlaps(oa[i], pp[j], e.param_sizes[j] * py::ssize_t(sizeof(double))) ||
                  (j != i && overlaps(oa[i], oa[j].data(), oa[j].nbytes()));
          if (b.targets) bad = bad || overlaps(oa[i], b.targets, b.n * b.k * py::ssize_t(sizeof(double)));
          if (b.weight) bad = bad || overlaps(oa[i], b.weight, b.n * py::ssize_t(sizeof(double)));
          if (bad) throw py::value_error(item + " must not overlap X, targets, weight, V, the parameters or another out");
        }
        Exclusive exclusive(e.busy, e.owner);
        cpu::hvp(e.spec, pp, b, vp, op, e.param_sizes, e.hvp_work);
      },
      py::arg("X"), py::arg("labels"), py::arg("targets"), py::arg("weight"), py::arg("V"), py::arg("out"),
      "out = H V: the exact Hessian (R-operator) of the mean loss plus penalty at the engine's parameters, "
      "training mode at step 0, times one direction V (one float64 array per parameter); out likewise.");
}

void bind_engine(py::module_& m) {
  bind_engine_class<float>(m, "EngineF32");
  bind_engine_class<double>(m, "EngineF64");
  bind_engine_hvp(m);
}

}  // namespace trainart::bind
