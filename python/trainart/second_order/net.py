"""The network as a function of an explicit parameter list: the executor's forward, loss,
backward and penalty run on trial parameters and any kernel module (trainart.reference or
_cpu), so the second-order optimizers never touch the executor's own parameters."""

import numpy as np

from ..ops.dropout import dropout_scale

__all__ = ["Net", "Layout", "UNSUPPORTED_OPS"]

UNSUPPORTED_OPS = ("batchnorm",)


class Net:
    """The executor's network with the executor's semantics (training mode, deterministic
    Philox dropout masks for a given step, Keras-style l1/l2 penalty on W).

    Args:
        executor: a built NumpyExecutor or CpuExecutor (its plan and kernels are read).
        kernels: the kernel module to run on (default: the executor's ``K``).
        dtype: the dtype of the computation (default: the executor's).
    """

    def __init__(self, executor, kernels=None, dtype=None):
        self.ex = executor
        self.plan = executor.plan
        self.ops = executor.plan.ops
        self.K = executor.K if kernels is None else kernels
        self.dtype = np.dtype(executor.dtype if dtype is None else dtype)
        for op in self.ops:
            if op["op"] in UNSUPPORTED_OPS:
                raise ValueError(
                    "second-order curvature (hessian, hvp, Newton, GaussNewton, LBFGS) does not "
                    "support BatchNorm layers yet: their batch statistics couple the rows; "
                    "remove BatchNorm or use a first-order optimizer")
        self.first = next(i for i, op in enumerate(self.ops) if op["op"] == "dense")

    # -- pieces --------------------------------------------------------------------------------
    def dropout(self, h, op, step):
        """The training-mode dropout of op at `step` (the executors' masks: the step word is the
        counter's low 32 bits)."""
        return self.K.dropout(np.ascontiguousarray(h), op["rate"], self.plan.seed, op["layer"], step & 0xFFFFFFFF,
                              dropout_scale(op["rate"], self.plan.dropout_mode))

    def forward(self, params, X, step=0):
        """(logits, caches) in training mode, the executor's forward on these params;
        caches[i] is (input, z, a) for dense ops, (input, a) for activation ops."""
        return self.ex._forward(X, mode="train", step=step, buffers=[], params=params, K=self.K, fuse=False)

    def loss(self, logits, y, weight):
        """(mean loss without penalty, d loss / d logits)."""
        return self.ex._loss(logits, y, weight, K=self.K)

    def backward(self, params, dlogits, caches, step=0):
        """Gradients of every parameter (None for none), without the penalty."""
        return self.ex._backward(dlogits, caches, step, params=params, K=self.K)

    def penalty(self, params):
        """l1 sum|W| + l2 sum W^2 over the dense layers (float)."""
        return self.ex._penalty(params)

    def add_penalty_grads(self, params, grads):
        """grads[W] += 2 l2 W + l1 sign(W), in place."""
        self.ex._add_penalty_grads(grads, params)

    # -- whole objective -----------------------------------------------------------------------
    def value(self, params, X, y, weight, step=0):
        """Mean loss plus penalty at `params` (a float; inf/nan pass through)."""
        with np.errstate(all="ignore"):
            logits, _ = self.forward(params, X, step)
            value, _ = self.loss(logits, y, weight)
        return float(value) + self.penalty(params)

    def value_and_grad(self, params, X, y, weight, step=0, with_caches=False):
        """(loss with penalty, gradient list[, (logits, caches)])."""
        with np.errstate(all="ignore"):
            logits, caches = self.forward(params, X, step)
            value, dlogits = self.loss(logits, y, weight)
            grads = self.backward(params, dlogits, caches, step)
            self.add_penalty_grads(params, grads)
        value = float(value) + self.penalty(params)
        return (value, grads, (logits, caches)) if with_caches else (value, grads)


class Layout:
    """The flat parameter vector (get_params() order, each array flattened, float64) and the
    mask of its trainable entries."""

    def __init__(self, params, trainable):
        self.shapes = [np.shape(p) for p in params]
        self.sizes = [int(np.prod(s)) for s in self.shapes]
        self.offsets = np.concatenate([[0], np.cumsum(self.sizes)]).astype(int)
        self.size = int(self.offsets[-1])
        self.mask = np.concatenate([np.full(s, bool(t)) for s, t in zip(self.sizes, trainable)])

    def flatten(self, arrays):
        return np.concatenate([np.asarray(a, dtype=np.float64).ravel() for a in arrays])

    def unflatten(self, flat, dtype=np.float64):
        return [np.ascontiguousarray(flat[o:o + n].reshape(s), dtype=dtype)
                for o, n, s in zip(self.offsets[:-1], self.sizes, self.shapes)]

    def slice(self, i):
        return slice(int(self.offsets[i]), int(self.offsets[i + 1]))
