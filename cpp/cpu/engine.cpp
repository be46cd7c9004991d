// The CPU engine: one epoch of minibatch training per call, composed from the op kernels
// (dense, activation, dropout, batchnorm, loss, clip, optimizer). It mirrors
// python/trainart/executors/numpy.py step for step; the executor-equality tests hold it to that.
#include "engine.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <initializer_list>
#include <limits>

#include "activation.hpp"
#include "batchnorm.hpp"
#include "clip.hpp"
#include "dense.hpp"
#include "dropout.hpp"
#include "loss.hpp"
#include "optimizer.hpp"
#include "regularize.hpp"
#include "trainart/buffers.hpp"
#include "trainart/parallel.hpp"

namespace trainart::cpu {

namespace {

enum Mode { kTrain = 0, kEval = 1, kMc = 2 };

// Dropout masks at inference (MC dropout) use layer ids offset by this, as the NumPy executor.
constexpr std::uint32_t kInferenceLayerOffset = 1u << 16;

// What a dropout op multiplies kept elements by.
double dropout_scale(const OpSpec& op, bool inverted) { return inverted ? 1.0 / (1.0 - op.rate) : 1.0; }

template <class T>
index_t argmax_row(const T* z, index_t k) {
  index_t best = 0;
  for (index_t j = 1; j < k; ++j)
    if (z[j] > z[best]) best = j;
  return best;
}

}  // namespace

math::StepScalars<double> step_scalars(const OptSpec& o, double lr, std::int64_t step, double grad_scale,
                                       int cycled, double cycled_value, double* mu_product) {
  math::StepScalars<double> s{};
  const double beta1 = cycled == 2 ? cycled_value : o.beta1;
  s.lr = lr;
  s.grad_scale = o.maximize ? -grad_scale : grad_scale;
  s.weight_decay = o.weight_decay;
  s.param_decay = 1.0;
  s.beta1 = beta1;
  s.beta2 = o.beta2;
  s.one_minus_beta1 = 1.0 - beta1;
  s.one_minus_beta2 = 1.0 - o.beta2;
  s.alpha = o.alpha;
  s.one_minus_alpha = 1.0 - o.alpha;
  s.eps = o.eps;
  s.momentum = cycled == 1 ? cycled_value : o.momentum;
  s.dampening = o.dampening;
  s.one_minus_dampening = 1.0 - o.dampening;
  s.nesterov = o.nesterov;
  s.amsgrad = o.amsgrad;
  s.centered = o.centered;
  s.first_step = step == 1;
  if (o.decoupled) {
    s.param_decay = 1.0 - lr * o.weight_decay;
    s.weight_decay = 0.0;
  }
  const double t = static_cast<double>(step);
  if (o.kind == OptKind::adagrad) s.lr = lr / (1.0 + (t - 1.0) * o.lr_decay);
  if (o.kind == OptKind::adam || o.kind == OptKind::adamax) {
    s.step_size = lr / (1.0 - std::pow(beta1, t));
    s.bc2_sqrt = std::pow(1.0 - std::pow(o.beta2, t), 0.5);
  }
  if (o.kind == OptKind::nadam) {
    const double mu = beta1 * (1.0 - 0.5 * std::pow(0.96, t * o.momentum_decay));
    const double mu_next = beta1 * (1.0 - 0.5 * std::pow(0.96, (t + 1.0) * o.momentum_decay));
    *mu_product *= mu;
    s.bc2 = 1.0 - std::pow(o.beta2, t);
    s.nadam_grad = lr * (1.0 - mu) / (1.0 - *mu_product);
    s.nadam_avg = lr * mu_next / (1.0 - *mu_product * mu_next);
  }
  return s;
}

template <class T>
Engine<T>::Engine(EngineSpec spec, EngineArrays<T> arrays) : spec_(std::move(spec)), arr_(std::move(arrays)) {
  const auto& ops = spec_.ops;
  TRAINART_CHECK(!ops.empty(), "the plan has no ops");
  first_param_op_ = -1;
  for (index_t i = 0; i < static_cast<index_t>(ops.size()); ++i) {
    if (first_param_op_ < 0 && (ops[i].kind == OpKind::dense || ops[i].kind == OpKind::batchnorm))
      first_param_op_ = i;
  }
  TRAINART_CHECK(first_param_op_ >= 0, "the plan has no dense layer");
  out_width_ = ops.back().width_out;
  const size_t n = ops.size();
  out_.resize(n);
  pre_.resize(n);
  grad_in_.resize(n);
  mean_.resize(n);
  invstd_.resize(n);
  in_.assign(n, nullptr);
  grads_.resize(arr_.params.size());
  for (size_t p = 0; p < arr_.params.size(); ++p) grads_[p].resize(static_cast<size_t>(arr_.sizes[p]));
  trial_buffers_.resize(arr_.buffers.size());
  for (const auto& op : ops) {
    if (op.kind == OpKind::batchnorm) {
      for (int j = 0; j < 2; ++j) trial_buffers_[2 * op.buffer + j].resize(static_cast<size_t>(op.width_out));
    }
  }
}

template <class T>
void Engine<T>::ensure(index_t rows) {
  if (rows <= capacity_) return;
  capacity_ = rows;
  const auto& ops = spec_.ops;
  index_t dz = 0;
  for (size_t i = 0; i < ops.size(); ++i) {
    const OpSpec& op = ops[i];
    const auto r = static_cast<size_t>(rows);
    out_[i].resize(r * op.width_out);
    grad_in_[i].resize(static_cast<index_t>(i) > first_param_op_ ? r * op.width_in : 0);
    if (op.kind == OpKind::dense) {
      pre_[i].resize(op.act == 0 ? 0 : r * op.width_out);
      dz = std::max(dz, rows * op.width_out);
    }
    if (op.kind == OpKind::batchnorm) {
      mean_[i].resize(op.width_out);
      invstd_[i].resize(op.width_out);
    }
  }
  dz_work_.resize(static_cast<size_t>(dz));
  dlogits_.resize(static_cast<size_t>(rows * out_width_));
}

// The buffers a minibatch is gathered into by the permutation. Only train_epoch gathers: the
// other calls read their rows in place (sizing these for loss_and_grad on the whole data set
// held an unused copy of X for the trainer's lifetime).
template <class T>
void Engine<T>::ensure_gather(index_t rows) {
  if (rows <= gather_capacity_) return;
  gather_capacity_ = rows;
  xb_.resize(static_cast<size_t>(rows * spec_.ops.front().width_in));
  tb_.resize(static_cast<size_t>(rows * out_width_));
  wb_.resize(static_cast<size_t>(rows));
  lb_.resize(static_cast<size_t>(rows));
}

template <class T>
void Engine<T>::release(index_t keep_rows) {
  if (capacity_ > keep_rows) {
    for (auto* per_op : {&out_, &pre_, &grad_in_})
      for (auto& v : *per_op) free_vector(v);
    free_vector(dz_work_);
    free_vector(dlogits_);
    std::fill(in_.begin(), in_.end(), nullptr);  // they pointed into out_
    capacity_ = 0;
  }
  if (gather_capacity_ > keep_rows) {
    free_vector(xb_);
    free_vector(tb_);
    free_vector(wb_);
    free_vector(lb_);
    gather_capacity_ = 0;
  }
}

template <class T>
std::size_t Engine<T>::workspace_bytes() const {
  std::size_t total = held_bytes(dz_work_) + held_bytes(dlogits_) + held_bytes(xb_) + held_bytes(tb_) +
                      held_bytes(wb_) + held_bytes(lb_);
  for (const auto* per_op : {&out_, &pre_, &grad_in_})
    for (const auto& v : *per_op) total += held_bytes(v);
  return total;
}

// Runs the ops on x (rows, input width). Train mode uses batch statistics written to the trial
// buffers (committed by the caller once the step is known to be finite).
template <class T>
void Engine<T>::forward_rows(const T* x, index_t rows, int mode, std::uint32_t step) {
  const auto& ops = spec_.ops;
  const T* h = x;
  for (size_t i = 0; i < ops.size(); ++i) {
    const OpSpec& op = ops[i];
    in_[i] = h;
    T* out = out_[i].data();
    const index_t count = rows * op.width_out;
    switch (op.kind) {
      case OpKind::dense: {
        if (op.fused_dropout && mode != kEval) {  // this relu layer and its dropout in one pass
          const OpSpec& drop = ops[++i];
          in_[i] = nullptr;  // the relu output before dropout is never formed
          out = out_[i].data();
          const std::uint32_t layer = drop.layer + (mode == kMc ? kInferenceLayerOffset : 0u);
          dense_relu_dropout_forward<T>(h, arr_.params[op.w], arr_.params[op.b], out, rows, op.width_in,
                                        op.width_out, dropout_key(drop.rate, spec_.seed, layer, step),
                                        T(dropout_scale(drop, spec_.inverted_dropout)));
          break;
        }
        T* z = op.act == 0 ? out : pre_[i].data();
        dense_forward<T>(h, arr_.params[op.w], arr_.params[op.b], z, out, rows, op.width_in, op.width_out,
                         op.act, T(op.act_param));
        break;
      }
      case OpKind::activation:
        activation_forward<T>(static_cast<math::Act>(op.act), h, out, count, T(op.act_param));
        break;
      case OpKind::dropout:
        if (mode == kEval) {
          const T s = spec_.inverted_dropout ? T(1) : T(1.0 - op.rate);
          if (spec_.inverted_dropout)
            std::memcpy(out, h, sizeof(T) * static_cast<size_t>(count));
          else
            for (index_t e = 0; e < count; ++e) out[e] = h[e] * s;
        } else {
          const std::uint32_t layer = op.layer + (mode == kMc ? kInferenceLayerOffset : 0u);
          dropout<T>(h, out, count, op.rate, spec_.seed, layer, step, dropout_scale(op, spec_.inverted_dropout));
        }
        break;
      case OpKind::batchnorm: {
        T* gamma = arr_.params[op.w];
        T* beta = arr_.params[op.b];
        if (mode == kTrain) {
          T* rm = trial_buffers_[2 * op.buffer].data();
          T* rv = trial_buffers_[2 * op.buffer + 1].data();
          std::memcpy(rm, arr_.buffers[2 * op.buffer], sizeof(T) * op.width_out);
          std::memcpy(rv, arr_.buffers[2 * op.buffer + 1], sizeof(T) * op.width_out);
          batchnorm_forward_train<T>(h, rows, op.width_out, gamma, beta, rm, rv, op.momentum, op.eps, out,
                                     mean_[i].data(), invstd_[i].data());
        } else {
          batchnorm_forward_infer<T>(h, rows, op.width_out, gamma, beta, arr_.buffers[2 * op.buffer],
                                     arr_.buffers[2 * op.buffer + 1], op.eps, out);
        }
        break;
      }
    }
    h = out;
  }
}

template <class T>
double Engine<T>::loss_rows(index_t rows, const std::int64_t* labels, const T* targets,
                            const T* weight, index_t* correct) {
  const T* z = out_.back().data();
  const index_t k = out_width_;
  T* g = dlogits_.data();
  double value;
  if (labels != nullptr) {
    value = cross_entropy_labels<T>(z, labels, weight, g, rows, k);
  } else {
    value = loss_value_and_grad<T>(static_cast<math::Loss>(spec_.loss), z, targets, weight, g, rows, k,
                                   T(spec_.loss_param));
  }
  if (correct != nullptr) {
    index_t c = 0;
    const auto kind = static_cast<math::Loss>(spec_.loss);
    for (index_t r = 0; r < rows; ++r) {
      const T* zr = z + r * k;
      if (labels != nullptr) {
        c += argmax_row(zr, k) == labels[r];
      } else if (kind == math::Loss::binary_cross_entropy) {
        bool all = true;
        for (index_t j = 0; j < k; ++j) all = all && ((zr[j] > T(0)) == (targets[r * k + j] > T(0.5)));
        c += all;
      } else if (kind == math::Loss::cross_entropy) {
        c += argmax_row(zr, k) == argmax_row(targets + r * k, k);
      }
    }
    *correct = c;
  }
  return value;
}

template <class T>
void Engine<T>::backward_rows(index_t rows, std::uint32_t step) {
  const auto& ops = spec_.ops;
  T* g = dlogits_.data();
  for (index_t i = static_cast<index_t>(ops.size()) - 1; i >= first_param_op_; --i) {
    const OpSpec& op = ops[i];
    const bool need_dx = i > first_param_op_;
    T* gx = need_dx ? grad_in_[i].data() : nullptr;
    const index_t count = rows * op.width_out;
    if (op.kind == OpKind::dropout && i > 0 && ops[i - 1].fused_dropout) continue;  // done with its dense op
    switch (op.kind) {
      case OpKind::dense: {
        if (op.fused_dropout) {
          dense_relu_dropout_backward<T>(g, in_[i], arr_.params[op.w], out_[i + 1].data(), gx, grads_[op.w].data(),
                                         grads_[op.b].data(), dz_work_.data(), rows, op.width_in, op.width_out,
                                         T(dropout_scale(ops[i + 1], spec_.inverted_dropout)));
          break;
        }
        const T* z = op.act == 0 ? out_[i].data() : pre_[i].data();
        dense_backward<T>(g, in_[i], arr_.params[op.w], z, out_[i].data(), gx, grads_[op.w].data(),
                          grads_[op.b].data(), dz_work_.data(), rows, op.width_in, op.width_out, op.act,
                          T(op.act_param));
        break;
      }
      case OpKind::activation:
        activation_backward<T>(static_cast<math::Act>(op.act), g, in_[i], out_[i].data(), gx, count,
                               T(op.act_param));
        break;
      case OpKind::dropout:
        dropout<T>(g, gx, count, op.rate, spec_.seed, op.layer, step, dropout_scale(op, spec_.inverted_dropout));
        break;
      case OpKind::batchnorm:
        batchnorm_backward<T>(g, in_[i], rows, op.width_out, arr_.params[op.w], mean_[i].data(),
                              invstd_[i].data(), gx, grads_[op.w].data(), grads_[op.b].data());
        break;
    }
    g = gx;
  }
}

// Adds each regularized layer's penalty gradient; returns the penalty (Keras's l1/l2 convention).
template <class T>
double Engine<T>::add_penalty() {
  double total = 0.0;
  for (const auto& op : spec_.ops) {
    if (op.kind != OpKind::dense || (op.l1 == 0.0 && op.l2 == 0.0)) continue;
    total += cpu::add_penalty<T>(arr_.params[op.w], grads_[op.w].data(), arr_.sizes[op.w], op.l1, op.l2);
  }
  return total;
}

template <class T>
void Engine<T>::apply_max_norm() {
  for (const auto& op : spec_.ops) {
    if (op.kind != OpKind::dense || op.max_norm <= 0.0 || !op.trainable) continue;
    cpu::apply_max_norm<T>(arr_.params[op.w], op.width_in, op.width_out, T(op.max_norm));
  }
}

template <class T>
EpochOut Engine<T>::train_epoch(const Batchable<T>& data, const std::int64_t* perm, const double* lrs,
                                const double* momentums, index_t steps, std::int64_t step0, index_t batch_size,
                                std::int64_t opt_step, double mu_product, const std::function<bool()>& stop) {
  const DenormalsAreZero ftz;
  EpochOut out;
  out.step_losses.assign(static_cast<size_t>(steps), 0.0);
  out.grad_norms.assign(static_cast<size_t>(steps), 0.0);
  ensure(std::min(batch_size, data.n));
  ensure_gather(std::min(batch_size, data.n));
  const index_t d = data.d, k = data.k;
  std::vector<TensorView<const T>> views;
  std::vector<TensorView<T>> mviews;
  std::vector<TensorSlots<T>> table;
  for (size_t j = 0; j < arr_.trainable.size(); ++j) {
    const index_t p = arr_.trainable[j];
    views.push_back({grads_[p].data(), arr_.sizes[p]});
    mviews.push_back({grads_[p].data(), arr_.sizes[p]});
    TensorSlots<T> ts{arr_.params[p], grads_[p].data(), {nullptr, nullptr, nullptr}, arr_.sizes[p]};
    for (size_t q = 0; q < arr_.slots[j].size() && q < 3; ++q) ts.slot[q] = arr_.slots[j][q];
    table.push_back(ts);
  }
  for (index_t s = 0; s < steps; ++s) {
    if (s > 0 && stop && stop()) {
      out.interrupted = true;
      out.step_losses.resize(static_cast<size_t>(s));
      out.grad_norms.resize(static_cast<size_t>(s));
      break;
    }
    const index_t lo = s * batch_size, rows = std::min(batch_size, data.n - lo);
    const std::int64_t* idx = perm + lo;
    // Gather the minibatch rows (and their targets and weights) into contiguous scratch.
    parallel_for(rows, 64, [&](index_t a, index_t b) {
      for (index_t r = a; r < b; ++r) {
        const index_t src = idx[r];
        std::memcpy(&xb_[r * d], data.x + src * d, sizeof(T) * d);
        if (data.targets) std::memcpy(&tb_[r * k], data.targets + src * k, sizeof(T) * k);
        if (data.labels) lb_[r] = data.labels[src];
        if (data.weight) wb_[r] = data.weight[src];
      }
    });
    const auto step = static_cast<std::uint32_t>(step0 + s);
    forward_rows(xb_.data(), rows, kTrain, step);
    index_t correct = 0;
    double value = loss_rows(rows, data.labels ? lb_.data() : nullptr, data.targets ? tb_.data() : nullptr,
                             data.weight ? wb_.data() : nullptr, &correct);
    backward_rows(rows, step);
    value += add_penalty();
    const std::vector<double> sums = sum_squares<T>(views);
    double total = 0.0;
    for (double v : sums) total += v;
    const double norm = std::sqrt(total);
    out.step_losses[s] = value;
    out.grad_norms[s] = norm;
    // A norm beyond clip_value / T's smallest normal cannot be clipped in T: the scale would be
    // subnormal, which flush-to-zero reads as 0 (a step that silently changes nothing). It
    // counts as non-finite, as in the NumPy executor.
    const bool unclippable = (spec_.clip == ClipKind::global_norm || spec_.clip == ClipKind::per_tensor_norm) &&
                             norm > spec_.clip_value / double(std::numeric_limits<T>::min());
    if (!(std::isfinite(value) && std::isfinite(norm)) || unclippable) {
      if (spec_.raise_nonfinite) {
        out.diverged_step = s;
        out.step_losses.resize(static_cast<size_t>(s + 1));
        out.grad_norms.resize(static_cast<size_t>(s + 1));
        break;
      }
      ++out.skipped;
      continue;
    }
    for (size_t bidx = 0; bidx < trial_buffers_.size(); ++bidx)
      if (!trial_buffers_[bidx].empty())
        std::memcpy(arr_.buffers[bidx], trial_buffers_[bidx].data(), sizeof(T) * trial_buffers_[bidx].size());
    double scale = 1.0;
    if (spec_.clip == ClipKind::global_norm) {
      if (norm > spec_.clip_value) scale = spec_.clip_value / norm;
    } else if (spec_.clip == ClipKind::per_tensor_norm) {
      for (size_t j = 0; j < views.size(); ++j) {
        const double nj = std::sqrt(sums[j]);
        if (nj > spec_.clip_value) scale_tensors<T>({mviews[j]}, T(spec_.clip_value / nj));
      }
    } else if (spec_.clip == ClipKind::value) {
      clip_by_value<T>(mviews, T(spec_.clip_value));
    }
    ++opt_step;
    const math::StepScalars<double> sd =
        step_scalars(spec_.opt, lrs[s], opt_step, scale, momentums ? spec_.opt.cycled : 0,
                     momentums ? momentums[s] : 0.0, &mu_product);
    math::StepScalars<T> st;
    st.lr = T(sd.lr); st.grad_scale = T(sd.grad_scale); st.weight_decay = T(sd.weight_decay);
    st.param_decay = T(sd.param_decay); st.beta1 = T(sd.beta1); st.beta2 = T(sd.beta2);
    st.one_minus_beta1 = T(sd.one_minus_beta1); st.one_minus_beta2 = T(sd.one_minus_beta2);
    st.alpha = T(sd.alpha); st.one_minus_alpha = T(sd.one_minus_alpha); st.eps = T(sd.eps);
    st.momentum = T(sd.momentum); st.dampening = T(sd.dampening); st.one_minus_dampening = T(sd.one_minus_dampening);
    st.step_size = T(sd.step_size); st.bc2_sqrt = T(sd.bc2_sqrt); st.bc2 = T(sd.bc2);
    st.nadam_grad = T(sd.nadam_grad); st.nadam_avg = T(sd.nadam_avg);
    st.nesterov = sd.nesterov; st.amsgrad = sd.amsgrad; st.centered = sd.centered; st.first_step = sd.first_step;
    switch (spec_.opt.kind) {
      case OptKind::sgd: sgd_update<T>(table, st); break;
      case OptKind::adagrad: adagrad_update<T>(table, st); break;
      case OptKind::rmsprop: rmsprop_update<T>(table, st); break;
      case OptKind::adam: adam_update<T>(table, st); break;
      case OptKind::adamax: adamax_update<T>(table, st); break;
      case OptKind::nadam: nadam_update<T>(table, st); break;
    }
    apply_max_norm();
    out.loss_sum += value * static_cast<double>(rows);
    out.rows += rows;
    out.correct += correct;
  }
  out.opt_step = opt_step;
  out.mu_product = mu_product;
  return out;
}

template <class T>
void Engine<T>::forward(const T* x, index_t n, int mode, std::uint32_t step, T* out) {
  const DenormalsAreZero ftz;
  ensure(n);
  forward_rows(x, n, mode == 0 ? kEval : kMc, step);
  std::memcpy(out, out_.back().data(), sizeof(T) * static_cast<size_t>(n * out_width_));
}

template <class T>
void Engine<T>::evaluate(const Batchable<T>& data, double* loss_sum, index_t* correct) {
  const DenormalsAreZero ftz;
  ensure(data.n);
  forward_rows(data.x, data.n, kEval, 0);
  const double value = loss_rows(data.n, data.labels, data.targets, data.weight, correct);
  *loss_sum = value * static_cast<double>(data.n);
}

template <class T>
double Engine<T>::loss_and_grad(const Batchable<T>& data, const std::vector<T*>& grads) {
  const DenormalsAreZero ftz;
  ensure(data.n);
  forward_rows(data.x, data.n, kTrain, 0);
  double value = loss_rows(data.n, data.labels, data.targets, data.weight, nullptr);
  backward_rows(data.n, 0);
  value += add_penalty();
  for (size_t p = 0; p < grads.size(); ++p)
    std::memcpy(grads[p], grads_[p].data(), sizeof(T) * grads_[p].size());
  return value;
}

template class Engine<float>;
template class Engine<double>;

}  // namespace trainart::cpu
