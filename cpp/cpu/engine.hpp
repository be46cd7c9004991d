// The CPU executor's engine: runs whole epochs (gather, forward, loss, backward,
// regularization, clipping, optimizer update, max-norm) in C++ over a Plan's op list, on
// parameter, buffer and optimizer-state arrays that Python owns and the engine updates in place.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <vector>

#include "trainart/common.hpp"
#include "trainart/math/optimizer.hpp"

namespace trainart::cpu {

enum class OpKind : int { dense = 0, activation = 1, dropout = 2, batchnorm = 3 };

// One op of the Plan (python/trainart/models.py: Sequential.ops); unused fields stay zero.
struct OpSpec {
  OpKind kind = OpKind::dense;
  index_t width_in = 0, width_out = 0;  // features in and out
  int act = 0;                          // activation code (dense, activation)
  bool fused_dropout = false;           // dense relu whose dropout op follows: trained as one pair
  double act_param = 0.0;
  index_t w = -1, b = -1;               // parameter indices (dense: W, b; batchnorm: gamma, beta)
  double l1 = 0.0, l2 = 0.0, max_norm = 0.0;  // max_norm 0 = none
  bool trainable = true;
  double rate = 0.0;                    // dropout
  std::uint32_t layer = 0;              // dropout layer id (Philox counter word)
  index_t buffer = -1;                  // batchnorm: running stats at buffers[2*buffer], [2*buffer+1]
  double momentum = 0.1, eps = 1e-5;    // batchnorm
};

enum class OptKind : int { sgd = 0, adagrad = 1, rmsprop = 2, adam = 3, adamax = 4, nadam = 5 };

// The optimizer's configuration (trainart.optim config), as the kernel families need it.
struct OptSpec {
  OptKind kind = OptKind::adam;
  double weight_decay = 0.0, beta1 = 0.9, beta2 = 0.999, alpha = 0.99, eps = 1e-8;
  double momentum = 0.0, dampening = 0.0, lr_decay = 0.0, momentum_decay = 4e-3;
  bool nesterov = false, amsgrad = false, centered = false, decoupled = false, maximize = false;
  int cycled = 0;  // what a 1cycle momentum schedule drives: 0 nothing, 1 momentum, 2 beta1
};

enum class ClipKind : int { none = 0, global_norm = 1, per_tensor_norm = 2, value = 3 };

struct EngineSpec {
  std::vector<OpSpec> ops;
  int loss = 0;
  double loss_param = 1.0;
  OptSpec opt;
  ClipKind clip = ClipKind::none;
  double clip_value = 0.0;
  std::uint64_t seed = 0;
  bool inverted_dropout = true;
  bool raise_nonfinite = true;
};

// Arrays the engine works on, owned by Python: params in Plan order, batch-norm buffers, and
// per trainable parameter up to three optimizer slots (nullptr where unused).
template <class T>
struct EngineArrays {
  std::vector<T*> params;
  std::vector<index_t> sizes;
  std::vector<T*> buffers;
  std::vector<index_t> trainable;               // indices into params
  std::vector<std::vector<T*>> slots;           // per trainable parameter
};

// A training set as one epoch sees it. Targets: labels (n,) or dense (n, k), the other null.
template <class T>
struct Batchable {
  const T* x = nullptr;
  index_t n = 0, d = 0;
  const std::int64_t* labels = nullptr;
  const T* targets = nullptr;
  index_t k = 0;
  const T* weight = nullptr;
};

struct EpochOut {
  double loss_sum = 0.0;
  index_t rows = 0, correct = 0, skipped = 0;
  index_t diverged_step = -1;  // -1: none
  bool interrupted = false;    // stopped between two steps because `stop` said so
  std::vector<double> step_losses, grad_norms;
  std::int64_t opt_step = 0;   // optimizer step count after the epoch
  double mu_product = 1.0;     // NAdam's running product
};

// The host side of one optimizer step: trainart.reference.optimizer.step_scalars, in C++.
// `cycled` (o.cycled or 0) says whether cycled_value replaces momentum or beta1 this step.
math::StepScalars<double> step_scalars(const OptSpec& o, double lr, std::int64_t step, double grad_scale,
                                       int cycled, double cycled_value, double* mu_product);

template <class T>
class Engine {
 public:
  Engine(EngineSpec spec, EngineArrays<T> arrays);

  // One pass over perm in minibatches of batch_size; lrs[s] (and momentums[s] if given) for step s.
  // `stop`, when given, is asked before every step but the first; if it returns true the epoch
  // ends there (interrupted, step_losses and grad_norms cut to the steps taken), the model as
  // the last completed step left it.
  EpochOut train_epoch(const Batchable<T>& data, const std::int64_t* perm, const double* lrs,
                       const double* momentums, index_t steps, std::int64_t step0, index_t batch_size,
                       std::int64_t opt_step, double mu_product, const std::function<bool()>& stop = {});

  // Outputs before the link for rows [0, n): mode 0 eval, 1 MC dropout (inference masks at
  // `step`). out is (n, output width).
  void forward(const T* x, index_t n, int mode, std::uint32_t step, T* out);

  // Sum over rows of the loss (weighted, regularization excluded) and correctly classified rows.
  void evaluate(const Batchable<T>& data, double* loss_sum, index_t* correct);

  // Loss (regularization included) and gradients of every parameter on one batch, no update.
  double loss_and_grad(const Batchable<T>& data, const std::vector<T*>& grads);

  // Frees the row-sized scratch (activations, backward buffers, minibatch gather) that holds
  // more than keep_rows rows; the next call grows it again. The scratch only grows while calls
  // run, so that a loop of full-batch calls (L-BFGS) allocates once; the caller releases it
  // when the loop ends, or a trainer would keep the workspace of its largest call for life.
  void release(index_t keep_rows);

  // Rows the activation scratch and the gather buffers hold, and the bytes both hold.
  index_t workspace_rows() const { return capacity_; }
  index_t gather_rows() const { return gather_capacity_; }
  std::size_t workspace_bytes() const;

 private:
  void ensure(index_t rows);
  void ensure_gather(index_t rows);
  void forward_rows(const T* x, index_t rows, int mode, std::uint32_t step);
  double loss_rows(index_t rows, const std::int64_t* labels, const T* targets,
                   const T* weight, index_t* correct);
  void backward_rows(index_t rows, std::uint32_t step);
  double add_penalty();
  void apply_max_norm();

  EngineSpec spec_;
  EngineArrays<T> arr_;
  index_t first_param_op_ = 0;
  index_t out_width_ = 0;
  index_t capacity_ = 0;         // rows the activation scratch holds (grown by calls, freed by release)
  index_t gather_capacity_ = 0;  // rows the minibatch gather buffers hold (train_epoch only)
  // Per op: output activations, pre-activations (dense), backward outputs; batchnorm stats.
  std::vector<std::vector<T>> out_, pre_, grad_in_, mean_, invstd_;
  std::vector<const T*> in_;            // each op's input for the current batch
  std::vector<std::vector<T>> grads_;   // per parameter
  std::vector<std::vector<T>> trial_buffers_;
  std::vector<T> xb_, tb_, wb_, dlogits_, dz_work_;
  std::vector<std::int64_t> lb_;
};

}  // namespace trainart::cpu
