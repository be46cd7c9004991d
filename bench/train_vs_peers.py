"""Epoch time of trainart against its peers on DESIGN §8's two workloads.

Each peer runs in its own process (so no library's thread pool or allocator warms another's),
peers alternate round by round, and each reports the median of its timed epochs. PyTorch may
live in another interpreter (--torch-python), since it is never a dependency of trainart.

Every peer is timed the same way: epoch by epoch inside one continuous training run, the first
epoch dropped (warm-up, and the place of any per-run setup). torch and the NumPy loop are bare
loops timed around each epoch. trainart and scikit-learn train through one fit call of all the
epochs, each epoch's end taken from the library itself: a trainart callback's on_epoch_end,
and the append of each epoch's loss to scikit-learn's loss_curve_ (it has no epoch hook). Each
reports per-epoch times, so the median means the same thing for all. Until session 10 the
two fit-based peers ran one fit call per epoch (scikit-learn: warm_start with max_iter=1),
which charged every epoch the call's own setup: input validation, scikit-learn's label
binarizer, a fresh Adam (its moments reset every epoch) and a ConvergenceWarning, ~15 % of
scikit-learn's small-workload epoch, so trainart's ratio against it read high. A loop of
partial_fit calls would still validate the input every epoch, and one multi-epoch fit divided
by its epochs gives a mean, not the median the other peers report.

    python bench/train_vs_peers.py --workload small --rounds 3
    python bench/train_vs_peers.py --workload mnist --torch-python /path/to/venv/bin/python
    python bench/train_vs_peers.py --workload mnist --engine-vs-floor --rounds 8
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import numpy as np

WORKLOADS = {
    # sizes, dropout after each hidden layer, batch, rows, timed epochs
    "small": dict(sizes=[64, 128, 10], dropout=0.0, batch=32, rows=1437, epochs=20),
    "mnist": dict(sizes=[784, 512, 512, 10], dropout=0.2, batch=256, rows=60000, epochs=3),
}
PEERS = ("trainart-cpu", "trainart-numpy", "torch", "sklearn", "numpy-loop")


def make_data(workload):
    """Digits rows (small) or synthetic MNIST-shaped rows (mnist), float32, labels int64."""
    w = WORKLOADS[workload]
    rng = np.random.default_rng(0)
    if workload == "small":
        # Read the bundled file directly: the torch worker's interpreter has no trainart.
        path = os.path.join(os.path.dirname(__file__), "..", "python", "trainart", "datasets", "digits.npz")
        with np.load(path) as data:
            X = data["images"].reshape(len(data["images"]), -1).astype(np.float32) / 16.0
            y = data["target"].astype(np.int64)
        return X[: w["rows"]], y[: w["rows"]]
    X = rng.random((w["rows"], w["sizes"][0]), dtype=np.float32)
    y = rng.integers(0, w["sizes"][-1], w["rows"]).astype(np.int64)
    return X, y


def epoch_flops(workload):
    """Multiply-adds of the GEMMs of one epoch x 2: forward, dW, and dX except the first layer."""
    w = WORKLOADS[workload]
    sizes, n = w["sizes"], w["rows"]
    flops = 0
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        flops += 2 * n * a * b * (2 if i == 0 else 3)
    return flops


# -- workers: each times `epochs` epochs after one warm-up epoch and prints JSON -------------------
def make_trainer(workload, executor):
    """The workload's model and Adam, as trainart runs it."""
    import trainart as ta

    w = WORKLOADS[workload]
    model = ta.MLP(w["sizes"], activation="relu", init="he_normal", dropout=w["dropout"])
    return ta.Trainer(model, loss="cross_entropy", optimizer=ta.optim.Adam(lr=1e-3), executor=executor, seed=0)


def epoch_seconds(start, ends):
    """Each epoch's seconds from a run's start and the end of every epoch, less the first epoch
    (the warm-up, which also carries the run's setup), as the loop peers drop theirs."""
    stamps = [start, *ends]
    return [b - a for a, b in zip(stamps, stamps[1:])][1:]


def worker_trainart(workload, executor):
    """One fit of epochs + 1 epochs; a callback notes when each epoch ends."""
    from trainart.callbacks import Callback

    class EpochEnds(Callback):
        def __init__(self):
            self.ends = []

        def on_epoch_end(self, trainer, epoch, logs):
            self.ends.append(time.perf_counter())

    w = WORKLOADS[workload]
    X, y = make_data(workload)
    trainer = make_trainer(workload, executor)
    clock = EpochEnds()
    start = time.perf_counter()
    trainer.fit(X, y, epochs=w["epochs"] + 1, batch_size=w["batch"], verbose=0, callbacks=[clock])
    return epoch_seconds(start, clock.ends)


