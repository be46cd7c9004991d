"""The tuning recipe on the digits, step by step: loss at initialization, overfitting 32 rows,
the learning-rate range test, then a coarse-to-fine search around its suggestion.

    python examples/tuning_recipe_digits.py [--plots DIR]
"""

import argparse
import os

import trainart as ta
from trainart import recipe


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--plots", default=None, help="write each step's plot into this folder")
    args = parser.parse_args()
    X, y = ta.datasets.load_digits()
    X = (X - X.mean(0)) / (X.std(0) + 1e-8)
    Xtr, Xval, ytr, yval = ta.datasets.train_test_split(X, y, test_size=0.25, seed=0)
    model = ta.MLP([64, 128, 10], dropout=0.2)

    def save(report, name):
        if args.plots:
            os.makedirs(args.plots, exist_ok=True)
            report.plot(os.path.join(args.plots, name))

    print("1. Loss at initialization")
    r = recipe.check_initial_loss(model, Xtr, ytr)
    print("   ", r.verdict)
    save(r, "1_initial_loss.png")
    bad = recipe.check_initial_loss(ta.MLP([64, 128, 10], init="random"), Xtr, ytr)
    print("    (with N(0, 1) weights instead:)", bad.verdict)

    print("2. Overfit a small sample")
    r = recipe.overfit_small_sample(model, Xtr, ytr, n_samples=32, lr=1e-2)
    print("   ", r.verdict)
    save(r, "2_overfit.png")
    for lr in (1e-7, 10.0):
        print(f"    (at lr={lr:g}:)", recipe.overfit_small_sample(model, Xtr, ytr, lr=lr).verdict)

    print("3. Learning-rate range test")
    f = recipe.lr_finder(model, Xtr, ytr, lr_min=1e-7, lr_max=10.0, steps=100)
    print("   ", f.verdict)
    save(f, "3_lr_finder.png")

    print("4. Coarse-to-fine search around the suggestion")
    lo, hi = f.suggested_lr / 10, min(f.suggested_lr * 10, f.min_loss_lr)
    s = recipe.coarse_to_fine_lr(model, Xtr, ytr, (Xval, yval), lr_range=(lo, hi), epochs=10, batch_size=32,
                                 n_trials=12, rounds=2, seed=0)
    print("   ", s.verdict)
    save(s, "4_search.png")

    trainer = ta.Trainer(model, optimizer=ta.optim.Adam(lr=s.best_lr), seed=0)
    trainer.fit(Xtr, ytr, epochs=20, batch_size=32, validation_data=(Xval, yval), verbose=0)
    print(f"Final: 20 epochs at lr={s.best_lr:.3g}: validation accuracy {trainer.evaluate(Xval, yval)['accuracy']:.3f}")


if __name__ == "__main__":
    main()
