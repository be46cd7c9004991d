"""An Optuna study with TPE and median pruning, shared by two worker processes through one
storage (a journal file here; "sqlite:///study.db" works too, and a server database lets
several machines join). Each worker gets half the cores.

    python examples/optuna_two_workers.py [--storage study.log] [--trials 30]

Run the same command in a second terminal (or on another machine with the same storage) and
the study still ends with exactly --trials trials in total.
"""

import argparse
import math
import os
import tempfile

import trainart as ta
import trainart.tune as tt

X, y = ta.datasets.load_digits()
X = (X - X.mean(0)) / (X.std(0) + 1e-8)
Xtr, Xval, ytr, yval = ta.datasets.train_test_split(X, y, test_size=0.25, seed=0)

SPACE = {"lr": tt.LogUniform(1e-5, 1.0), "units": tt.IntUniform(16, 256, log=True),
         "activation": tt.Choice(["relu", "tanh", "elu"]), "dropout": tt.Uniform(0.0, 0.5)}


def objective(params, trial):
    """Reports val_loss every epoch; the median pruner stops trials worse than the median."""
    model = ta.MLP([64, params["units"], 10], activation=params["activation"], dropout=params["dropout"])
    trainer = ta.Trainer(model, optimizer=ta.optim.Adam(lr=params["lr"]), seed=0)
    try:
        hist = trainer.fit(Xtr, ytr, epochs=12, batch_size=64, validation_data=(Xval, yval),
                           callbacks=[tt.ReportCallback(trial, "val_loss")], verbose=0)
    except ta.TrainingDiverged:
        return math.inf
    return hist.history["val_loss"][-1]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--storage", default=None, help="journal file or RDB URL (default: a temporary file)")
    parser.add_argument("--trials", type=int, default=30)
    parser.add_argument("--plot", default=None)
    args = parser.parse_args()
    import optuna

    tmp = None
    storage = args.storage
    if storage is None:
        tmp = tempfile.TemporaryDirectory()
        storage = os.path.join(tmp.name, "study.log")
    result = tt.search(objective, SPACE, strategy="optuna", n_trials=args.trials, n_jobs=2, seed=0,
                       storage=storage, study_name="digits-mlp",
                       pruner=optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=3))
    states = {s: len(result.trials.where(s)) for s in ("complete", "pruned", "failed")}
    print(f"{len(result.trials)} trials in the study: {states}")
    print(f"epochs trained: {sum(len(t.intermediate) for t in result.trials)} of {12 * len(result.trials)} "
          "without pruning")
    print(f"best val_loss {result.best_value:.4f} with {result.best_params}")
    if args.plot:
        result.plot(args.plot)
    if tmp is not None:
        tmp.cleanup()


if __name__ == "__main__":
    main()