def worker_torch(workload):
    import torch

    torch.set_num_threads(int(os.environ.get("BENCH_THREADS", "2")))
    w = WORKLOADS[workload]
    X, y = make_data(workload)
    X, y = torch.from_numpy(X), torch.from_numpy(y)
    layers = []
    for i, (a, b) in enumerate(zip(w["sizes"][:-1], w["sizes"][1:])):
        layers.append(torch.nn.Linear(a, b))
        if i < len(w["sizes"]) - 2:
            layers.append(torch.nn.ReLU())
            if w["dropout"]:
                layers.append(torch.nn.Dropout(w["dropout"]))
    model = torch.nn.Sequential(*layers)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = torch.nn.CrossEntropyLoss()
    times = []
    for _ in range(w["epochs"] + 1):
        start = time.perf_counter()
        perm = torch.randperm(len(X))
        for lo in range(0, len(X), w["batch"]):
            idx = perm[lo:lo + w["batch"]]
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(X[idx]), y[idx])
            loss.backward()
            opt.step()
        times.append(time.perf_counter() - start)
    return times[1:]


class EpochEndList(list):
    """A list that notes the time of every append: MLPClassifier appends each epoch's loss to
    loss_curve_ as the epoch's minibatches end."""

    def __init__(self, items):
        super().__init__(items)
        self.ends = []

    def append(self, item):
        self.ends.append(time.perf_counter())
        super().append(item)


