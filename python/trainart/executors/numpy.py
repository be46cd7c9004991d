"""The reference executor: the training loop in plain Python over the kernel functions.

With the NumPy reference kernels it is the specification of what a training step computes;
given the _cpu module's bindings (same names and signatures) it runs the same loop on native
kernels, which the tests use to localize a disagreement between executors.
"""

import math
import threading

import numpy as np

from .. import _validate, optim, reference
from ..clipping import clippable_norm
from ..reference import trusted
from ..optim.kernels import OptimizerUpdate, kernel_spec
from ..reference.activation import ACTIVATION_CODES
from ..reference.bound import bound
from ..ops.dropout import dropout_scale
from ..reference.dropout import apply_mask, keep_bits
from ..reference.loss import LOSS_CODES
from ..reference.pieces import pieces
from .base import EpochStats, Executor, checked_buffers
from .interrupt import signals_between_steps

__all__ = ["NumpyExecutor"]

# Dropout masks at inference (MC dropout) use layer ids offset by this, so they never repeat a
# training mask; their step counter packs (sample << 16) | chunk (see mc_step).
INFERENCE_LAYER_OFFSET = 1 << 16
PREDICT_CHUNK = 4096
# The 32-bit step word holds 16 bits of sample and 16 of chunk: beyond these limits two passes
# would share masks. Trainer.predict refuses more; the C++ engine packs the same way.
MC_MAX_SAMPLES = 1 << 16
MC_MAX_ROWS = PREDICT_CHUNK << 16
# Steps between flushes of subnormal optimizer state (see NumpyExecutor._flush_subnormal_state).
FLUSH_EVERY = 16


