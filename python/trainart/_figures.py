"""Figures for History.plot and SearchResult.plot (matplotlib is the optional extra "plot")."""


def agg_figure(figsize, caller):
    """A Figure on its own Agg canvas, built without pyplot: no backend is switched and no
    global figure is kept. ImportError naming `caller` and the extra without matplotlib."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as exc:
        _raise_missing(exc, caller)
    fig = Figure(figsize=figsize)
    FigureCanvasAgg(fig)
    return fig


def pyplot_figure(figsize, caller):
    """A pyplot figure of the backend the user configured (shown inline in Jupyter, by
    plt.show() elsewhere; without a display matplotlib picks a non-GUI backend itself)."""
    try:
        import matplotlib.pyplot as plt
    except ImportError as exc:
        _raise_missing(exc, caller)
    return plt.figure(figsize=figsize)


def figure(figsize, path, caller):
    """What a plot method draws on: with a `path` to write, an Agg figure (nothing left open in
    pyplot); without one, a pyplot figure of the user's backend, to show."""
    return (agg_figure if path is not None else pyplot_figure)(figsize, caller)


def _raise_missing(exc, caller):
    """Raise for a failed matplotlib import: the extra to install when matplotlib is missing,
    else the import error itself (matplotlib is there, something it needs is broken)."""
    import importlib.util

    if importlib.util.find_spec("matplotlib") is not None:
        raise exc
    raise ImportError(f"{caller} needs matplotlib: pip install trainart[plot]") from None
