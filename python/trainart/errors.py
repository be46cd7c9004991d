"""Exceptions trainart raises beyond ValueError and TypeError."""


class BackendUnavailableError(RuntimeError):
    """A backend was asked for by name but its compiled module is not built."""


class TrainingDiverged(FloatingPointError):
    """Training went non-finite (``nonfinite="raise"``): a step's loss or gradients became NaN
    or inf (the state from before that step is kept), or, found at the end of an epoch, an
    update overflowed what it writes (weights, optimizer moments, running variances) from a
    finite loss and gradient (that state is as the epoch left it)."""


def kept_state(overflowed):
    """How a TrainingDiverged of one step describes what it keeps: `overflowed` is the
    executor's nonfinite_state() (None: the state from before the step is all finite)."""
    if overflowed is None:
        return "the weights from before that step are kept"
    return (f"the state from before that step is kept, but its {overflowed} is already NaN or inf: the "
            "update before overflowed it")


class CheckpointError(ValueError):
    """A checkpoint file is truncated, altered or not a trainart checkpoint."""