class NumpyExecutor(Executor):
    """Runs a Plan step by step in Python. `kernels` is trainart.reference (default) or a
    module with the same functions."""

    name = "numpy"

    def __init__(self, kernels=reference):
        # The reference's per-call argument checks are skipped: fit validated the inputs once.
        self.K = trusted if kernels is reference else kernels
        # Held by whatever reads or writes the weights as a whole: a training step's writes,
        # set_params and load_state_dict here, and the Trainer's evaluate, predict,
        # loss_and_grad, hvp and hessian for their whole call. A call from another thread while
        # a fit runs then sees the weights of one step, never a step's half-written tensors (the
        # native engine takes it only as an epoch starts: see CpuExecutor.train_epoch).
        # Reentrant: the fitting thread's own calls (callbacks) pass.
        self.weights_lock = threading.RLock()

    # -- state ---------------------------------------------------------------------------------
    def build(self, plan, params, buffers):
        self.plan = plan
        self.dtype = np.dtype(plan.dtype)
        self.ops = plan.ops
        self.optimizer = optim.from_config(plan.optimizer)
        self.trainable = [i for i, t in enumerate(plan.trainable) if t]
        # Trainable parameters, and each optimizer slot, live in one flat buffer with per-tensor
        # views: an update is then one pass of a few array ops, not a few per tensor.
        self.flat = np.zeros(sum(np.size(params[i]) for i in self.trainable), self.dtype)
        self.params = [np.array(p, dtype=self.dtype) for p in params]
        for i, view in zip(self.trainable, self._views(self.flat, params)):
            view[...] = self.params[i]
            self.params[i] = view
        self.buffers = [np.array(b, dtype=self.dtype) for b in buffers]
        self.opt_state = self.optimizer.init([self.flat])
        self.slot_views = {k: self._views(v[0], params) for k, v in self.opt_state.items() if isinstance(v, list)}
        self.opt_spec = kernel_spec(self.optimizer)
        self._build_step(params)
        self.loss_code = LOSS_CODES[plan.loss]
        # Only ops after the first parameterized one need their input gradient.
        first = next(i for i, op in enumerate(self.ops) if op["op"] in ("dense", "batchnorm"))
        self.need_dx = [i > first for i in range(len(self.ops))]
        self.op_fields = [self._op_fields(i, need_dx) for i, need_dx in enumerate(self.need_dx)]
        self.regularized = [op for op in self.ops if op["op"] == "dense" and (op["l1"] or op["l2"])]
        self.max_normed = [op for op in self.ops
                           if op["op"] == "dense" and op["max_norm"] is not None and op["trainable"]]
        return self

    def _build_step(self, params):
        """What every training step reuses: the flat gradient buffer, and the gradient norm, the
        optimizer update and the subnormal flush bound to their buffers (bound: see
        reference.bound)."""
        # The gradients of the trainable tensors, in one flat buffer reused every step (no fresh
        # pages to fault in) that clipping, the norm and the optimizer take whole.
        self._flat_grad = np.empty_like(self.flat)
        self._grad_views = self._views(self._flat_grad, params)
        self._grad_norm = bound(self.K, "global_norm", [self._flat_grad])
        self._update = OptimizerUpdate(self.K, self.optimizer, [self.flat], [self._flat_grad], self.opt_state)
        slots = [slot[0] for slot in self.opt_state.values() if isinstance(slot, list)]
        self._state_pieces = list(pieces(slots))
        self._tiny = np.finfo(self.dtype).tiny
        self._clippable = clippable_norm(self.plan.clip, self.dtype)  # past it a step counts as non-finite
        # Where the backward pass writes each gradient: the reference's dense_backward writes
        # straight into the flat buffer (its `out`); the other gradients (BatchNorm's, and all
        # of them with the _cpu bindings) come as new arrays that _gather_grads copies in.
        views = dict(zip(self.trainable, self._grad_views))
        self._grad_out = None
        if self.K is trusted:
            dense = {op[key] for op in self.ops if op["op"] == "dense" for key in ("W", "b")}
            self._grad_out = [views[i] if i in views and i in dense else None for i in range(len(params))]
            views = {i: view for i, view in views.items() if i not in dense}
        self._copied_grads = list(views.items())

    def _views(self, flat, params):
        """Views of `flat` shaped like the trainable ones among `params`, in order."""
        views, offset = [], 0
        for i in self.trainable:
            shape = np.shape(params[i])
            size = int(np.prod(shape))
            views.append(flat[offset:offset + size].reshape(shape))
            offset += size
        return views

    def get_params(self):
        return [p.copy() for p in self.params]

    def set_params(self, params):
        with self.weights_lock:
            for p, new in zip(self.params, params):
                p[...] = new

    def state_dict(self):
        """Parameters, buffers and optimizer state; slots as one array per trainable tensor."""
        opt = {k: [a.copy() for a in self.slot_views[k]] if k in self.slot_views else v
               for k, v in self.opt_state.items()}
        return {"params": self.get_params(), "buffers": [b.copy() for b in self.buffers], "optimizer": opt}

    def nonfinite_state(self):
        # The trainable ones as one flat scan, then their own names only where it fails.
        flat_ok = _validate.all_finite(self.flat)
        for name, array in [*((f"params[{i}]", p) for i, p in enumerate(self.params)
                              if not flat_ok or i not in self.trainable),
                            *((f"buffers[{i}]", b) for i, b in enumerate(self.buffers)),
                            # each slot: one flat array over every trainable tensor (build)
                            *((f"optimizer state[{k!r}]", v[0]) for k, v in self.opt_state.items()
                              if isinstance(v, list))]:
            if array.size and not _validate.all_finite(np.ascontiguousarray(array)):
                return name
        return None

    def check_state(self, state):
        """(params, buffers, optimizer) of a state_dict, checked against this executor:
        ValueError or TypeError naming the first entry that does not fit (a missing or unknown
        key, a list of the wrong length, a shape mismatch, a non-finite value). load_state_dict
        takes only such a state, and Trainer.save writes only such a state."""
        _validate.require_keys(state, ("params", "buffers", "optimizer"), "state")
        params = _validate.arrays_like(state["params"], self.params, "params")
        buffers = checked_buffers(state["buffers"], self.buffers)
        return params, buffers, self._fitting_optimizer_state(state["optimizer"])

    def load_state_dict(self, state):
        """Copy a state_dict in place (native engines keep pointers to these arrays).

        Everything is checked first (check_state), and on an error nothing has changed.
        """
        params, buffers, optimizer = self.check_state(state)
        with self.weights_lock:
            for dst, src in zip(self.params + self.buffers, params + buffers):
                dst[...] = src
            for key, value in optimizer.items():
                if key in self.slot_views:
                    for dst, src in zip(self.slot_views[key], value):
                        dst[...] = src
                else:
                    self.opt_state[key] = value

    def _fitting_optimizer_state(self, state):
        """The optimizer part of a state_dict, checked: exactly this optimizer's keys, slots
        shaped like the parameters they belong to, a step count >= 0, finite scalars."""
        _validate.require_keys(state, tuple(self.opt_state), "optimizer state")
        unknown = sorted(set(state) - set(self.opt_state))
        if unknown:
            raise ValueError(f"optimizer state has entries {', '.join(map(repr, unknown))} that "
                             f"{type(self.optimizer).__name__} does not keep")
        out = {}
        for key, value in state.items():
            if key in self.slot_views:
                out[key] = _validate.arrays_like(value, self.slot_views[key], f"optimizer state[{key!r}]")
            elif key == "step":
                out[key] = _validate.integer(value, "optimizer state['step']", low=0)
            else:
                out[key] = _validate.real(value, f"optimizer state[{key!r}]")
        return out

    # -- forward and backward ------------------------------------------------------------------
    def _op_fields(self, i, need_dx):
        """(kind, need_dx, fields) of op i: the values _forward and _backward read, in a tuple
        they unpack (every step reads a dozen per op: one unpacking costs less than a dozen dict
        lookups, which on small batches cost as much as a kernel)."""
        op = self.ops[i]
        kind = op["op"]
        mode = self.plan.dropout_mode
        if kind == "dense":
            # A relu layer fused with the dropout after it: that dropout's scale, else None.
            pair_scale = dropout_scale(self.ops[i + 1]["rate"], mode) if op["fused_dropout"] else None
            fields = (op["W"], op["b"], op["code"], op["param"], pair_scale)
        elif kind == "activation":
            fields = (op["code"], op["param"])
        elif kind == "dropout":
            after_pair = i > 0 and self.ops[i - 1]["op"] == "dense" and self.ops[i - 1]["fused_dropout"]
            fields = (op["rate"], op["layer"], dropout_scale(op["rate"], mode), after_pair)
        else:
            fields = (op["gamma"], op["beta"], 2 * op["buffer"], op["momentum"], op["eps"])
        return kind, need_dx, fields

    def _forward(self, x, *, mode, step=0, buffers=None, params=None, K=None, fuse=True):
        """Run the ops on x. mode: "train" (dropout on, batch statistics, caches kept),
        "eval" (no dropout, running statistics) or "mc" (dropout on, running statistics).
        `params` and `K` default to this executor's (the second-order code passes trial ones).
        With fuse=False every dense op caches (input, z, a) and every dropout op its mask, also
        where the Plan fuses a relu layer with its dropout (the second-order code reads them)."""
        K = self.K if K is None else K
        P = self.params if params is None else params
        buffers = self.buffers if buffers is None else buffers
        caches, h = [], x
        for kind, _, fields in self.op_fields:
            if kind == "dense":
                W, b, code, param, _ = fields
                a, z = K.dense_forward(h, P[W], P[b], code, param)
                caches.append((h, z, a))
                h = a
            elif kind == "activation":
                code, param = fields
                a = K.activation_forward(h, code, param)
                caches.append((h, a))
                h = a
            elif kind == "dropout":
                rate, layer, scale, after_pair = fields
                if mode == "eval":
                    caches.append(None)
                    if self.plan.dropout_mode == "weight_scaling":
                        h = h * self.dtype.type(1.0 - rate)
                else:
                    # The mask is kept for the backward pass instead of regenerated: the same
                    # numbers as calling K.dropout twice, at half the Philox cost.
                    layer += INFERENCE_LAYER_OFFSET if mode == "mc" else 0
                    # The mask's step word is the counter's low 32 bits (the engine's too).
                    keep = K.dropout_mask(h.shape[0], h.shape[1], rate, self.plan.seed, layer, step & 0xFFFFFFFF)
                    bits = keep_bits(keep, h.dtype)
                    h = apply_mask(h, bits, scale)
                    if fuse and after_pair:
                        # The pair's backward needs only the dense input and this output.
                        caches[-1] = (caches[-1][0], None, h)
                        bits = None
                    caches.append(bits)
            elif kind == "batchnorm":
                gamma, beta, buffer, momentum, eps = fields
                g, b = P[gamma], P[beta]
                rm, rv = buffers[buffer], buffers[buffer + 1]
                if mode == "train":
                    y, mean, invstd = K.batchnorm_forward_train(h, g, b, rm, rv, momentum, eps)
                    caches.append((h, mean, invstd))
                else:
                    y = K.batchnorm_forward_infer(h, g, b, rm, rv, eps)
                    caches.append(None)
                h = y
        return h, caches

    def _backward(self, dlogits, caches, step, params=None, K=None, out=None):
        """Gradients of every parameter (None for those before the first parameterized op).
        out: per parameter, an array for dense_backward to write the gradient into, or None
        (only with the reference kernels; see build)."""
        K = self.K if K is None else K
        P = self.params if params is None else params
        grads = [None] * len(P)
        g = dlogits
        for (kind, need_dx, fields), cache in zip(reversed(self.op_fields), reversed(caches)):
            if kind == "dense":
                W, b, code, param, pair_scale = fields
                h, z, a = cache
                if z is None:  # relu + dropout: dz = out > 0 ? g * scale : +0, as the engine's pass
                    g = apply_mask(g, keep_bits(a > 0, g.dtype), pair_scale)
                    z, a, code, param = g, g, ACTIVATION_CODES["identity"], 0.0
                if out is None:
                    g, grads[W], grads[b] = K.dense_backward(g, h, P[W], z, a, code, param, need_dx)
                else:
                    g, grads[W], grads[b] = K.dense_backward(g, h, P[W], z, a, code, param, need_dx,
                                                             out=(out[W], out[b]))
            elif kind == "activation":
                code, param = fields
                h, a = cache
                g = K.activation_backward(g, h, a, code, param)
            elif kind == "dropout":
                if cache is not None:  # None: done with the relu dense op before it
                    _, _, scale, _ = fields
                    g = apply_mask(g, cache, scale)
            elif kind == "batchnorm":
                gamma, beta, *_ = fields
                h, mean, invstd = cache
                g, grads[gamma], grads[beta] = K.batchnorm_backward(g, h, P[gamma], mean, invstd)
            if not need_dx:  # ops before the first parameterized one need no gradient
                break
        return grads

    def _loss(self, logits, y, weight, K=None):
        K = self.K if K is None else K
        if y.dtype.kind == "i":
            return K.cross_entropy_labels(logits, y, weight)
        return K.loss_value_and_grad(logits, y, self.loss_code, self.plan.loss_param, weight)

    def _penalty(self, params=None):
        """l1*sum|W| + l2*sum W^2 over the dense layers that set them (Keras's convention)."""
        total = 0.0
        for op in self.regularized:
            W = (self.params if params is None else params)[op["W"]]
            total += op["l1"] * float(np.abs(W).sum(dtype=np.float64))
            total += op["l2"] * float(np.square(W, dtype=np.float64).sum())  # as the engine: w^2 in double
        return total

    def _add_penalty_grads(self, grads, params=None):
        """grads[W] += 2 l2 W + l1 sign(W), in place, constants in W's dtype."""
        for op in self.regularized:
            W, dW = (self.params if params is None else params)[op["W"]], grads[op["W"]]
            t = W.dtype.type
            if op["l2"]:
                dW += t(2.0 * op["l2"]) * W
            if op["l1"]:
                dW += t(op["l1"]) * np.sign(W)

    def _apply_max_norm(self):
        for op in self.max_normed:
            W = self.params[op["W"]]
            norms = np.sqrt(np.square(W).sum(axis=0))
            c = self.dtype.type(op["max_norm"])
            W *= np.where(norms > c, c / np.where(norms > c, norms, 1), self.dtype.type(1))

    # -- contract ------------------------------------------------------------------------------
    def loss_and_grad(self, X, y, *, sample_weight=None):
        """Loss (with regularization) and gradients of every parameter on one batch, no update."""
        self._check_batchnorm_rows(X)
        logits, caches = self._forward(X, mode="train", step=0, buffers=[b.copy() for b in self.buffers])
        value, dlogits = self._loss(logits, y, sample_weight)
        grads = self._backward(dlogits, caches, 0)
        self._add_penalty_grads(grads)
        return value + self._penalty(), grads

    def _check_batchnorm_rows(self, X):
        """BatchNorm's batch statistics need two rows (the unbiased variance divides by n - 1):
        refused here, in the same words on every executor (the kernels' own checks differ)."""
        if len(X) < 2 and any(op["op"] == "batchnorm" for op in self.ops):
            raise ValueError(f"X has {len(X)} sample{'' if len(X) == 1 else 's'}, which BatchNorm cannot "
                             "normalize in training (its variance divides by n - 1): pass at least 2 samples")

    def train_epoch(self, X, y, perm, lrs, step0, *, batch_size, sample_weight=None, momentums=None):
        # Overflow is expected on a diverging run; it is detected and reported, not warned about.
        with np.errstate(all="ignore"), signals_between_steps() as interrupts:
            return self._train_epoch(X, y, perm, lrs, step0, batch_size, sample_weight, momentums, interrupts)

    def _train_epoch(self, X, y, perm, lrs, step0, batch_size, sample_weight, momentums, interrupts):
        n_steps = len(lrs)
        step_losses, grad_norms = [], []
        rows = skipped = 0
        loss_sum = 0.0
        hits = _Hits(self, y, perm)
        batches = [perm[s * batch_size:(s + 1) * batch_size] for s in range(n_steps)]
        # Python floats, as the optimizer takes them, converted once.
        lrs = np.asarray(lrs, dtype=np.float64).tolist()
        momentums = [None] * n_steps if momentums is None else np.asarray(momentums, dtype=np.float64).tolist()
        for s, (idx, lr, momentum) in enumerate(zip(batches, lrs, momentums)):
            try:
                interrupts()  # Ctrl-C since the last step: stop here, as the native engine does
            except BaseException as exc:  # noqa: BLE001 - whatever the handler raised is re-raised by the Trainer
                return self._stats(step_losses, grad_norms, loss_sum, rows, hits.count(), skipped,
                                   interrupted=exc)
            # take: the rows X[idx] gives, without fancy indexing's setup (a µs on small batches)
            xb, yb = X.take(idx, axis=0), y.take(idx, axis=0)
            wb = None if sample_weight is None else sample_weight.take(idx)
            step = step0 + s
            # BatchNorm's running statistics move only if the step is taken (finite loss and norm).
            trial_buffers = [b.copy() for b in self.buffers] if self.buffers else self.buffers
            value, logits = self._gradients(xb, yb, wb, step, trial_buffers)
            norm = self._grad_norm()
            step_losses.append(value)
            grad_norms.append(norm)
            if not (math.isfinite(value) and math.isfinite(norm)) or norm > self._clippable:
                if self.plan.nonfinite == "raise":
                    return self._stats(step_losses, grad_norms, loss_sum, rows, hits.count(), skipped, diverged=s)
                skipped += 1
                continue
            with self.weights_lock:  # the step's writes: one change to a reader in another thread
                if trial_buffers is not self.buffers:
                    for b, new in zip(self.buffers, trial_buffers):
                        b[...] = new
                self._update(lr=lr, grad_scale=self._clip(norm) if self.plan.clip else 1.0, cycled_value=momentum)
                if self.max_normed:
                    self._apply_max_norm()
                if step % FLUSH_EVERY == 0:
                    self._flush_subnormal_state()
            loss_sum += value * len(idx)
            rows += len(idx)
            hits.add(logits, yb, s * batch_size)
        try:
            interrupts()  # Ctrl-C during the last step: reported with every step counted
        except BaseException as exc:  # noqa: BLE001 - re-raised by the Trainer
            return self._stats(step_losses, grad_norms, loss_sum, rows, hits.count(), skipped, interrupted=exc)
        return self._stats(step_losses, grad_norms, loss_sum, rows, hits.count(), skipped)

    def _gradients(self, xb, yb, wb, step, buffers):
        """Forward, loss and backward of one training step on the batch: returns (loss with the
        penalty, logits) and leaves the gradient of every trainable tensor in self._flat_grad."""
        logits, caches = self._forward(xb, mode="train", step=step, buffers=buffers)
        value, dlogits = self._loss(logits, yb, wb)
        grads = self._backward(dlogits, caches, step, out=self._grad_out)
        if self.regularized:
            self._add_penalty_grads(grads)
            value += self._penalty()
        if self._copied_grads:
            self._gather_grads(grads)
        return value, logits

    def _gather_grads(self, grads):
        """Copy into the flat buffer the trainable gradients the kernels did not write there."""
        for i, view in self._copied_grads:
            view[...] = grads[i]

    def _clip(self, norm):
        """Clip the flat gradient as the Plan's clip rule says, in place; returns the scale for the
        optimizer to apply as it loads the gradient (clipping by global norm, `norm` before
        clipping)."""
        clip = self.plan.clip
        if clip["kind"] == "value":
            self.K.clip_by_value([self._flat_grad], clip["value"])
        elif clip["per_tensor"]:
            views = self._grad_views
            if not views:  # every layer frozen: nothing to clip (tensor_norms refuses an empty list)
                return 1.0
            for g, n in zip(views, self.K.tensor_norms(views)):
                if n > clip["max_norm"]:
                    self.K.scale_tensors([g], clip["max_norm"] / n)
        elif norm > clip["max_norm"]:
            return clip["max_norm"] / norm
        return 1.0

    def _flush_subnormal_state(self):
        """Set optimizer-state values below the dtype's smallest normal number to zero.

        The C++ engine runs with flush-to-zero (cpu::DenormalsAreZero); NumPy has no such mode,
        and the moments of units that get no gradient decay into the subnormal range, where
        every operation on them takes a ~100-cycle microcode assist (epochs 2x slower). This
        mirrors the engine for the state only: a subnormal formed inside a step (Adam's
        (1 - beta2) g^2 for |g| below ~1e-19 in float32) is flushed by the engine alone, and
        where it decides a result (eps=0 dividing by it) the executors part (README).
        """
        tiny = self._tiny
        for (piece,) in self._state_pieces:
            np.copyto(piece, 0, where=np.abs(piece) < tiny)

    @staticmethod
    def _stats(step_losses, grad_norms, loss_sum, rows, correct, skipped, diverged=None, interrupted=None):
        """EpochStats of the steps whose losses and gradient norms (lists of floats) are given."""
        return EpochStats(loss=loss_sum / rows if rows else float("nan"),
                          step_losses=np.array(step_losses, dtype=np.float64),
                          grad_norms=np.array(grad_norms, dtype=np.float64), correct=int(correct), rows=int(rows),
                          skipped=int(skipped), diverged_step=diverged, interrupted=interrupted)

    def _correct(self, logits, y):
        """Rows predicted right: argmax against the label (or the target row's argmax); for
        binary_cross_entropy, logit > 0 against target > 0.5 on every output of the row
        (multi-label: exact match), as the C++ engine counts."""
        if y.dtype.kind == "i":
            return np.count_nonzero(logits.argmax(axis=1) == y)
        if self.plan.loss == "binary_cross_entropy":
            return np.count_nonzero(((logits > 0) == (y > 0.5)).all(axis=1))
        if self.plan.loss == "cross_entropy":
            return np.count_nonzero(logits.argmax(axis=1) == y.argmax(axis=1))
        return 0

    def evaluate(self, X, y, *, sample_weight=None):
        # Finite inputs can overflow (X near the dtype's max): the loss comes back non-finite, as
        # from the C++ engine, without NumPy's RuntimeWarnings (fit is silent the same way).
        with np.errstate(all="ignore"):
            return self._evaluate(X, y, sample_weight)

    def _evaluate(self, X, y, sample_weight):
        total, correct = 0.0, 0
        for lo in range(0, len(X), PREDICT_CHUNK):
            xb, yb = X[lo:lo + PREDICT_CHUNK], y[lo:lo + PREDICT_CHUNK]
            wb = None if sample_weight is None else sample_weight[lo:lo + PREDICT_CHUNK]
            logits, _ = self._forward(xb, mode="eval")
            value, _ = self._loss(logits, yb, wb)
            total += value * len(xb)
            correct += self._correct(logits, yb)
        out = {"loss": float(total / len(X) + self._penalty())}
        if self.plan.classification:
            out["accuracy"] = float(correct / len(X))
        return out

    def predict(self, X, *, mc_samples=0, raw=True):
        """Network outputs for X: logits when raw, else through the link; with mc_samples=K,
        the (mean, std) of those outputs over K forward passes with dropout active
        (Monte-Carlo dropout; the population std, ddof=0)."""
        # As evaluate: outputs that overflow come back non-finite, without RuntimeWarnings.
        with np.errstate(all="ignore"):
            if mc_samples == 0:
                # Linked chunk by chunk into one array: the whole logits array, its concatenation
                # and the softmax's temporaries held four times the output at once.
                out = None
                for lo in range(0, len(X), PREDICT_CHUNK):
                    part = self._linked(self._predict_chunk(X[lo:lo + PREDICT_CHUNK], None), raw)
                    if out is None:
                        out = np.empty((len(X), part.shape[1]), part.dtype)
                    out[lo:lo + len(part)] = part
                return out
            return self._mc_moments(X, mc_samples, raw)

    def _mc_moments(self, X, mc_samples, raw):
        """(mean, std) over mc_samples passes, chunk by chunk: pass s over chunk c uses the step
        word mc_step(s, c), so the results do not depend on the order the chunks are visited in,
        and memory holds one chunk's statistics, not every pass (K times the output)."""
        mean = std = None
        for c, lo in enumerate(range(0, len(X), PREDICT_CHUNK)):
            x = X[lo:lo + PREDICT_CHUNK]
            # Welford's update, in float64: m2 adds (x - mean before) * (x - mean after), two
            # factors of one sign, so it never subtracts nearly equal large numbers, as
            # sum(x^2) - K mean^2 does where |mean| >> std (a shifted sum needs a shift near the
            # mean). The mean is the running sum over K, added pass by pass as np.mean adds.
            total = m2 = None
            for s in range(mc_samples):
                out = self._linked(self._predict_chunk(x, mc_step(s, c)), raw).astype(np.float64)
                if total is None:
                    total, m2 = out, np.zeros_like(out)
                    continue
                delta = out - total / s
                total += out
                m2 += delta * (out - total / (s + 1))
            if mean is None:
                mean = np.empty((len(X), total.shape[1]), self.dtype)
                std = np.empty_like(mean)
            mean[lo:lo + PREDICT_CHUNK] = total / mc_samples
            std[lo:lo + PREDICT_CHUNK] = np.sqrt(m2 / mc_samples)
        return mean, std

    def _predict_chunk(self, x, step):
        """Outputs for the rows x: in eval mode (step None), or with dropout active at the
        Monte-Carlo step word `step` (running BatchNorm statistics either way)."""
        if step is None:
            return self._forward(x, mode="eval")[0]
        return self._forward(x, mode="mc", step=step)[0]

    def _linked(self, outputs, raw):
        return outputs if raw else self.link(outputs)

    def link(self, logits):
        """Probabilities for the classification losses, identity for regression."""
        if self.plan.loss == "cross_entropy":
            z = logits - logits.max(axis=1, keepdims=True)
            e = np.exp(z)
            return e / e.sum(axis=1, keepdims=True)
        if self.plan.loss == "binary_cross_entropy":
            return reference.activation_forward(logits, 1, 0.0)
        return logits


