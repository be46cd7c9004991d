"""The NumPy reference: plain code that defines what every native kernel must compute.

Each op module mirrors one kernel file pair (cpp/cpu/<op>.cpp) and its functions have the names
and signatures of the corresponding _cpu bindings, so either can serve trainart.ops. Three
modules mirror no kernel: pieces.py (cache-sized passes over large arrays), bound.py (kernels
bound to the NumPy executor's fixed buffers) and trusted.py (the kernels without their per-call
checks), all serving the NumPy executor.
"""

from .activation import *  # noqa: F401,F403
from .batchnorm import *  # noqa: F401,F403
from .clip import *  # noqa: F401,F403
from .dense import *  # noqa: F401,F403
from .dropout import *  # noqa: F401,F403
from .loss import *  # noqa: F401,F403
from .optimizer import *  # noqa: F401,F403
from .solve import *  # noqa: F401,F403
