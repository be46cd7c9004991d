"""Figures for History.plot, SearchResult.plot and the recipe reports' plot (matplotlib is the
optional extra "plot"): what they draw on and how they write it."""

import os


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


def plot_path(path):
    """The file ``History.plot(path)`` writes: `path` itself, or with ".png" appended when it
    has no extension, or in place of a bare trailing "." (matplotlib's rule). ValueError for an
    empty path or a folder (matplotlib would write ".png.png" there)."""
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a str, os.PathLike or None, got {type(path).__name__}")
    path = os.fspath(path)
    if not os.path.basename(path) or os.path.isdir(path):
        raise ValueError(f"path must name a file to write the plot to, got {path!r} (a folder or nothing)")
    root, ext = os.path.splitext(path)
    return root + ".png" if ext in ("", ".") else path  # "curves." too writes curves.png


def save_figure(fig, path, **savefig):
    """Write `fig` to `path` (None: nothing) as every plot method of trainart does: a binary
    file object as matplotlib takes it (PNG), else the file `plot_path` names, or its
    TypeError / ValueError."""
    if path is not None:
        fig.savefig(path if hasattr(path, "write") else plot_path(path), **savefig)
