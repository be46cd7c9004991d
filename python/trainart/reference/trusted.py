"""The reference kernels as the NumPy executor calls them: the same functions, minus the
per-call argument checks of those whose checks cost as much as their work on small batches.
The executor's inputs were validated once, when fit began; everything else is trainart.reference."""

from . import *  # noqa: F401,F403
from .loss import _cross_entropy_labels as cross_entropy_labels  # noqa: F401
from .optimizer import _adagrad_update as adagrad_update  # noqa: F401
from .optimizer import _adam_update as adam_update  # noqa: F401
from .optimizer import _adamax_update as adamax_update  # noqa: F401
from .optimizer import _nadam_update as nadam_update  # noqa: F401
from .optimizer import _rmsprop_update as rmsprop_update  # noqa: F401
from .optimizer import _sgd_update as sgd_update  # noqa: F401
