"""warn(): warnings.warn pointed at the user's code, whichever trainart function raised it."""

import os
import sys
import sysconfig
import warnings

_PACKAGE = os.path.dirname(os.path.abspath(__file__)) + os.sep
_STDLIB = os.path.abspath(sysconfig.get_paths()["stdlib"]) + os.sep


def _internal(filename):
    """Whether a frame of `filename` is trainart's own or the standard library's (copy.deepcopy
    and pickle.loads calling into trainart), not the user's."""
    if filename.startswith("<frozen "):  # Python 3.11+: runpy, importlib, os as frozen modules
        return True
    path = os.path.abspath(filename)
    if path.startswith(_PACKAGE):
        return True
    return path.startswith(_STDLIB) and "site-packages" not in path and "dist-packages" not in path


def warn(message, category=UserWarning):
    """Issue `message` as a `category` warning attributed to the innermost frame outside
    trainart and the standard library: the user's line, however deep inside trainart the
    condition was found (a fixed stacklevel names trainart's own file when another trainart
    function is the caller, and the default once-per-location filter then hides the warning
    for every later user line). Where no such frame exists, the caller's."""
    frame, level = sys._getframe(1), 2
    while frame is not None and _internal(frame.f_code.co_filename):
        frame, level = frame.f_back, level + 1
    warnings.warn(message, category, stacklevel=level if frame is not None else 2)