def worker_sklearn(workload):
    """One fit of epochs + 1 epochs, each epoch's end noted through loss_curve_. A first
    one-epoch fit creates loss_curve_, and warm_start keeps it (and the network) for the timed
    fit, which rebuilds its Adam once."""
    import warnings

    from sklearn.neural_network import MLPClassifier

    w = WORKLOADS[workload]  # scikit-learn has no dropout: it runs the network without it
    X, y = make_data(workload)
    clf = MLPClassifier(hidden_layer_sizes=tuple(w["sizes"][1:-1]), activation="relu", solver="adam",
                        alpha=0.0, batch_size=w["batch"], learning_rate_init=1e-3, max_iter=1,
                        shuffle=True, random_state=0, tol=0.0, n_iter_no_change=10**9, warm_start=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConvergenceWarning: tol=0 runs every epoch
        clf.fit(X, y)
        clf.loss_curve_ = EpochEndList(clf.loss_curve_)
        clf.set_params(max_iter=w["epochs"] + 1)
        start = time.perf_counter()
        clf.fit(X, y)
    ends = clf.loss_curve_.ends
    if len(ends) != w["epochs"] + 1:
        raise RuntimeError(f"scikit-learn noted {len(ends)} epoch ends in loss_curve_ for "
                           f"{w['epochs'] + 1} epochs: this version does not append to it per epoch")
    return epoch_seconds(start, ends)


def worker_numpy_loop(workload):
    """A hand-written NumPy MLP loop: what a careful user writes without a framework."""
    w = WORKLOADS[workload]
    X, y = make_data(workload)
    rng = np.random.default_rng(0)
    sizes, p = w["sizes"], w["dropout"]
    Ws = [(rng.standard_normal((a, b)) * np.sqrt(2 / a)).astype(np.float32) for a, b in zip(sizes[:-1], sizes[1:])]
    bs = [np.zeros(b, np.float32) for b in sizes[1:]]
    params = Ws + bs
    m = [np.zeros_like(q) for q in params]
    v = [np.zeros_like(q) for q in params]
    lr, b1, b2, eps, t = 1e-3, 0.9, 0.999, 1e-8, 0
    times = []
    for _ in range(w["epochs"] + 1):
        start = time.perf_counter()
        perm = rng.permutation(len(X))
        losses = []
        for lo in range(0, len(X), w["batch"]):
            idx = perm[lo:lo + w["batch"]]
            h, acts, masks = X[idx], [], []
            for i in range(len(Ws)):
                acts.append(h)
                h = h @ Ws[i] + bs[i]
                if i < len(Ws) - 1:
                    h = np.maximum(h, 0)
                    if p:
                        mask = (rng.random(h.shape, dtype=np.float32) >= p) / np.float32(1 - p)
                        h = h * mask
                        masks.append(mask)
            z = h - h.max(axis=1, keepdims=True)
            e = np.exp(z)
            prob = e / e.sum(axis=1, keepdims=True)
            rows = np.arange(len(idx))
            losses.append(-np.log(prob[rows, y[idx]]).mean())  # what any loop logs
            prob[rows, y[idx]] -= 1
            g = prob / np.float32(len(idx))
            gW, gb = [None] * len(Ws), [None] * len(Ws)
            for i in range(len(Ws) - 1, -1, -1):
                gW[i] = acts[i].T @ g
                gb[i] = g.sum(axis=0)
                if i > 0:
                    g = g @ Ws[i].T
                    if p:
                        g = g * masks[i - 1]
                    g = g * (acts[i] > 0)
            t += 1
            for q, gq, mq, vq in zip(params, gW + gb, m, v):
                mq *= b1
                mq += (1 - b1) * gq
                vq *= b2
                vq += (1 - b2) * gq * gq
                q -= (lr / (1 - b1 ** t)) * mq / (np.sqrt(vq / (1 - b2 ** t)) + eps)
        times.append(time.perf_counter() - start)
    return times[1:]


def gemm_jobs(workload):
    """The GEMMs of one epoch, as (step row counts, rows -> the jobs of one step in training
    order: forward, then dW and dX layer after layer), chained as the engine chains them: each
    layer's forward output is the next layer's input, each dX the gradient the next dW and dX
    read (random input and output gradient)."""
    import trainart
    from trainart import _native

    cpu = _native.require("cpu")
    trainart.set_num_threads(int(os.environ.get("BENCH_THREADS", "2")))
    w = WORKLOADS[workload]
    rng = np.random.default_rng(0)
    sizes, n, bsz = w["sizes"], w["rows"], w["batch"]
    steps = [min(bsz, n - lo) for lo in range(0, n, bsz)]
    jobs = {}
    for rows in set(steps):
        acts, weights, forward = [rng.random((rows, sizes[0]), dtype=np.float32)], [], []
        for a, b in zip(sizes[:-1], sizes[1:]):
            weights.append(rng.random((a, b), dtype=np.float32))
            forward.append((acts[-1], weights[-1], np.empty((rows, b), np.float32), False, False))
            acts.append(forward[-1][2])
        backward, g = [], rng.random((rows, sizes[-1]), dtype=np.float32)
        for i in range(len(weights) - 1, -1, -1):
            backward.append((acts[i], g, np.empty(weights[i].shape, np.float32), True, False))
            if i > 0:
                backward.append((g, weights[i], np.empty((rows, sizes[i]), np.float32), False, True))
                g = backward[-1][2]
        jobs[rows] = forward + backward
    return cpu, steps, jobs


def gemm_epoch(cpu, steps, jobs, in_order):
    """Seconds of one epoch's GEMMs: each repeated back to back for all steps (operands stay in
    cache), or (in_order) step after step in the order training issues them."""
    start = time.perf_counter()
    if in_order:
        for rows in steps:
            for A, B, out, ta_, tb in jobs[rows]:
                cpu.gemm(A, B, out, ta_, tb)
    else:
        for rows, step_jobs in jobs.items():
            for A, B, out, ta_, tb in step_jobs:
                for _ in range(steps.count(rows)):
                    cpu.gemm(A, B, out, ta_, tb)
    return time.perf_counter() - start


def gemm_floor(workload, in_order=False):
    """Seconds of the bare OpenBLAS GEMMs of one epoch (forward, dW, dX past the first layer),
    median of 5 (see gemm_epoch)."""
    cpu, steps, jobs = gemm_jobs(workload)
    return [statistics.median(gemm_epoch(cpu, steps, jobs, in_order) for _ in range(5))]


def engine_vs_floor(workload, rounds):
    """The cpu executor's epoch and both GEMM floors alternating in one process, round after
    round: the machine's drift then moves all three alike. Returns per-round seconds."""
    w = WORKLOADS[workload]
    X, y = make_data(workload)
    trainer = make_trainer(workload, "cpu")
    trainer.fit(X, y, epochs=1, batch_size=w["batch"], verbose=0)
    cpu, steps, jobs = gemm_jobs(workload)
    out = {"engine": [], "floor": [], "order": []}
    for r in range(rounds):
        start = time.perf_counter()
        trainer.fit(X, y, epochs=1, batch_size=w["batch"], verbose=0)
        out["engine"].append(time.perf_counter() - start)
        out["floor"].append(gemm_epoch(cpu, steps, jobs, False))
        out["order"].append(gemm_epoch(cpu, steps, jobs, True))
        print(f"round {r + 1}/{rounds}: engine {out['engine'][-1]:.4f}  floor {out['floor'][-1]:.4f}  "
              f"order {out['order'][-1]:.4f} s", file=sys.stderr, flush=True)
    return out


def run_worker(name, workload):
    threads = os.environ.get("BENCH_THREADS", "2")
    if name.startswith("trainart"):
        import trainart

        trainart.set_num_threads(int(threads))
        return worker_trainart(workload, name.split("-")[1])
    return {"torch": worker_torch, "sklearn": worker_sklearn, "numpy-loop": worker_numpy_loop,
            "gemm-floor": gemm_floor,
            "gemm-order": lambda wl: gemm_floor(wl, in_order=True)}[name](workload)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workload", choices=sorted(WORKLOADS), default="small")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds of every peer")
    parser.add_argument("--peers", default=",".join(PEERS))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--torch-python", default=sys.executable, help="interpreter that has torch")
    parser.add_argument("--json", help="write the results here")
    parser.add_argument("--engine-vs-floor", action="store_true",
                        help="only the cpu executor against both GEMM floors, alternating in one process")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(run_worker(args.worker, args.workload)))
        return
    if args.engine_vs_floor:
        os.environ.update(BENCH_THREADS=str(args.threads))
        import trainart

        trainart.set_num_threads(args.threads)
        out = engine_vs_floor(args.workload, args.rounds)
        ratio = {k: [e / f for e, f in zip(out["engine"], out[k])] for k in ("floor", "order")}
        print(f"\nworkload {args.workload}, {args.threads} threads, {args.rounds} rounds in one process: "
              f"engine {statistics.median(out['engine']):.4f} s/epoch; engine / gemm-floor median "
              f"{statistics.median(ratio['floor']):.3f} (range {min(ratio['floor']):.3f}-{max(ratio['floor']):.3f}); "
              f"engine / gemm-order median {statistics.median(ratio['order']):.3f} "
              f"(range {min(ratio['order']):.3f}-{max(ratio['order']):.3f})")
        if args.json:
            with open(args.json, "w") as f:
                json.dump(dict(workload=args.workload, **out), f, indent=1)
        return

    env = dict(os.environ, BENCH_THREADS=str(args.threads), OMP_NUM_THREADS=str(args.threads),
               OPENBLAS_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads))
    floors = ["gemm-floor", "gemm-order"]
    peers = [p for p in dict.fromkeys(args.peers.split(",")) if p not in floors]  # the floors run once, last
    unknown = sorted(set(peers) - set(PEERS))
    if unknown:
        parser.error(f"--peers: unknown {', '.join(unknown)} (peers: {', '.join(PEERS)}; the GEMM floors always run)")
    peers += floors
    samples = {p: [] for p in peers}
    failed = {}
    for r in range(args.rounds):
        for peer in peers:
            if peer in failed:
                continue
            python = args.torch_python if peer == "torch" else sys.executable
            proc = subprocess.run([python, __file__, "--worker", peer, "--workload", args.workload],
                                  capture_output=True, text=True, env=env)
            if proc.returncode != 0:
                failed[peer] = proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "failed"
                continue
            samples[peer] += json.loads(proc.stdout.strip().splitlines()[-1])
            print(f"round {r + 1}/{args.rounds} {peer}: {statistics.median(samples[peer]):.4f} s/epoch",
                  file=sys.stderr, flush=True)

    w = WORKLOADS[args.workload]
    flops = epoch_flops(args.workload)
    med = {p: statistics.median(s) for p, s in samples.items() if s}
    rows = []
    print(f"\nworkload {args.workload}: sizes {w['sizes']}, dropout {w['dropout']}, batch {w['batch']}, "
          f"{w['rows']} rows, Adam, float32, {args.threads} threads; median of every timed epoch over "
          f"{args.rounds} rounds")
    print(f"{'peer':<16} {'s/epoch':>10} {'samples/s':>12} {'GFLOP/s':>9} {'vs trainart-cpu':>16}")
    base = med.get("trainart-cpu")
    for peer in peers:
        if peer not in med:
            print(f"{peer:<16} {'n/a':>10}  ({failed.get(peer, 'no samples')})")
            continue
        s = med[peer]
        ratio = s / base if base else None
        shown = f"{ratio:>15.2f}x" if ratio else f"{'-':>16}"
        print(f"{peer:<16} {s:>10.4f} {w['rows'] / s:>12.0f} {flops / s / 1e9:>9.2f} {shown}")
        rows.append(dict(peer=peer, seconds_per_epoch=s, samples_per_second=w["rows"] / s,
                         gflops=flops / s / 1e9, ratio_to_trainart_cpu=ratio))
    print("vs trainart-cpu: peer time / trainart-cpu time (above 1: trainart is faster); "
          "gemm-floor: the bare GEMMs of one epoch, each repeated back to back; gemm-order: the "
          "same GEMMs in training order")
    if "trainart-cpu" in med and args.workload == "mnist":  # the floor line is mnist's
        print(f"trainart-cpu / gemm-floor: {med['trainart-cpu'] / med['gemm-floor']:.3f} (at most 1.2: the cpu "
              "executor within 1.2x of the GEMM-only floor of the same shapes)")
    if "trainart-numpy" in med and "numpy-loop" in med:
        print(f"trainart-numpy / numpy-loop: {med['trainart-numpy'] / med['numpy-loop']:.3f} "
              "(at most 1: the numpy executor is no slower than the hand-written loop)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(dict(workload=args.workload, rows=rows, failed=failed), f, indent=1)


if __name__ == "__main__":
    main()
