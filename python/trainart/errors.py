"""Exceptions trainart raises beyond ValueError and TypeError."""


class BackendUnavailableError(RuntimeError):
    """A backend was asked for by name but its compiled module is not built."""


class TrainingDiverged(FloatingPointError):
    """Loss or gradients became NaN/inf during training (``nonfinite="raise"``)."""


class CheckpointError(ValueError):
    """A checkpoint file is truncated, altered or not a trainart checkpoint."""
