"""The shared shape of every standalone optimizer: an immutable, validated config whose `init`
makes a plain-dict state and whose `step` runs one trainart.ops multi-tensor update in place."""

import dataclasses

import numpy as np

from .._validate import array_list, integer, real

__all__ = ["Optimizer", "get", "from_config", "REGISTRY"]

# name -> class, filled by @register in optimizers.py.
REGISTRY = {}


def register(cls):
    REGISTRY[cls.name] = cls
    return cls


@dataclasses.dataclass(frozen=True)
class Optimizer:
    """Base of the optimizers in trainart.optim; subclasses are frozen dataclasses.

    Use: ``state = opt.init(params)``, then ``opt.step(params, grads, state)`` per step, which
    updates `params` and `state` in place. The state is a plain dict ({"step": int, slot name:
    list of arrays like params, ...}) of NumPy arrays and JSON-able values.
    """

    name = ""
    # Which schedule-cycled hyperparameter step() accepts as an override: "momentum" or "beta1".
    cycled = None
    # The keys Trainer.fit adds to every epoch's logs for this optimizer (beside loss,
    # accuracy, lr, grad_norm, skipped): callbacks may monitor them.
    log_keys = ()

    def _set(self, **values):
        for key, value in values.items():
            object.__setattr__(self, key, value)

    @property
    def slots(self):
        """Names of the per-parameter state tensors, in the order the kernel takes them."""
        return ()

    def config(self):
        """A JSON-able dict that `trainart.optim.from_config` turns back into this optimizer."""
        d = {"name": self.name}
        for field in dataclasses.fields(self):
            if not field.init:  # fixed by the class (AdamW's decoupled_weight_decay)
                continue
            value = getattr(self, field.name)
            d[field.name] = list(value) if isinstance(value, tuple) else value
        return d

    def _initial(self, slot):
        """The value every entry of `slot` starts at in `init`."""
        return 0.0

    def init(self, params):
        """A fresh state for `params` (an array or a list of arrays): step 0 and one array per
        parameter in each slot, filled with the slot's starting value: 0, except Adagrad's
        sum, which starts at its initial_accumulator_value."""
        params = array_list(params, "params")
        state = {"step": 0}
        for slot in self.slots:
            state[slot] = [np.full(p.shape, self._initial(slot), p.dtype) for p in params]
        return state

    def _state(self, state):
        if not isinstance(state, dict):
            raise TypeError(f"state must be a dict made by init(), got {type(state).__name__}")
        missing = [k for k in ("step",) + tuple(self.slots) if k not in state]
        if missing:
            raise ValueError(f"state is missing {', '.join(map(repr, missing))}: make it with "
                             f"{type(self).__name__}.init(params)")
        return integer(state["step"], "state['step']", low=0)

    def step(self, params, grads, state, *, lr=None, grad_scale=1.0, momentum=None, beta1=None,
             backend="auto"):
        """One update of `params` and `state` in place; nothing changes if validation fails.

        Args:
            params, grads: an array or a list of arrays (one dtype, matching shapes).
            state: the dict from `init`, advanced by one step.
            lr: overrides the configured learning rate for this step (schedules).
            grad_scale: multiplies the gradients as they are loaded (clip-by-global-norm).
            momentum: overrides SGD's / RMSprop's momentum for this step (1cycle).
            beta1: overrides beta1 of the Adam family for this step (1cycle).
            backend: "auto" | "numpy" | "cpu".
        """
        step = self._state(state)
        lr = self.lr if lr is None else real(lr, "lr", low=0.0)
        overrides = {}
        for key, value in (("momentum", momentum), ("beta1", beta1)):
            if value is None:
                continue
            if self.cycled != key:
                raise ValueError(f"{type(self).__name__} has no {key} to override")
            overrides[key] = value
        self._update(params, grads, state, lr=lr, step=step + 1, grad_scale=grad_scale,
                     backend=backend, **overrides)

    def _update(self, params, grads, state, **kw):
        raise NotImplementedError


def get(name, **kwargs):
    """The optimizer called `name` (sgd, adagrad, rmsprop, adam, adamw, adamax, nadam), built
    with `kwargs`."""
    if not isinstance(name, str) or name.lower() not in REGISTRY:
        raise ValueError(f"name must be one of {', '.join(map(repr, REGISTRY))}; got {name!r}")
    return REGISTRY[name.lower()](**kwargs)


def from_config(config):
    """Rebuild an optimizer from `opt.config()`."""
    if not isinstance(config, dict) or "name" not in config:
        raise ValueError("config must be a dict with a 'name' key, as made by Optimizer.config()")
    kwargs = {k: v for k, v in config.items() if k != "name"}
    if "betas" in kwargs and isinstance(kwargs["betas"], list):
        kwargs["betas"] = tuple(kwargs["betas"])
    return get(config["name"], **kwargs)
