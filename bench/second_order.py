"""Second-order optimizers against Adam: training loss against iterations and wall time on the
digits MLP and an l2-regularized softmax regression, the cost of a Gauss-Newton step at mnist
sizes, and batched Cholesky solves against NumPy and SciPy.

    python bench/second_order.py [--iters 40] [--png /tmp/second_order.png] [--mnist]

One iteration is one full-batch step (L-BFGS: max_iter=1 per step, so an iteration is one
two-loop direction plus its strong Wolfe line search; its history carries over between steps).
The loss is the full training loss after each iteration, timed without that evaluation.
"""

import argparse
import time

import numpy as np

import trainart as ta


class Recorder(ta.callbacks.Callback):
    """(seconds since fit began, training loss) after every epoch, the evaluation not timed."""

    def __init__(self, X, y):
        self.X, self.y, self.points = X, y, []

    def on_train_begin(self, trainer, logs):
        self.points = [(0.0, trainer.evaluate(self.X, self.y)["loss"])]
        self.t0 = time.perf_counter()
        self.paused = 0.0

    def on_epoch_end(self, trainer, epoch, logs):
        t = time.perf_counter()
        loss = trainer.evaluate(self.X, self.y)["loss"]
        self.points.append((t - self.t0 - self.paused, loss))
        self.paused += time.perf_counter() - t


def run(model_fn, opt, X, y, iters, executor):
    trainer = ta.Trainer(model_fn(), optimizer=opt, executor=executor, dtype="float64", seed=0)
    rec = Recorder(X, y)
    trainer.fit(X, y, epochs=iters, batch_size=len(X), verbose=0, callbacks=[rec])
    return np.array(rec.points)


def methods(n_params, iters, newton_iters):
    out = [("Adam(lr=1e-2)", ta.optim.Adam(lr=1e-2), iters),
           ("LBFGS(strong_wolfe)", ta.optim.LBFGS(max_iter=1, line_search_fn="strong_wolfe"), iters),
           ("GaussNewton", ta.optim.GaussNewton(), iters)]
    if n_params <= ta.second_order.newton.NEWTON_MAX_PARAMS:
        out.append(("Newton", ta.optim.Newton(), newton_iters))
    return out


def curves(name, model_fn, X, y, iters, newton_iters, executor):
    n_params = model_fn().n_params()
    print(f"\n{name}: {n_params} parameters, {len(X)} rows, full batch, executor={executor}")
    print(f"{'method':<22}{'iters':>6}{'loss@5':>11}{'loss@10':>11}{'final':>11}{'s/iter':>9}{'total s':>9}")
    results = {}
    for label, opt, n in methods(n_params, iters, newton_iters):
        pts = run(model_fn, opt, X, y, n, executor)
        results[label] = pts

        def at(k):
            return f"{pts[k, 1]:.5f}" if k < len(pts) else "-"
        print(f"{label:<22}{n:>6}{at(5):>11}{at(10):>11}{pts[-1, 1]:>11.6f}"
              f"{pts[-1, 0] / n:>9.4f}{pts[-1, 0]:>9.2f}")
    return results


def best_of(fn, repeat=5):
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def cholesky_bench(batch=10000, n=16):
    import scipy.linalg

    rng = np.random.default_rng(0)
    M = rng.normal(size=(batch, n, n))
    A = M @ M.transpose(0, 2, 1) + n * np.eye(n)
    B = rng.normal(size=(batch, n, 1))
    x_ta = ta.linalg.batched_cholesky_solve(A, B)
    x_np = np.linalg.solve(A, B)
    assert np.allclose(x_ta, x_np, rtol=1e-10, atol=1e-12)

    def loop():
        for s in range(batch):
            scipy.linalg.cho_solve(scipy.linalg.cho_factor(A[s], lower=True), B[s])

    rows = [("ta.linalg.batched_cholesky_solve", best_of(lambda: ta.linalg.batched_cholesky_solve(A, B))),
            ("ta ... backend='numpy' (reference)", best_of(lambda: ta.linalg.batched_cholesky_solve(
                A, B, backend="numpy"), 2)),
            ("numpy.linalg.solve (batched LU)", best_of(lambda: np.linalg.solve(A, B))),
            ("loop of scipy cho_factor+cho_solve", best_of(loop, 2))]
    print(f"\nbatched SPD solves: {batch} systems of {n}x{n}, one right-hand side, float64")
    base = rows[0][1]
    for label, t in rows:
        print(f"{label:<38}{t * 1e3:>10.2f} ms{t / base:>8.1f}x")


def gn_step_cost(sizes, rows):
    rng = np.random.default_rng(0)
    X = rng.random((rows, sizes[0]))
    y = rng.integers(0, sizes[-1], rows)
    trainer = ta.Trainer(ta.MLP(sizes), optimizer=ta.optim.GaussNewton(), dtype="float32", seed=0)
    times = []
    for epoch in range(2):  # the first step pays for the LM retries that raise lambda from 1e-3
        t = time.perf_counter()
        hist = trainer.fit(X, y, epochs=epoch + 1, initial_epoch=epoch, batch_size=rows, verbose=0)
        times.append(time.perf_counter() - t)
    return times, hist.history["damping"]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--iters", type=int, default=40)
    ap.add_argument("--newton-iters", type=int, default=12)
    ap.add_argument("--executor", default="auto")
    ap.add_argument("--png", default="/tmp/second_order.png")
    ap.add_argument("--mnist", action="store_true", help="also time one GN step of 784-512-512-10 (slow)")
    args = ap.parse_args()

    X, y = ta.datasets.load_digits()
    X = X / 16.0
    all_results = {
        "digits MLP 64-32-10 (relu)": curves("digits MLP 64-32-10 (relu)", lambda: ta.MLP([64, 32, 10]), X, y,
                                             args.iters, args.newton_iters, args.executor),
        "softmax regression, l2=1e-3": curves("softmax regression 64-10, l2=1e-3",
                                              lambda: ta.Sequential([ta.Dense(10, l2=1e-3)], input_dim=64),
                                              X, y, args.iters, args.newton_iters, args.executor),
    }
    cholesky_bench()
    print("\nGaussNewton: full-batch steps on random data, float32, default executor")
    cases = [([784, 64, 10], 500), ([784, 64, 10], 1000)] + ([([784, 512, 512, 10], 500)] if args.mnist else [])
    for sizes, rows in cases:
        (first, second), damping = gn_step_cost(sizes, rows)
        print(f"  {'-'.join(map(str, sizes)):<16} {rows:>5} rows: step 1 {first:8.2f} s, step 2 {second:8.2f} s "
              f"(lambda used: {', '.join(f'{d:g}' for d in damping)})")

    if args.png:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        fig = Figure(figsize=(12, 8))
        FigureCanvasAgg(fig)
        axes = fig.subplots(2, 2)
        for row, (title, results) in zip(axes, all_results.items()):
            for label, pts in results.items():
                row[0].plot(np.arange(len(pts)), pts[:, 1], label=label)
                row[1].plot(pts[:, 0], pts[:, 1], label=label)
            for ax, xlabel in zip(row, ("iteration", "seconds")):
                ax.set_yscale("log")
                ax.set_xlabel(xlabel)
                ax.set_ylabel("training loss")
                ax.set_title(title)
                ax.grid(True, alpha=0.3)
                ax.legend()
        fig.tight_layout()
        fig.savefig(args.png, dpi=100)
        print(f"\nwrote {args.png}")


if __name__ == "__main__":
    main()
