"""The cpu engine's training step with and without weight penalties and max-norm, at the mnist
workload's shapes (784-512-512-10, Adam, batch 256).

    python bench/regularizers.py plain|l2|maxnorm|reg

prints the fastest of 6 fits of 30 steps, in ms a step. Run each kind in its own process,
alternating kinds and builds (bench/README.md, log entry 27).
"""

import sys
import time

import numpy as np

import trainart as ta

KINDS = {
    "plain": {},
    "l2": dict(l2=1e-4),
    "maxnorm": dict(max_norm=3.0),
    "reg": dict(l1=1e-5, l2=1e-4, max_norm=3.0),
}
STEPS, BATCH, FITS = 30, 256, 6


def main(kind):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((BATCH * STEPS, 784)).astype(np.float32)
    y = rng.integers(0, 10, len(X))
    trainer = ta.Trainer(ta.MLP([784, 512, 512, 10], **KINDS[kind]), "cross_entropy", executor="cpu")
    trainer.fit(X, y, epochs=1, batch_size=BATCH, verbose=0)  # warm-up: buffers, caches
    times = []
    for _ in range(FITS):
        start = time.perf_counter()
        trainer.fit(X, y, epochs=1, batch_size=BATCH, verbose=0)
        times.append((time.perf_counter() - start) / STEPS)
    print(f"{kind}: {min(times) * 1e3:.2f} ms a step")


if __name__ == "__main__":
    if len(sys.argv) != 2 or sys.argv[1] not in KINDS:
        sys.exit(f"usage: python bench/regularizers.py {'|'.join(KINDS)}")
    main(sys.argv[1])
