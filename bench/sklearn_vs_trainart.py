"""Time per fit of scikit-learn's MLPClassifier vs trainart.sklearn.MLPClassifier on the digits
with the same hyperparameters (median of a few repeats), with both test accuracies.

    python bench/sklearn_vs_trainart.py [--repeats 3] [--max-iter 200] [--threads 1]
"""

import argparse
import statistics
import time
import warnings

from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier as SkMLP

import trainart
from trainart.sklearn import MLPClassifier as TaMLP


def timed_fits(cls, kw, data, repeats):
    Xtr, Xte, ytr, yte = data
    times, accs = [], []
    for r in range(repeats):
        model = cls(random_state=r, **kw)
        t0 = time.perf_counter()
        model.fit(Xtr, ytr)
        times.append(time.perf_counter() - t0)
        accs.append(model.score(Xte, yte))
    return statistics.median(times), statistics.median(accs), model.n_iter_


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--max-iter", type=int, default=200)
    ap.add_argument("--threads", type=int, default=1, help="BLAS/OpenMP threads for both libraries")
    args = ap.parse_args()
    from threadpoolctl import threadpool_limits

    X, y = load_digits(return_X_y=True)
    data = train_test_split(X / 16.0, y, test_size=0.25, random_state=0)
    kw = dict(hidden_layer_sizes=(100,), max_iter=args.max_iter, tol=0.0)  # tol=0: every fit runs max_iter epochs
    trainart.set_num_threads(args.threads)
    with threadpool_limits(args.threads), warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        TaMLP(max_iter=2).fit(*data[::2])  # load the native module outside the timing
        sk_t, sk_acc, sk_it = timed_fits(SkMLP, kw, data, args.repeats)
        ta_t, ta_acc, ta_it = timed_fits(TaMLP, kw, data, args.repeats)
    n = len(data[0])
    print(f"digits: {n} train rows, 64 features, hidden (100,), adam, batch 200, {args.max_iter} epochs, "
          f"{args.threads} thread(s), median of {args.repeats}")
    print(f"{'':24s}{'s/fit':>9s}{'ms/epoch':>10s}{'test acc':>10s}")
    print(f"{'sklearn MLPClassifier':24s}{sk_t:9.3f}{1e3 * sk_t / sk_it:10.2f}{sk_acc:10.4f}")
    print(f"{'trainart.sklearn':24s}{ta_t:9.3f}{1e3 * ta_t / ta_it:10.2f}{ta_acc:10.4f}")
    print(f"speed-up (sklearn / trainart): {sk_t / ta_t:.2f}x")


if __name__ == "__main__":
    main()
