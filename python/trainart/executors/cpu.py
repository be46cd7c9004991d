"""The CPU executor: whole epochs in the C++ engine (trainart._cpu.EngineF32/F64) with the GIL
released. Parameters, buffers and optimizer state stay NumPy arrays owned here — the engine
updates them in place — so state handling is the reference executor's."""

import numpy as np

from .. import _native
from ..reference.activation import ACTIVATION_CODES
from ..reference.loss import LOSS_CODES
from .base import EpochStats
from .numpy import PREDICT_CHUNK, NumpyExecutor

__all__ = ["CpuExecutor"]

_OP_KINDS = {"dense": 0, "activation": 1, "dropout": 2, "batchnorm": 3}
_OPT_KINDS = {"sgd": 0, "adagrad": 1, "rmsprop": 2, "adam": 3, "adamw": 3, "adamax": 4, "nadam": 5}
_CLIP_KINDS = {None: 0, "norm": 1, "per_tensor": 2, "value": 3}


def engine_spec(plan, optimizer):
    """The dict the C++ engine is built from: the Plan's ops with widths, and coded choices."""
    ops, width = [], plan.input_dim
    for op in plan.ops:
        kind = op["op"]
        out = op["fan_out"] if kind == "dense" else width
        spec = {"kind": _OP_KINDS[kind], "width_in": width, "width_out": out, "act": 0, "act_param": 0.0,
                "fused_dropout": False, "w": -1, "b": -1, "l1": 0.0, "l2": 0.0, "max_norm": 0.0,
                "trainable": True, "rate": 0.0, "layer": 0, "buffer": -1, "momentum": 0.1, "eps": 1e-5}
        if kind in ("dense", "activation"):
            spec.update(act=ACTIVATION_CODES[op["act"]], act_param=float(op["param"]))
        if kind == "dense":
            spec.update(w=op["W"], b=op["b"], l1=op["l1"], l2=op["l2"], max_norm=op["max_norm"] or 0.0,
                        trainable=op["trainable"], fused_dropout=op["fused_dropout"])
        elif kind == "dropout":
            spec.update(rate=op["rate"], layer=op["layer"])
        elif kind == "batchnorm":
            spec.update(w=op["gamma"], b=op["beta"], buffer=op["buffer"], momentum=op["momentum"], eps=op["eps"])
        ops.append(spec)
        width = out
    name = optimizer.name
    betas = getattr(optimizer, "betas", (0.9, 0.999))
    opt = {"kind": _OPT_KINDS[name], "weight_decay": float(getattr(optimizer, "weight_decay", 0.0)),
           "beta1": float(betas[0]), "beta2": float(betas[1]), "alpha": float(getattr(optimizer, "alpha", 0.99)),
           "eps": float(getattr(optimizer, "eps", 1e-8)), "momentum": float(getattr(optimizer, "momentum", 0.0)),
           "dampening": float(getattr(optimizer, "dampening", 0.0)),
           "lr_decay": float(getattr(optimizer, "lr_decay", 0.0)),
           "momentum_decay": float(getattr(optimizer, "momentum_decay", 0.0)),
           "nesterov": bool(getattr(optimizer, "nesterov", False)),
           "amsgrad": bool(getattr(optimizer, "amsgrad", False)),
           "centered": bool(getattr(optimizer, "centered", False)),
           "decoupled": bool(getattr(optimizer, "decoupled_weight_decay", False)),
           "maximize": bool(getattr(optimizer, "maximize", False)),
           "cycled": {None: 0, "momentum": 1, "beta1": 2}[optimizer.cycled]}
    clip = plan.clip or {}
    clip_kind = None if not clip else ("per_tensor" if clip.get("per_tensor") else clip["kind"])
    return {"ops": ops, "loss": LOSS_CODES[plan.loss], "loss_param": float(plan.loss_param), "opt": opt,
            "clip": _CLIP_KINDS[clip_kind], "clip_value": float(clip.get("max_norm", clip.get("value", 0.0))),
            "seed": plan.seed, "inverted": plan.dropout_mode == "inverted",
            "raise_nonfinite": plan.nonfinite == "raise"}


class CpuExecutor(NumpyExecutor):
    """Runs epochs, evaluation and prediction in the C++ engine; state lives in NumPy arrays."""

    name = "cpu"

    def __init__(self):
        cpu = _native.require("cpu")
        super().__init__(kernels=cpu)

    def build(self, plan, params, buffers):
        super().build(plan, params, buffers)
        cpu = self.K
        names = self.opt_spec[2]
        slots = [[self.slot_views[name][j] if name in self.slot_views else None for name in names]
                 for j in range(len(self.trainable))]
        engine_cls = cpu.EngineF32 if self.dtype == np.float32 else cpu.EngineF64
        self.engine = engine_cls(engine_spec(plan, self.optimizer), self.params, self.buffers,
                                 self.trainable, slots)
        return self

    @staticmethod
    def _targets(y):
        return (y, None) if y.dtype.kind == "i" else (None, y)

    def train_epoch(self, X, y, perm, lrs, step0, *, batch_size, sample_weight=None, momentums=None):
        labels, targets = self._targets(y)
        # A read of several chunks in progress (predict from another thread) ends before the
        # epoch starts. The lock is not held through the epoch: the engine runs Python signal
        # handlers between its steps, and one that waits on a thread calling predict would wait
        # for itself. The engine's own mutex keeps each of its calls whole.
        with self.weights_lock:
            pass
        out = self.engine.train_epoch(X, labels, targets, sample_weight, perm, lrs, momentums, step0,
                                      batch_size, self.opt_state["step"], self.opt_state.get("mu_product", 1.0))
        self.opt_state["step"] = out["opt_step"]
        if "mu_product" in self.opt_state:
            self.opt_state["mu_product"] = out["mu_product"]
        rows = out["rows"]
        return EpochStats(loss=out["loss_sum"] / rows if rows else float("nan"), step_losses=out["step_losses"],
                          grad_norms=out["grad_norms"], correct=out["correct"], rows=rows,
                          skipped=out["skipped"], diverged_step=out["diverged_step"],
                          interrupted=out["interrupt"])

    def evaluate(self, X, y, *, sample_weight=None):
        total, correct = 0.0, 0
        for lo in range(0, len(X), PREDICT_CHUNK):
            sl = slice(lo, lo + PREDICT_CHUNK)
            labels, targets = self._targets(y[sl])
            loss_sum, c = self.engine.evaluate(X[sl], labels, targets,
                                               None if sample_weight is None else sample_weight[sl])
            total += loss_sum
            correct += c
        with np.errstate(over="ignore"):  # a huge total is inf, as the NumPy executor's
            out = {"loss": total / len(X) + self._penalty()}
        if self.plan.classification:
            out["accuracy"] = correct / len(X)
        return out

    def _predict_chunk(self, x, step):
        return self.engine.forward(x, 0, 0) if step is None else self.engine.forward(x, 1, step)

    def loss_and_grad(self, X, y, *, sample_weight=None):
        self._check_batchnorm_rows(X)
        labels, targets = self._targets(y)
        grads = [np.empty_like(p) for p in self.params]
        value = self.engine.loss_and_grad(X, labels, targets, sample_weight, grads)
        return value, grads

    def _release_workspace(self):
        """Free the engine's scratch beyond the PREDICT_CHUNK rows evaluate and predict run at a
        time, which also hold any usual minibatch (a fit's epochs reuse theirs inside the fit;
        a full-batch fit's whole-data scratch goes as the fit ends)."""
        self.engine.release_workspace(PREDICT_CHUNK)