class _Hits:
    """Rows predicted right over one epoch's taken steps (NumpyExecutor._correct's rules). Where
    the rule is an argmax (labels, cross_entropy targets), a step only stores its logits' argmax
    and the rows are compared once, at the end: counting every step costs three small array
    calls. binary_cross_entropy is counted every step."""

    def __init__(self, executor, y, perm):
        self.executor, self.y, self.perm = executor, y, perm
        self.by_argmax = y.dtype.kind == "i" or executor.plan.loss == "cross_entropy"
        self.per_step = not self.by_argmax and executor.plan.loss == "binary_cross_entropy"
        # Per row of perm, the predicted class; -1 (never a class) where no step was taken.
        self.predicted = np.full(len(perm), -1, np.intp) if self.by_argmax else None
        self.counted = 0

    def add(self, logits, y, first):
        """A taken step's rows, perm[first:first + len(logits)], with their logits and targets."""
        if self.by_argmax:
            logits.argmax(axis=1, out=self.predicted[first:first + len(logits)])
        elif self.per_step:
            self.counted += self.executor._correct(logits, y)

    def count(self):
        if not self.by_argmax:
            return self.counted
        target = self.y
        if target.ndim == 2:  # cross_entropy target rows: their argmax is the class (taken
            target = target.argmax(axis=1)  # first: a gather of the rows copied all of y)
        return np.count_nonzero(self.predicted == target.take(self.perm))


def mc_step(sample, chunk):
    """The dropout step word of Monte-Carlo pass `sample` over chunk `chunk` (PREDICT_CHUNK
    rows) of X: (sample << 16) | chunk, distinct for every pair within the limits."""
    if not (0 <= sample < MC_MAX_SAMPLES and 0 <= chunk < MC_MAX_ROWS // PREDICT_CHUNK):
        # Trainer.predict refuses such calls first; packed, they would repeat another's masks.
        raise ValueError(f"Monte-Carlo dropout takes at most {MC_MAX_SAMPLES} samples of {MC_MAX_ROWS} rows, "
                         f"got sample {sample}, chunk {chunk}")
    return (sample << 16) | chunk
