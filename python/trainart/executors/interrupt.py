"""Signals between steps: how the NumPy executor makes a Python signal handler (Ctrl-C's
KeyboardInterrupt, a timeout's SIGALRM, a SIGTERM handler raising SystemExit) take effect at a
step boundary, as the native engine does (it runs Python's signal handlers between its steps),
so that no step (forward, backward, optimizer update) is ever cut in half and the Trainer
counts every step taken."""

import contextlib
import signal
import threading

try:  # the C functions under `signal`: its wrappers turn every number into an enum member,
    import _signal as _raw  # which cost ~0.1 ms an epoch over the ~60 signals (2 % of a small epoch)
except ImportError:  # pragma: no cover - an interpreter without it
    _raw = signal

__all__ = ["signals_between_steps"]


def _deferred_signals():
    """{signal: handler} of the signals to defer: those whose handler was set from Python, and
    SIGINT under its default action too (the engine lets Ctrl-C stop between steps either way).
    A handler set outside Python (getsignal gives None) could not be put back: left alone."""
    out = {}
    for signum in _raw.valid_signals():
        try:
            handler = _raw.getsignal(signum)
        except (OSError, ValueError):
            continue
        if callable(handler) or (signum == signal.SIGINT and handler == signal.SIG_DFL):
            out[signum] = handler
    return out


@contextlib.contextmanager
def signals_between_steps():
    """Defer the signals Python handles for the duration: yields `check`, to call between
    steps, which runs the handler that was installed for each signal that arrived since, in
    arrival order (SIGINT's default: KeyboardInterrupt). A handler's exception leaves `check`
    (the steps before it count). Signals that arrive after the last check are not lost: they
    are delivered once the handlers are back. Outside the main thread, where Python runs no
    signal handlers, `check` does nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield lambda: None
        return
    previous = _deferred_signals()
    arrived = []

    def record(signum, frame):
        arrived.append((signum, frame))

    installed = {}
    try:
        for signum in previous:
            try:
                signal.signal(signum, record)
                installed[signum] = previous[signum]
            except (OSError, ValueError):  # a signal that cannot be caught here: left as it was
                pass

        def check():
            while arrived:
                signum, frame = arrived.pop(0)
                handler = installed[signum]
                if callable(handler):
                    handler(signum, frame)
                else:  # SIGINT's default action: restore it and let it happen
                    signal.signal(signum, handler)
                    signal.raise_signal(signum)

        yield check
    finally:
        for signum, handler in installed.items():
            signal.signal(signum, handler)
        for signum, _ in arrived:  # arrived after the last check: delivered now the handler is back
            signal.raise_signal(signum)
