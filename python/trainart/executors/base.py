"""The executor contract (DESIGN §1): the only seam between the Python API and the engines.

An executor owns parameters, buffers (batch-norm running statistics), optimizer state and
scratch memory for a whole run. The Trainer calls it once per epoch; per-step work never
comes back to Python in the native executors.
"""

import contextlib
import dataclasses
import threading

import numpy as np

from .. import _validate

__all__ = ["Plan", "EpochStats", "Executor", "checked_buffers"]

# Guards every executor's count of open holding_workspace blocks (threads may share a Trainer).
_HOLDS_LOCK = threading.Lock()


def checked_buffers(values, targets, name="buffers"):
    """`values` as buffers for `targets` (running_mean, running_var per BatchNorm, as
    Sequential.init_buffers lists them): _validate.arrays_like, and no negative running
    variance (inference would take its square root: NaN predictions)."""
    out = _validate.arrays_like(values, targets, name)
    for i in range(1, len(out), 2):
        if (out[i] < 0).any():
            raise ValueError(f"{name}[{i}] is a running variance and must be >= 0, got {out[i].min()}")
    return out


@dataclasses.dataclass(frozen=True)
class Plan:
    """Everything an executor needs to run a model, as plain JSON-able values.

    ops: the model's op list (trainart.models.Sequential.ops()).
    loss: canonical loss name; loss_param: huber's delta.
    Targets come with each call: int64 class indices (cross_entropy) or a float matrix with
    one column per output.
    optimizer: the optimizer's config (trainart.optim.from_config rebuilds it).
    clip: None, {"kind": "norm", "max_norm", "per_tensor"} or {"kind": "value", "value"}.
    """

    input_dim: int
    output_dim: int
    ops: tuple
    loss: str
    loss_param: float
    optimizer: dict
    clip: dict = None
    dtype: str = "float32"
    seed: int = 0
    dropout_mode: str = "inverted"
    nonfinite: str = "raise"

    @property
    def trainable(self):
        """Per parameter tensor, whether the optimizer updates it."""
        flags = []
        for op in self.ops:
            if op["op"] == "dense":
                flags += [op["trainable"]] * 2
            elif op["op"] == "batchnorm":
                flags += [True, True]
        return flags

    @property
    def classification(self):
        return self.loss in ("cross_entropy", "binary_cross_entropy")


@dataclasses.dataclass
class EpochStats:
    """What one train_epoch call reports.

    loss: mean training loss over the rows visited (regularization included);
    step_losses: per-step batch losses; grad_norms: per-step global L2 norm of the gradients
    before clipping; correct: rows classified right (classification, dropout active; else 0;
    multi-label binary_cross_entropy: rows with every label right);
    rows: rows visited; skipped: steps skipped for non-finite values (nonfinite="skip");
    diverged_step: index of the step that turned non-finite (nonfinite="raise"), after which
    the epoch stopped with the parameters from before that step; None otherwise.
    interrupted: the exception a signal handler raised while the epoch ran (Ctrl-C:
    KeyboardInterrupt); the epoch stopped between two steps, after len(step_losses) of them
    (all of them for a signal that came as the last step ended: that epoch counts whole), and
    the caller re-raises it. None otherwise.
    """

    loss: float
    step_losses: np.ndarray
    grad_norms: np.ndarray
    correct: int
    rows: int
    skipped: int = 0
    diverged_step: int = None
    interrupted: BaseException = None


class Executor:
    """Interface every executor implements (see DESIGN §1 for the meaning of each call).

    An executor also has `weights_lock`, a reentrant lock it holds while it writes the weights
    (a step's writes, set_params, load_state_dict; a native epoch waits for it before starting)
    and the Trainer holds around a call that reads them whole (evaluate, predict, ...), so
    that threads see the weights of one step (of one epoch's end, on the cpu engine)."""

    name = "base"
    _workspace_holds = 0  # open holding_workspace blocks (an instance's own once one opens)

    def build(self, plan, params, buffers):
        raise NotImplementedError

    def train_epoch(self, X, y, perm, lrs, step0, *, batch_size, sample_weight=None, momentums=None):
        raise NotImplementedError

    def evaluate(self, X, y, *, sample_weight=None):
        raise NotImplementedError

    def predict(self, X, *, mc_samples=0, raw=True):
        raise NotImplementedError

    def get_params(self):
        raise NotImplementedError

    def set_params(self, params):
        raise NotImplementedError

    def state_dict(self):
        raise NotImplementedError

    def check_state(self, state):
        raise NotImplementedError

    def nonfinite_state(self):
        """The name of the first array of the live state (params[i], buffers[i], an optimizer
        slot) holding NaN or inf, or None; reads the executor's own arrays, as they are."""
        raise NotImplementedError

    def load_state_dict(self, state):
        raise NotImplementedError

    def loss_and_grad(self, X, y, *, sample_weight=None):
        raise NotImplementedError

    def release_workspace(self):
        """Give back the scratch memory sized by the rows of earlier calls, keeping what
        minibatch training and chunked evaluation and prediction reuse. A full-batch call
        (loss_and_grad or hvp on the whole data set) grows the native engine's scratch to every
        row, and calls only grow it, so that a loop of them allocates once: the Trainer calls
        this as each of its public calls ends, or it would hold its largest call's workspace
        for life. Inside holding_workspace() it waits for the outermost block to end."""
        with _HOLDS_LOCK:
            if self._workspace_holds:
                return
        self._release_workspace()

    @contextlib.contextmanager
    def holding_workspace(self):
        """Keep the scratch across the calls in this block (a full-batch optimizer calling
        loss_and_grad once per iteration reuses one allocation) and release it at the end of
        the outermost block (release_workspace)."""
        with _HOLDS_LOCK:
            self._workspace_holds += 1
        try:
            yield self
        finally:
            with _HOLDS_LOCK:
                self._workspace_holds -= 1
            self.release_workspace()

    def _release_workspace(self):
        """Free the scratch (release_workspace decided it is time). The NumPy executors
        allocate per call and hold none: nothing to do."""
