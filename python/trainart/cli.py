"""The `trainart` command: `trainart demo` (train on the bundled digits) and `trainart bench`
(kernel microbenchmarks)."""

import argparse
import os
import sys

from ._output_paths import file_problem, plot_problem
from .errors import BackendUnavailableError


def _positive_int(text):
    """argparse type: an integer >= 1 (argparse names the option in its usage error)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {value}")
    return value


def _epoch_count(text):
    """argparse type: the demo's epoch budget, 1 to 1,000,000 (far past any use, and well inside
    the int64 step counter at the demo's 191 steps an epoch)."""
    value = _positive_int(text)
    if value > 1_000_000:
        raise argparse.ArgumentTypeError(f"expected at most 1000000 epochs, got {value}")
    return value


def _thread_count(text):
    """argparse type: a thread count, 1 to trainart.MAX_THREADS."""
    from . import MAX_THREADS

    value = _positive_int(text)
    if value > MAX_THREADS:
        raise argparse.ArgumentTypeError(f"expected at most {MAX_THREADS} threads, got {value}")
    return value


def _op_list(text):
    """argparse type: comma-separated kernel families, each one of microbench.MODULES."""
    from . import microbench

    names = [name.strip() for name in text.split(",")]
    if any(not name for name in names):
        raise argparse.ArgumentTypeError(f"empty op name in {text!r}; choose from "
                                         f"{', '.join(microbench.MODULES)}")
    unknown = sorted(set(names) - set(microbench.MODULES))
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown op(s) {', '.join(unknown)}; choose from "
                                         f"{', '.join(microbench.MODULES)}")
    return list(dict.fromkeys(names))  # each family once


def _bench(args, say):
    from . import microbench

    progress = (lambda msg: print(f"  {msg}", file=sys.stderr, flush=True)) if args.verbose else None
    # --threads sets NumPy's BLAS too (the dense equivalent's GEMMs): "x numpy" compares the
    # same thread counts, and the table's first line says which.
    results = microbench.run(args.ops, quick=args.quick, progress=progress, threads=args.threads)
    if args.json:  # before the table: a reader that stops early loses only printed text
        try:
            microbench.to_json(results, args.json)
        except OSError as exc:  # a full disk: the run is not lost, its table still prints
            say(microbench.format_table(results))
            raise SystemExit(f"trainart bench: error: cannot write {args.json}: {exc.strerror or exc}") from None
    say(microbench.format_table(results))
    if args.json:
        say(f"wrote {args.json}")


def _demo(args, say):
    from . import demo

    if args.threads:
        import trainart

        trainart.set_num_threads(args.threads)
    demo.run(plot=None if args.no_plot else args.plot, executor=args.executor, epochs=args.epochs, say=say)


def _to_devnull(stream):
    """Point `stream`'s file descriptor at os.devnull once its reader has gone: text still in
    its buffer is flushed again when the interpreter exits, and would raise a second
    BrokenPipeError there (the recipe of the signal module's "Note on SIGPIPE")."""
    try:
        fd = stream.fileno()
    except (AttributeError, OSError, ValueError):  # None, or a stream without a descriptor
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, fd)
    os.close(devnull)


def _flush(stream):
    """Flush `stream`; True if its reader has gone (the stream then points at os.devnull)."""
    if stream is None:  # pythonw
        return False
    try:
        stream.flush()
    except BrokenPipeError:
        _to_devnull(stream)
        return True
    return False


class _Report:
    """Prints a command's report lines (`say`). When the reader of stdout goes away (`trainart
    demo | head -1`), the lines after that are dropped instead of ending the run, so that the
    files the run was asked for (demo's plot, bench's --json) are still written; `lost` then
    makes main exit with status 1."""

    def __init__(self):
        self.lost = False

    def __call__(self, line):
        if self.lost:
            return
        try:
            print(line, flush=True)  # flushed, so that a closed pipe shows here, not at exit
        except BrokenPipeError:
            _to_devnull(sys.stdout)
            self.lost = True


def main(argv=None):
    parser = argparse.ArgumentParser(prog="trainart", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="train an MLP on the bundled digits and plot its curves")
    demo.add_argument("--plot", default="digits_curves.png", help="where to write the curves PNG")
    demo.add_argument("--no-plot", action="store_true", help="skip the plot")
    demo.add_argument("--executor", default="auto", choices=("auto", "numpy", "cpu"))
    demo.add_argument("--epochs", type=_epoch_count, default=60, help="training epochs (1 to 1000000)")
    demo.add_argument("--threads", type=_thread_count, help="threads for trainart, >= 1 (default: all cores)")
    demo.set_defaults(func=_demo)
    bench = sub.add_parser("bench", help="time every kernel against NumPy and its floor")
    bench.add_argument("--ops", type=_op_list, help="comma-separated kernel families (default: all)")
    bench.add_argument("--quick", action="store_true", help="small sizes, few repeats")
    bench.add_argument("--threads", type=_thread_count,
                       help="threads for trainart and NumPy's BLAS, >= 1 (default: all cores)")
    bench.add_argument("--json", metavar="FILE", help="also write the numbers as JSON")
    bench.add_argument("-v", "--verbose", action="store_true", help="print each case as it runs")
    bench.set_defaults(func=_bench)
    try:
        args = parser.parse_args(argv)
    except SystemExit:
        _flush(sys.stdout)  # --help into a closed pipe: argparse already ignores the failed write
        raise
    # Output files are written at the end of a run of seconds to minutes: refuse a path that
    # cannot be written before anything runs.
    if args.command == "bench" and args.json is not None:
        problem = file_problem(args.json)
        if problem:
            bench.error(f"argument --json: cannot write {args.json}: {problem}")
    if args.command == "demo" and not args.no_plot:
        problem = plot_problem(args.plot)
        if problem:
            demo.error(f"argument --plot: cannot write {args.plot}: {problem}")
    say = _Report()
    try:
        args.func(args, say)
    except BackendUnavailableError as exc:  # bench, or demo --executor cpu, on a build without _cpu
        parser.exit(1, f"trainart: error: {exc}\n")
    except KeyboardInterrupt:  # Ctrl-C: the shell's status for SIGINT, and no traceback
        _flush(sys.stdout)
        parser.exit(130, f"trainart {args.command}: interrupted\n")
    except BrokenPipeError:  # a print other than say's into a closed pipe: ends the run
        _to_devnull(sys.stdout)
        _flush(sys.stderr)
        say.lost = True
    if _flush(sys.stdout) or say.lost:
        # Status 1 as in the Python docs' "Note on SIGPIPE" (Python's own status for EPIPE), not
        # 141 from SIGPIPE's default action: the docs advise against restoring SIG_DFL.
        sys.exit(1)


if __name__ == "__main__":
    main()
