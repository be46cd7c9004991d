"""Coarse-to-fine search of the learning rate and hidden width of an MLP on the digits, with
trainart.tune: a random pass over wide log ranges, then two rounds in shrinking boxes.

    python examples/coarse_to_fine.py [--plot search.png]
"""

import argparse
import math

import trainart as ta
import trainart.tune as tt

X, y = ta.datasets.load_digits()
X = (X - X.mean(0)) / (X.std(0) + 1e-8)
Xtr, Xval, ytr, yval = ta.datasets.train_test_split(X, y, test_size=0.25, seed=0)


def objective(params, trial):
    """Validation loss after a short training run (module level: picklable for n_jobs > 1)."""
    model = ta.MLP([64, params["units"], 10], l2=params["l2"])
    trainer = ta.Trainer(model, optimizer=ta.optim.Adam(lr=params["lr"]), seed=0)
    try:
        trainer.fit(Xtr, ytr, epochs=params["epochs"], batch_size=64, validation_data=(Xval, yval),
                    callbacks=[tt.ReportCallback(trial, "val_loss")], verbose=0)
    except ta.TrainingDiverged:
        return math.inf
    return trainer.evaluate(Xval, yval)["loss"]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--plot", default=None, help="save the objective-vs-parameter plot here")
    args = parser.parse_args()
    space = {"lr": tt.LogUniform(1e-5, 1.0), "units": tt.IntUniform(8, 256, log=True),
             "l2": tt.LogUniform(1e-7, 1e-2), "epochs": 8}
    result = tt.search(objective, space, strategy="coarse_to_fine", n_trials=36, rounds=3, top_k=4,
                       shrink=0.5, seed=0)
    for r, box in enumerate(result.boxes):
        print(f"round {r}: lr {box['lr']!r}  units {box['units']!r}  l2 {box['l2']!r}")
        best = min((t for t in result.trials if t.round == r and t.state == "complete"), key=lambda t: t.value)
        print(f"   best val_loss {best.value:.4f} at lr={best.params['lr']:.3g}, units={best.params['units']}, "
              f"l2={best.params['l2']:.2g}")
    print(f"best: {result.best_params}  val_loss {result.best_value:.4f}")
    final = ta.Trainer(ta.MLP([64, result.best_params["units"], 10], l2=result.best_params["l2"]),
                       optimizer=ta.optim.Adam(lr=result.best_params["lr"]), seed=0)
    final.fit(Xtr, ytr, epochs=8, batch_size=64, verbose=0)
    print(f"validation accuracy of the best setting: {final.evaluate(Xval, yval)['accuracy']:.3f}")
    if args.plot:
        result.plot(args.plot)
        print(f"plot written to {args.plot}")


if __name__ == "__main__":
    main()
