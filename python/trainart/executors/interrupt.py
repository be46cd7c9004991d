"""Ctrl-C between steps: how the NumPy executor makes an interrupt take effect at a step
boundary, as the native engine does (it runs Python's signal handlers between its steps), so
that no step (forward, backward, optimizer update) is ever cut in half."""

import contextlib
import signal
import threading

__all__ = ["sigint_between_steps"]


@contextlib.contextmanager
def sigint_between_steps():
    """Defer SIGINT for the duration: yields `check`, to call between steps, which runs the
    handler that was installed (by default raising KeyboardInterrupt) if SIGINT arrived since.
    Outside the main thread, where Python runs no signal handlers, or when the installed
    handler was not set from Python (it could not be put back), `check` does nothing."""
    if threading.current_thread() is not threading.main_thread() or signal.getsignal(signal.SIGINT) is None:
        yield lambda: None
        return
    frames = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: frames.append(frame))

    def check():
        if not frames:
            return
        frame = frames[-1]
        frames.clear()
        if callable(previous):
            previous(signal.SIGINT, frame)
        elif previous == signal.SIG_DFL:  # the default action: restore it and let it happen
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            signal.raise_signal(signal.SIGINT)

    try:
        yield check
    finally:
        signal.signal(signal.SIGINT, previous)
        if frames:  # arrived after the last check: not lost, delivered now the handler is back
            signal.raise_signal(signal.SIGINT)
