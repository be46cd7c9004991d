"""The `trainart` command: `trainart demo` (train on the bundled digits) and `trainart bench`
(kernel microbenchmarks)."""

import argparse
import sys


def _bench(args):
    from . import microbench

    ops = args.ops.split(",") if args.ops else None
    unknown = sorted(set(ops or ()) - set(microbench.MODULES))
    if unknown:
        raise SystemExit(f"trainart bench: unknown op(s) {', '.join(unknown)}; "
                         f"choose from {', '.join(microbench.MODULES)}")
    if args.threads:
        import trainart

        trainart.set_num_threads(args.threads)
    say = (lambda msg: print(f"  {msg}", file=sys.stderr, flush=True)) if args.verbose else None
    results = microbench.run(ops, quick=args.quick, progress=say)
    print(microbench.format_table(results))
    if args.json:
        microbench.to_json(results, args.json)
        print(f"wrote {args.json}")


def _demo(args):
    from . import demo

    if args.threads:
        import trainart

        trainart.set_num_threads(args.threads)
    demo.run(plot=None if args.no_plot else args.plot, executor=args.executor, epochs=args.epochs)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="trainart", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="train an MLP on the bundled digits and plot its curves")
    demo.add_argument("--plot", default="digits_curves.png", help="where to write the curves PNG")
    demo.add_argument("--no-plot", action="store_true", help="skip the plot")
    demo.add_argument("--executor", default="auto", choices=("auto", "numpy", "cpu"))
    demo.add_argument("--epochs", type=int, default=60)
    demo.add_argument("--threads", type=int, help="threads for trainart (default: all cores)")
    demo.set_defaults(func=_demo)
    bench = sub.add_parser("bench", help="time every kernel against NumPy and its floor")
    bench.add_argument("--ops", help="comma-separated kernel families (default: all)")
    bench.add_argument("--quick", action="store_true", help="small sizes, few repeats")
    bench.add_argument("--threads", type=int, help="threads for trainart (default: all cores)")
    bench.add_argument("--json", metavar="FILE", help="also write the numbers as JSON")
    bench.add_argument("-v", "--verbose", action="store_true", help="print each case as it runs")
    bench.set_defaults(func=_bench)
    args = parser.parse_args(argv)
    args.func(args)


if __name__ == "__main__":
    main()
