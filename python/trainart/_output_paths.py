"""Output files checked before a long run writes them (bench's --json, the demo's plot, the
callbacks' logs and checkpoints), so that the run's result is not lost to a typo in the path
at its end."""

import os
import stat

__all__ = ["file_problem", "plot_problem"]


def file_problem(path):
    """Why `path` cannot be written (None when it can). The file is opened for appending
    (and removed again if that created it): permission bits, a name too long and a read-only
    file system all show, also for root."""
    if not path:
        return "the path is empty"
    folder = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        return f"{path} is a directory"
    if not os.path.isdir(folder):
        return f"folder {folder} does not exist"
    if os.path.islink(path) and not os.path.exists(path):
        return None  # a dangling link: the write makes its target (a probe would leave one behind)
    if os.path.exists(path) and not stat.S_ISREG(os.stat(path).st_mode):
        return None  # /dev/stdout, a FIFO: written through as open() writes them; a probe could block
    existed = os.path.exists(path)
    try:
        with open(path, "a"):
            pass
    except OSError as exc:
        return exc.strerror or str(exc)
    if not existed:
        os.remove(path)
    return None


def plot_problem(path):
    """Why History.plot cannot write `path` (None when it can): the file it would write
    (".png" added to a path without an extension) and, with matplotlib installed, the format
    its extension names."""
    from ._figures import plot_path

    try:
        target = plot_path(path)
    except ValueError as exc:  # empty, a folder, or "folder/": no file name
        return str(exc)
    problem = file_problem(target)
    if problem:
        return problem
    try:
        from matplotlib.backend_bases import FigureCanvasBase
    except ImportError:
        return None  # the demo trains, then says the plot needs the [plot] extra
    fmt = os.path.splitext(target)[1][1:].lower()
    formats = FigureCanvasBase.get_supported_filetypes()
    if fmt not in formats:
        return f"matplotlib writes no '{fmt}' files (use one of {', '.join(sorted(formats))})"
    return None
