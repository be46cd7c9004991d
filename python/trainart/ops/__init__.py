"""Kernel-level API: every native kernel as a validated function with one `backend` argument
("auto" | "numpy" | "cpu"). The same call gives the same numbers on every backend (float64 to
~1e-10, float32 to ~1e-5: sums may be split differently; dropout masks bit for bit)."""

from .activation import *  # noqa: F401,F403
from .batchnorm import *  # noqa: F401,F403
from .clip import *  # noqa: F401,F403
from .dense import *  # noqa: F401,F403
from .dropout import *  # noqa: F401,F403
from .loss import *  # noqa: F401,F403
from .optimizer import *  # noqa: F401,F403
from .solve import *  # noqa: F401,F403
